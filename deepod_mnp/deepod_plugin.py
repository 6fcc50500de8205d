"""Registration of our detectors into DeepOD, so that DeepOD scripts find them by name."""
from __future__ import annotations

import importlib
from typing import Callable


def register_with_deepod(classes: dict[str, Callable] | None = None) -> None:
    """Expose MNP and the AnoOnly detectors in ``deepod.models.tabular`` and ``deepod.models`` (idempotent).

    DeepOD's testbed scripts find detectors with
    ``getattr(importlib.import_module('deepod.models.tabular'), name)``.
    """
    from deepod_mnp.models.anoonly import DeepSADAnoOnly, DevNetAnoOnly
    from deepod_mnp.models.mnp import MNP

    classes = classes or {"MNP": MNP, "DevNetAnoOnly": DevNetAnoOnly, "DeepSADAnoOnly": DeepSADAnoOnly}
    for module_name in ("deepod.models.tabular", "deepod.models"):
        module = importlib.import_module(module_name)
        for name, cls in classes.items():
            setattr(module, name, cls)
            exported = getattr(module, "__all__", None)
            if isinstance(exported, list) and name not in exported:
                exported.append(name)
