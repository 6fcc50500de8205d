"""Input checks shared by the detectors (scikit-learn's ``check_array`` underneath).

Parameter checks are declared per class and run by :mod:`deepod_mnp._params`.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.utils.validation import check_array, column_or_1d


def feature_names(X: Any) -> np.ndarray | None:
    """The feature names scikit-learn stores as ``feature_names_in_``, or None.

    A data frame's column names when they are all strings, as an object array
    (scikit-learn's ``_get_feature_names``); names that are not strings are no
    feature names, and string names mixed with others are a ``TypeError``.
    """
    columns = getattr(X, "columns", None)
    if columns is None or getattr(X, "ndim", 2) != 2:
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) == 0:
        return None
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, but your input has "
            f"{types} as feature name / column name types. If you want feature names to be stored and "
            "validated, you must convert them all to strings, by using X.columns = X.columns.astype(str) "
            "for example. Otherwise you can remove feature / column names from your input data, or convert "
            "them all to a non-string data type.")
    return names if types == ["str"] else None


def _list_names(names: list) -> str:
    shown = [f"- {n}\n" for n in names[:5]]
    return "".join(shown) + ("- ...\n" if len(names) > 5 else "")


def check_feature_names(estimator: Any, X: Any) -> None:
    """Check ``X``'s feature names against ``estimator.feature_names_in_`` as scikit-learn does.

    The messages are scikit-learn's (``sklearn.utils.validation._check_feature_names``
    with ``reset=False``): a ``ValueError`` when the names differ or come in another
    order, a ``UserWarning`` when only one of the fit and ``X`` had names.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    given = feature_names(X)
    name = type(estimator).__name__
    if fitted is None and given is None:
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names", stacklevel=5)
        return
    if given is None:
        warnings.warn(f"X does not have valid feature names, but {name} was fitted with feature names",
                      stacklevel=5)
        return
    if len(fitted) == len(given) and np.all(fitted == given):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(given) - set(fitted))
    missing = sorted(set(fitted) - set(given))
    if unexpected:
        message += "Feature names unseen at fit time:\n" + _list_names(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + _list_names(missing)
    if not missing and not unexpected:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)


def check_scoring_X(estimator: Any, X: Any) -> np.ndarray:
    """``X`` to score, checked against the fit exactly as scikit-learn checks it.

    Feature names as :func:`check_feature_names`; the values finite; the number of
    features ``n_features_in_`` (scikit-learn's message). The result is float32 and
    C-contiguous; it is ``X`` itself when ``X`` already is such a writable array
    (scoring never writes to it), else a copy.
    """
    check_feature_names(estimator, X)
    arr = check_array(X, dtype=np.float32, ensure_2d=True, order="C", input_name="X")  # finite by default
    if arr.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {arr.shape[1]} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input.")
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

