"""Rows checked as a detector checks its input, and a pandas frame scored under a bad-row policy.

The one place where scoring outside ``decision_function`` (streamed tables,
Dask and Spark partitions) decides which rows a detector would refuse: a
missing value, text that is no number, NaN, an infinite value, a number
beyond float32's range (:func:`check_rows`). What then happens to such a row
is a policy (:data:`POLICIES`): stop and name it, skip it, or quarantine it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

POLICIES = ("error", "skip", "quarantine")
COMPONENT_COLUMNS = ("reconstruction_error", "max_similarity", "nearest_prototype", "normality_weight")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def feature_columns(model: Any, available: Sequence[str], keep: Sequence[str] = ()) -> list[str]:
    """The input columns to feed ``model``, in its order.

    With ``feature_names_in_`` (a detector fitted on a DataFrame) they are
    matched by name, whatever the column order of the data; without, every
    column not in ``keep`` is a feature and their number must be
    ``n_features_in_``.
    """
    available = [str(c) for c in available]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        names = [str(c) for c in names]
        missing = [c for c in names if c not in available]
        if missing:
            raise ValueError(f"the data lacks {len(missing)} of the model's feature column(s): "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''}.")
        return names
    cols = [c for c in available if c not in set(keep)]
    if len(cols) != model.n_features_in_:
        raise ValueError(f"the model was fitted without feature names on {model.n_features_in_} columns, "
                         f"but the data has {len(cols)} columns besides the kept ones; fit on a DataFrame "
                         "to match columns by name.")
    return cols


def check_policy(invalid: str) -> str:
    """``invalid`` if it is one of :data:`POLICIES`, else ``ValueError``."""
    if invalid not in POLICIES:
        raise ValueError(f"invalid must be one of {', '.join(POLICIES)}; got {invalid!r}.")
    return invalid


# ----------------------------------------------------------------------------- row checks
@dataclass
class CheckedRows:
    """Feature values of a block of rows and which rows a detector would refuse.

    Attributes
    ----------
    X : ndarray of shape (n, d), float64
        The values (anything in a bad row).
    bad : ndarray of shape (n,), bool
        Rows with a missing value, NaN, an infinite value, a number beyond
        float32's range or text that is not a number.
    reasons : list of str
        One per bad row, in order: the first bad column and why.
    kinds : list of str
        One per bad row: ``'<column>: <what>'`` (what the summary counts).
    """

    X: np.ndarray
    bad: np.ndarray
    reasons: list[str]
    kinds: list[str]


@dataclass
class Column:
    """One feature column of a block of rows, as :func:`check_rows` reads it.

    Attributes
    ----------
    name : str
    values : ndarray of float64
        The values; NaN where missing or not a number.
    missing : ndarray of bool
        Null entries.
    text : ndarray of object, optional
        The column's text, when it was read as text and some entries are no number.
    unparsed : ndarray of bool, optional
        Entries of ``text`` that are no number.
    """

    name: str
    values: np.ndarray
    missing: np.ndarray
    text: np.ndarray | None = None
    unparsed: np.ndarray | None = None


def text_column(name: str, text: np.ndarray, missing: np.ndarray) -> Column:
    """A :class:`Column` from text (an object array, None where missing), parsed by pandas."""
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    words = ("nan", "+nan", "-nan")
    nan_words = np.fromiter((isinstance(t, str) and t.strip().lower() in words for t in text), dtype=bool,
                            count=len(text))
    return Column(name, values, missing, text, np.isnan(values) & ~missing & ~nan_words)


_WHAT = {1: "missing", 2: "not a number", 3: "NaN", 4: "infinite", 5: "beyond float32's range"}


def _code(col: Column, i: int, value: float) -> int:
    """What is wrong with row ``i`` of ``col`` (a key of ``_WHAT``), 0 when nothing."""
    if col.missing[i]:
        return 1
    if col.unparsed is not None and col.unparsed[i]:
        return 2
    if np.isnan(value):
        return 3
    if np.isinf(value):
        return 4
    return 5 if abs(value) > _FLOAT32_MAX else 0


def check_rows(columns: Sequence[Column]) -> CheckedRows:
    """Check the feature columns of a block of rows as ``decision_function`` checks its input:
    no missing value, no text that is no number, no NaN, no infinite value, no number beyond
    float32's range."""
    n = len(columns[0].values) if columns else 0
    X = np.empty((n, len(columns)), dtype=np.float64, order="F")  # column by column, contiguous
    for j, col in enumerate(columns):
        X[:, j] = col.values
    # one pass over the block: NaN (missing and unparsed entries are NaN too), inf and beyond float32
    bad = ~(np.abs(X) <= _FLOAT32_MAX).all(axis=1)
    reasons, kinds = [], []
    for i in np.flatnonzero(bad):  # the few bad rows, one by one
        codes = [_code(col, i, X[i, j]) for j, col in enumerate(columns)]
        cols = [j for j, code in enumerate(codes) if code]
        j, code = cols[0], codes[cols[0]]
        col, value = columns[j], X[i, j]
        shown = {1: "is missing (null)", 3: "is NaN", 4: f"is {value:g}",
                 5: f"is {value:g}, beyond float32's range (±3.4e+38)"}.get(code)
        if shown is None:
            shown = f"is not a number ({str(col.text[i])[:40]!r})"
        more = f" (and {len(cols) - 1} more column(s))" if len(cols) > 1 else ""
        reasons.append(f"column {col.name!r} {shown}{more}")
        kinds.append(f"{col.name}: {_WHAT[code]}")
    return CheckedRows(X, bad, reasons, kinds)


