"""Small real data sets shipped with the package (see README.md beside this file)."""
from __future__ import annotations

from importlib import resources

import numpy as np


def load_pendigits() -> tuple[np.ndarray, np.ndarray]:
    """ADBench's Pendigits: ``X`` (6870, 16) float64 and ``y`` (6870,) int64, 1 = anomaly."""
    with resources.files(__package__).joinpath("pendigits.npz").open("rb") as fh:
        data = np.load(fh)
        return np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"], dtype=np.int64)
