"""Release tooling: MNP as a pull request against DeepOD's ``main`` branch.

Run ``python -m tools.upstream --out DIR [--deepod-src SRC] [--run-tests]`` from
the repository root. The modules, one job each:

* :mod:`~tools.upstream.manifest`: which of our modules go upstream and where, and
  the few edits the upstream copy needs (one table each);
* :mod:`~tools.upstream.package`: the subpackage ``deepod/models/tabular/mnp/``,
  our modules copied with their imports made relative;
* :mod:`~tools.upstream.checks`: what DeepOD receives imports only the standard
  library and DeepOD's requirements, has no process-wide side effects and no API
  newer than DeepOD's declared minimums;
* :mod:`~tools.upstream.patches`: edits of DeepOD's ``__init__`` files, README and
  docs, built from the target's own text with its line endings;
* :mod:`~tools.upstream.pinfix`: DeepOD ``main``'s requirements (torch, ray, scikit-learn);
* :mod:`~tools.upstream.source`, :mod:`~tools.upstream.diff`,
  :mod:`~tools.upstream.runtests`: reading DeepOD's source, the patches and
  ``git apply``, DeepOD's tests with our package blocked;
* :mod:`~tools.upstream.build`: all of it together; ``__main__`` prints.

Nothing in ``deepod_mnp`` imports this package.
"""
