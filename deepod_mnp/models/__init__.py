"""The detectors: each a :class:`deepod_mnp.base.BaseDetector` with DeepOD's hooks, network and loss."""
from deepod_mnp.base import DegenerateFitWarning
from deepod_mnp.models.anoonly import DeepSADAnoOnly, DevNetAnoOnly
from deepod_mnp.models.mnp import MNP
from deepod_mnp.models.select import SelectByLabels

__all__ = ["MNP", "SelectByLabels", "DevNetAnoOnly", "DeepSADAnoOnly", "DegenerateFitWarning"]
