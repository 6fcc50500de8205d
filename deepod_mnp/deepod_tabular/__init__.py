"""Detectors written as DeepOD writes its own (``deepod/models/tabular/*.py``), one module each.

A module here subclasses DeepOD's ``BaseDeepAD``, calls its ``__init__`` and
lets DeepOD's own ``fit``, training loop, ``decision_function``, ``predict``
and ``save_model``/``load_model`` run; the method lives in DeepOD's hooks, its
network and its loss. It imports DeepOD, torch, NumPy, SciPy and
scikit-learn only, never the rest of this package, so that ``python -m
tools.upstream`` copies it verbatim into DeepOD's pull request
(``mnp.py`` -> ``deepod/models/tabular/mnp.py``). ``deepod_mnp.MNP`` is built
on the same class (CONTRIBUTING.md, "Architecture").
"""
