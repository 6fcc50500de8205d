"""Input checks shared by the detectors (scikit-learn's ``check_array`` underneath).

Parameter checks are declared per class and run by :mod:`deepod_mnp._params`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import _get_feature_names, check_array, column_or_1d, validate_data


def feature_names(X: Any) -> np.ndarray | None:
    """The feature names scikit-learn stores as ``feature_names_in_`` (or None): a DataFrame's columns
    when they are all strings, as an object array; mixed string and non-string names are a ``TypeError``."""
    return _get_feature_names(X)


def check_scoring_X(estimator: Any, X: Any) -> np.ndarray:
    """``X`` to score, checked against the fit exactly as scikit-learn checks it.

    Feature names: a ``ValueError`` when ``X`` has other names than ``feature_names_in_``
    (or the same in another order); a ``UserWarning`` when only one of the fit and ``X`` had
    names. The number of features must be ``n_features_in_``, and the values finite. The
    result is float32 and C-contiguous; it is ``X`` itself when ``X`` already is such a
    writable array (scoring never writes to it), else a copy.
    """
    arr = validate_data(estimator, X, reset=False, dtype=np.float32, ensure_2d=True,
                        ensure_all_finite=True, order="C")
    return arr if arr.flags.writeable else arr.copy()


def check_X(X: Any, *, n_features: int | None = None, name: str = "X", min_samples: int = 1) -> np.ndarray:
    """Return ``X`` as a new C-contiguous float32 2-D array, or raise ``ValueError``.

    Accepts NumPy arrays of any real dtype and pandas DataFrames. NaN and
    infinite values, a non 2-D shape, fewer than ``min_samples`` rows, no column and
    (when ``n_features`` is given) a different number of columns are errors. The input is never
    modified: the result is always a copy.
    """
    arr = check_array(
        X, dtype=np.float32, ensure_2d=True, ensure_all_finite=True, copy=True,
        order="C", input_name=name, ensure_min_samples=min_samples,
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
        raise ValueError(f"Unknown label type: y must be numeric 0/1 labels, got dtype {y.dtype}.")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values; use 0 (unlabeled) and 1 (anomaly).")
    bad = np.setdiff1d(np.unique(y), [0, 1])
    if bad.size:
        raise ValueError(
            f"y must contain only 0 (unlabeled) and 1 (labeled anomaly); found {bad[:5].tolist()}."
        )
    return y.astype(np.int64)

