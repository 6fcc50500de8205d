"""deepod-mnp: Multi-Normal Prototypes weakly supervised anomaly detection for DeepOD.

Importing the package registers :class:`MNP` and the AnoOnly detectors in ``deepod.models.tabular`` and
``deepod.models`` so that DeepOD scripts that look detectors up by name find it.
"""
from __future__ import annotations

__version__ = "0.1.0"

_DEEPOD_HINT = (
    "deepod_mnp needs DeepOD, which is not installed. PyPI's deepod 0.4.1 declares "
    "torch<1.13.1 (it works with torch 2), so install it without its dependencies, after torch:\n"
    "    pip install 'torch>=2.0' && pip install --no-deps deepod==0.4.1\n"
    "or run `make install` in a checkout of deepod-mnp (see README, 'Installation')."
)

try:
    import deepod  # noqa: F401
    from deepod.core.base_model import BaseDeepAD  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(_DEEPOD_HINT) from exc

from deepod_mnp.deepod_plugin import register_with_deepod  # noqa: E402
from deepod_mnp.models import MNP, DeepSADAnoOnly, DegenerateFitWarning, DevNetAnoOnly  # noqa: E402
from deepod_mnp.registry import DETECTORS, make_detector  # noqa: E402

register_with_deepod()

__all__ = ["MNP", "DevNetAnoOnly", "DeepSADAnoOnly", "DegenerateFitWarning", "DETECTORS", "make_detector",
           "register_with_deepod", "__version__"]