def frame_columns(part: pd.DataFrame, features: Sequence[str]) -> list[Column]:
    """:func:`check_rows`'s input from a pandas frame (numeric, nullable, sparse or text columns)."""
    out = []
    for name in features:
        col = part[name]
        if isinstance(col.dtype, pd.SparseDtype):
            col = col.sparse.to_dense()
        missing = col.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
                missing = np.zeros(len(col), dtype=bool)  # NaN in a NumPy float column is a NaN
            out.append(Column(name, col.to_numpy(dtype=np.float64, na_value=np.nan), missing))
        else:
            out.append(text_column(name, col.astype(object).where(~col.isna(), None).to_numpy(), missing))
    return out


def _row_label(part: pd.DataFrame, i: int, keep: Sequence[str]) -> str:
    values = [part[c].iloc[i] for c in keep[:3]]
    shown = ", ".join(f"{c}={v.item() if isinstance(v, np.generic) else v!r}" for c, v in zip(keep, values))
    index = part.index[i].item() if isinstance(part.index[i], np.generic) else part.index[i]
    return f"row {i} of the partition (index {index!r}{', ' + shown if shown else ''})"


def text_features(model: Any) -> list[str]:
    """The columns ``model`` one-hot encodes itself (its fitted ``encoder_``): they go in raw, unchecked
    (a missing value or an unseen category is a category of its own); the others must be numbers."""
    encoder = getattr(model, "encoder_", None)
    return [] if encoder is None else [str(c) for c in encoder.text_]


def score_frame(model: Any, part: pd.DataFrame, features: Sequence[str], keep: Sequence[str] = (),
                label: bool = False, label_dtype: Any = np.int8, invalid: str = "error") -> pd.DataFrame:
    """One pandas partition scored: its ``keep`` columns, ``score``, and ``label`` (``score > threshold_``).

    The one frame-level scorer behind the Dask and Spark paths, so both give
    the same columns as :func:`score_table`. Rows are checked as
    ``decision_function`` checks them (:func:`check_rows`; the text columns
    of a model that encodes them are taken as they are); a bad row follows
    ``invalid``: ``'error'`` raises ``ValueError`` naming the row (its index
    and ``keep`` values) and column, ``'skip'`` drops it, ``'quarantine'``
    keeps it with a null ``score`` (and ``label``) and the reason in a
    ``reason`` column (null for scored rows), which that policy adds.
    """
    check_policy(invalid)
    text = text_features(model)
    numeric = [c for c in features if c not in text]
    checked = check_rows(frame_columns(part, numeric))
    if invalid == "error" and checked.bad.any():
        i = int(np.flatnonzero(checked.bad)[0])
        raise ValueError(f"{_row_label(part, i, list(keep))}: {checked.reasons[0]} "
                         "(invalid='skip' or 'quarantine' scores the other rows)")
    good = ~checked.bad
    rows = part if invalid == "quarantine" else part[good]
    out = rows[list(keep)].copy() if keep else pd.DataFrame(index=rows.index)
    scores = np.full(len(part), np.nan)
    scores[good] = scores_of(model, checked.X[good], numeric, part[text][good] if text else None)
    scores = scores if invalid == "quarantine" else scores[good]
    out["score"] = scores
    if label:
        labels = (scores > model.threshold_).astype(label_dtype)
        if invalid == "quarantine":
            labels = pd.array(labels, dtype=pd.Int32Dtype() if np.dtype(label_dtype).itemsize == 4 else
                              pd.Int8Dtype())
            labels[checked.bad] = pd.NA
        out["label"] = labels
    if invalid == "quarantine":
        reasons = np.full(len(part), None, dtype=object)
        reasons[checked.bad] = checked.reasons
        out["reason"] = reasons
    return out


def scores_of(model: Any, X: np.ndarray, numeric: Sequence[str], text: pd.DataFrame | None = None,
              explain: bool = False) -> Any:
    """``decision_function`` (or ``score_components``) of checked float64 rows ``X`` (the columns
    ``numeric``) and, for a model that encodes text columns, those columns as they are (``text``, the
    same rows). The model gets a frame with its feature names when it has them (the names were
    matched: no warning, no positional guess)."""
    if len(X) == 0:
        empty = pd.DataFrame({c: np.empty(0) for c in ("score", *COMPONENT_COLUMNS)})
        return empty if explain else np.empty(0)
    names = getattr(model, "feature_names_in_", None)
    rows = X if names is None else pd.DataFrame(X, columns=list(numeric), copy=False)
    if text is not None and len(text.columns):
        rows = pd.concat([rows, text.reset_index(drop=True)], axis=1)[[str(c) for c in names]]
    if explain:
        return model.score_components(rows)
    return np.asarray(model.decision_function(rows), dtype=np.float64)
