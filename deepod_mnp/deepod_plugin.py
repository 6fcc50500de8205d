"""Registration of our detectors into DeepOD, so that DeepOD scripts find them by name."""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

from deepod_mnp.registry import DETECTORS

#: the classes DeepOD's modules get (the registry's ``deepod`` detectors), by the module that defines each
EXPORTS = {spec.attr: spec.module for spec in DETECTORS.values() if spec.deepod}
_DEEPOD_MODULES = ("deepod.models.tabular", "deepod.models")


def _export(module: Any, names: list[str]) -> None:
    exported = getattr(module, "__all__", None)
    if isinstance(exported, list):
        exported.extend(n for n in names if n not in exported)


def register_with_deepod(classes: dict[str, Callable] | None = None) -> None:
    """Expose :data:`EXPORTS` (MNP and the AnoOnly detectors) in ``deepod.models.tabular`` and
    ``deepod.models`` (idempotent).

    DeepOD's testbed scripts find detectors with
    ``getattr(importlib.import_module('deepod.models.tabular'), name)``.
    """
    classes = classes or {name: getattr(importlib.import_module(at), name) for name, at in EXPORTS.items()}
    for module_name in _DEEPOD_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in classes.items():
            setattr(module, name, cls)
        _export(module, list(classes))


def register_lazily() -> None:
    """Make the names of :data:`EXPORTS` resolve in DeepOD's imported modules, loading ours on first use.

    A module-level ``__getattr__`` (PEP 562) on ``deepod.models.tabular`` and
    ``deepod.models`` imports our class when it is first looked up, so this
    costs nothing until then and never meets a half-imported module of ours
    (``import deepod_mnp`` calls it as soon as DeepOD's modules exist).
    """
    for module_name in _DEEPOD_MODULES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        previous = module.__dict__.get("__getattr__")

        def lookup(name: str, _module: Any = module, _previous: Any = previous) -> Any:
            if name in EXPORTS:
                value = getattr(importlib.import_module(EXPORTS[name]), name)
                setattr(_module, name, value)
                return value
            if _previous is not None:
                return _previous(name)
            raise AttributeError(f"module {_module.__name__!r} has no attribute {name!r}")

        module.__getattr__ = lookup
        _export(module, list(EXPORTS))
