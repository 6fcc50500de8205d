"""The detectors, one a module: each a :class:`deepod_mnp.base.BaseDetector` with DeepOD's hooks, network
and loss. The package exports them by the registry's table (:data:`deepod_mnp.registry.DETECTORS`)."""
