"""Release tooling: MNP as a pull request against DeepOD's ``main`` branch.

Run ``python -m tools.upstream --out DIR [--deepod-src SRC] [--run-tests]`` from
the repository root. The modules, one job each:

* :mod:`~tools.upstream.manifest`: what goes upstream and where: our module
  ``deepod_mnp/deepod_tabular/mnp.py``, copied verbatim to ``deepod/models/tabular/mnp.py``,
  and the other files of the pull request;
* :mod:`~tools.upstream.checks`: what DeepOD receives is one file of at most 450 lines,
  imports only the standard library and DeepOD's requirements, has no process-wide
  side effects and no API newer than DeepOD's declared minimums;
* :mod:`~tools.upstream.patches`: edits of DeepOD's ``__init__`` files, README and
  docs, built from the target's own text with its line endings;
* :mod:`~tools.upstream.pinfix`: DeepOD ``main``'s requirements (torch, ray);
* :mod:`~tools.upstream.source`, :mod:`~tools.upstream.diff`,
  :mod:`~tools.upstream.runtests`: reading DeepOD's source, the patches and
  ``git apply``, DeepOD's tests with our package blocked;
* :mod:`~tools.upstream.build`: all of it together; ``__main__`` prints.

Nothing in ``deepod_mnp`` imports this package.
"""
