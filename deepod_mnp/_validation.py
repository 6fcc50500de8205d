"""Input checks shared by the detectors (scikit-learn's ``check_array`` underneath).

Parameter checks are declared per class and run by :mod:`deepod_mnp._params`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_array, column_or_1d


def check_X(X: Any, *, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """Return ``X`` as a new C-contiguous float32 2-D array, or raise ``ValueError``.

    Accepts NumPy arrays of any real dtype and pandas DataFrames. NaN and
    infinite values, a non 2-D shape, an empty array and (when ``n_features`` is
    given) a different number of columns are errors. The input is never
    modified: the result is always a copy.
    """
    arr = check_array(
        X, dtype=np.float32, ensure_2d=True, ensure_all_finite=True, copy=True,
        order="C", input_name=name,
    )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the detector was fitted "
            f"with {n_features} features."
        )
    return arr


def check_y(y: Any, n_samples: int) -> np.ndarray:
    """Return weak labels as an int64 vector of 0 (unlabeled) and 1 (labeled anomaly)."""
    y = column_or_1d(np.asarray(y), warn=False)
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} labels but X has {n_samples} rows.")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must be numeric 0/1 labels, got dtype {y.dtype}.")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values; use 0 (unlabeled) and 1 (anomaly).")
    bad = np.setdiff1d(np.unique(y), [0, 1])
    if bad.size:
        raise ValueError(
            f"y must contain only 0 (unlabeled) and 1 (labeled anomaly); found {bad[:5].tolist()}."
        )
    return y.astype(np.int64)

