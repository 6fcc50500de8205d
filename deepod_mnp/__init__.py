"""deepod-mnp: Multi-Normal Prototypes weakly supervised anomaly detection for DeepOD.

Importing the package registers :class:`MNP` and the AnoOnly detectors in
``deepod.models.tabular`` and ``deepod.models`` so that DeepOD scripts that
look detectors up by name find it. The import itself is light: torch and
DeepOD are loaded when a detector is first used (``deepod_mnp.MNP``,
``make_detector``); the names in DeepOD's modules resolve to ours whenever
DeepOD is imported, before or after this package. So ``deepod-mnp --help``
starts in well under a second.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

_DEEPOD_HINT = (
    "deepod_mnp needs DeepOD, which is not installed. PyPI's deepod 0.4.1 declares "
    "torch<1.13.1 (it works with torch 2), so install it without its dependencies, after torch:\n"
    "    pip install 'torch>=2.0' && pip install --no-deps deepod==0.4.1\n"
    "or run `make install` in a checkout of deepod-mnp (see README, 'Installation')."
)


def _deepod_installed() -> bool:
    try:
        return importlib.util.find_spec("deepod") is not None
    except (ImportError, ValueError):
        return False


if not _deepod_installed():
    raise ImportError(_DEEPOD_HINT)

# light: the standard library only
from deepod_mnp.deepod_plugin import register_lazily, register_with_deepod  # noqa: E402
from deepod_mnp.registry import DETECTORS, make_detector  # noqa: E402
from deepod_mnp.registry import OURS as _OURS  # noqa: E402

# public name -> module that defines it, loaded on first use: our detectors (the registry's table), ...
_LAZY = {**{name: DETECTORS[name].module for name in _OURS}, "DegenerateFitWarning": "deepod_mnp.base",
         **{name: "deepod_mnp.saved" for name in ("load_model", "model_card", "format_card")}}

__all__ = [*_OURS, "DegenerateFitWarning", "DETECTORS", "make_detector", "register_with_deepod", "load_model",
           "model_card", "format_card", "__version__"]


def __getattr__(name: str) -> Any:
    """Load the detectors on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'deepod_mnp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _RegisteringLoader(importlib.abc.Loader):
    """Runs DeepOD's ``deepod.models`` module, then registers our detectors in it."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        register_lazily()


class _RegisterWhenDeepODLoads(importlib.abc.MetaPathFinder):
    """Registers our detectors as soon as ``deepod.models`` has been imported (once)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "deepod.models":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterWhenDeepODLoads)]
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


if "deepod.models" in sys.modules:  # DeepOD is already loaded: register now
    register_lazily()
elif not any(isinstance(f, _RegisterWhenDeepODLoads) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenDeepODLoads())
