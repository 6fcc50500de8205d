"""The input encoding a detector learns in ``fit``: the text columns of a table as one-hot features.

A detector fitted on a pandas DataFrame whose columns are not all numeric
learns a :class:`TableEncoder` (its fitted ``encoder_``) and applies it to
every table it scores, so the raw table goes into ``fit``,
``decision_function`` and ``deepod-mnp score`` alike. Numeric columns pass
through unchanged; each text column (object, string or category dtype)
becomes one 0/1 feature per category seen in ``fit``, with scikit-learn's
:class:`~sklearn.preprocessing.OneHotEncoder`:

* a missing value is a category of its own (``'<missing>'``), as
  ``deepod-mnp bench`` encodes CSV files;
* a category not seen in ``fit`` is encoded as all zeros
  (``handle_unknown='ignore'``), never an error;
* a numeric value in a text column is compared as text, with integral floats
  written as integers (``3.0`` and ``3`` are the category ``'3'``), so a code
  column read as numbers in one file and as text in another gives the same
  features.

The encoder's state is plain lists of strings (:meth:`TableEncoder.get_state`),
which the checkpoint stores without pickling any object. A DataFrame of
numeric columns only gets no encoder: the detector sees it exactly as the
same numbers in an array.
"""
from __future__ import annotations

import logging
import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import OneHotEncoder

logger = logging.getLogger(__name__)

MISSING = "<missing>"
#: A text column with more categories than this, and more than half as many as rows, looks like an
#: identifier or free text (one feature per row): :func:`identifier_like` names it.
MANY_CATEGORIES = 100


def is_text(column: pd.Series) -> bool:
    """Whether the encoder one-hot encodes ``column``: object, string or category dtype."""
    dtype = column.dtype
    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype))


def _other_columns(X: pd.DataFrame) -> list[str]:
    """Columns neither numeric (bool included) nor text: dates, durations, intervals."""
    return [str(c) for c in X.columns
            if not (is_text(X[c]) or pd.api.types.is_numeric_dtype(X[c].dtype)
                    or pd.api.types.is_bool_dtype(X[c].dtype))]


def has_text(X: Any) -> bool:
    """Whether ``X`` is a DataFrame with at least one text column (one that a detector encodes)."""
    return isinstance(X, pd.DataFrame) and any(is_text(X[c]) for c in X.columns)


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value)


def as_categories(column: pd.Series) -> np.ndarray:
    """``column``'s values as category names (object array of str); missing values are ``'<missing>'``."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    names = np.array([*(_text_value(u) for u in uniques), MISSING], dtype=object)
    return names[codes]  # code -1 (missing) picks the last name


def identifier_like(X: pd.DataFrame) -> list[tuple[str, int]]:
    """Text columns of ``X`` with one category for most rows: ``[(column, n_distinct), ...]``.

    Such a column (an id, free text, or numbers with a few stray non-numeric
    entries) adds one feature per row when one-hot encoded; it should be
    dropped or cleaned instead.
    """
    out = []
    for c in X.columns:
        if is_text(X[c]):
            n = int(X[c].nunique(dropna=False))
            if n > MANY_CATEGORIES and n > len(X) // 2:
                out.append((str(c), n))
    return out


def _onehot(categories: Any = "auto") -> OneHotEncoder:
    return OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False,
                         dtype=np.float64)


class TableEncoder:
    """One-hot encoding of a table's text columns, numeric columns passed through.

    The output has the numeric columns first (in their order), then one block
    of 0/1 columns per text column (in their order), one per category seen in
    ``fit``, sorted. See the module docstring for missing values and unseen
    categories.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        The columns of ``fit``, in order.
    numeric_ : list of str
        The columns passed through as numbers.
    text_ : list of str
        The columns one-hot encoded.
    categories_ : list of list of str
        The categories of each text column, sorted.
    n_features_out_ : int
        Width of the output: ``len(numeric_)`` plus the number of categories.
    """

    def fit(self, X: pd.DataFrame) -> TableEncoder:
        """Learn the text columns of ``X`` and their categories.

        Parameters
        ----------
        X : pandas.DataFrame
            With string column names; every column numeric (bool included) or
            text (object, string, category).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``X`` is not a DataFrame with string column names, has a column of
            another kind (dates, durations), or missing values in a numeric column.

        Warns
        -----
        UserWarning
            A text column looks like an identifier (see :func:`identifier_like`).
        """
        self._check_frame(X)
        other = _other_columns(X)
        if other:
            raise ValueError(f"column(s) {other} are neither numbers nor text (dtypes "
                             f"{[str(X[c].dtype) for c in other]}); convert them to numbers (e.g. a date "
                             "to its day of week) or drop them.")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.text_ = [str(c) for c in X.columns if is_text(X[c])]
        self.numeric_ = [c for c in self.feature_names_in_ if c not in set(self.text_)]
        for column, n in identifier_like(X):
            warnings.warn(f"text column {column!r} has {n:,} distinct values in {len(X):,} rows: one-hot "
                          "encoding adds a feature per value. Drop an identifier or free text; clean a "
                          "numeric column with a few non-numeric entries.", UserWarning, stacklevel=2)
        self._onehot = _onehot().fit(self._text_matrix(X)) if self.text_ else None
        self.categories_ = ([[str(v) for v in cats] for cats in self._onehot.categories_]
                            if self._onehot is not None else [])
        self._check_numeric(X)
        self.n_features_out_ = len(self.numeric_) + sum(len(c) for c in self.categories_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The encoded table: float64 of shape (n_samples, ``n_features_out_``).

        Columns are taken by name (other columns are ignored); a missing one is a ``ValueError``.
        """
        self._check_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in set(map(str, X.columns))]
        if missing:
            raise ValueError(f"X lacks the column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                             f"that the encoder was fitted on ({len(self.feature_names_in_)} in all).")
        X = X.set_axis([str(c) for c in X.columns], axis=1)
        self._check_numeric(X)
        numeric = X[self.numeric_].astype(np.float64).to_numpy() if self.numeric_ else np.empty((len(X), 0))
        if self._onehot is None:
            return np.ascontiguousarray(numeric)
        text = self._text_matrix(X)
        if logger.isEnabledFor(logging.DEBUG):
            for j, column in enumerate(self.text_):
                unseen = int((~np.isin(text[:, j], self.categories_[j])).sum())
                if unseen:
                    logger.debug("column %r: %d row(s) of categories unseen in fit (encoded as zeros)",
                                 column, unseen)
        return np.ascontiguousarray(np.hstack([numeric, self._onehot.transform(text)]))

    def fit_transform(self, X: pd.DataFrame) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same table."""
        return self.fit(X).transform(X)

    def get_feature_names_out(self) -> np.ndarray:
        """Names of the output columns: the numeric ones, then ``'column=category'``."""
        names = [*self.numeric_, *(f"{c}={v}" for c, cats in zip(self.text_, self.categories_) for v in cats)]
        return np.asarray(names, dtype=object)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _check_frame(X: Any) -> None:
        if not isinstance(X, pd.DataFrame):
            raise ValueError(f"the text columns are encoded by name, so X must be a pandas DataFrame, got "
                             f"{type(X).__name__}.")
        if not all(isinstance(c, str) for c in X.columns):
            raise ValueError("the text columns are encoded by name, so every column name must be a string "
                             "(X.columns = X.columns.astype(str)).")

    def _check_numeric(self, X: pd.DataFrame) -> None:
        with_nan = [c for c in self.numeric_ if X[c].isna().any()]
        if with_nan:
            raise ValueError(f"numeric column(s) {with_nan} have missing values; impute or drop them (a "
                             "missing value in a text column is a category of its own).")

    def _text_matrix(self, X: pd.DataFrame) -> np.ndarray:
        if not len(X):
            return np.empty((0, len(self.text_)), dtype=object)
        return np.column_stack([as_categories(X[c]) for c in self.text_])

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict[str, Any]:
        """Plain lists of strings that :meth:`from_state` turns back into this fitted encoder."""
        return {"feature_names_in_": [str(c) for c in self.feature_names_in_], "text_": list(self.text_),
                "categories_": [list(c) for c in self.categories_]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableEncoder:
        """The fitted encoder that :meth:`get_state` described; ``ValueError`` for an inconsistent state."""
        names, text, categories = state["feature_names_in_"], state["text_"], state["categories_"]
        if not (isinstance(names, list) and isinstance(text, list) and isinstance(categories, list)
                and all(isinstance(v, str) for v in [*names, *text])
                and len(categories) == len(text) and set(text) <= set(names)
                and all(isinstance(c, list) and c and all(isinstance(v, str) for v in c)
                        for c in categories)):
            raise ValueError("the encoder's state is not lists of column names and categories")
        encoder = cls()
        encoder.feature_names_in_ = np.asarray(names, dtype=object)
        encoder.text_ = list(text)
        encoder.numeric_ = [c for c in names if c not in set(text)]
        encoder.categories_ = [list(c) for c in categories]
        encoder._onehot = None
        if text:
            cats = [np.asarray(c, dtype=object) for c in categories]
            # with the categories given, fit only checks them; one row of known categories suffices
            encoder._onehot = _onehot(cats).fit(np.array([[c[0] for c in cats]], dtype=object))
        encoder.n_features_out_ = len(encoder.numeric_) + sum(len(c) for c in categories)
        return encoder

    def summary(self) -> dict[str, Any]:
        """What the model card lists: the numeric and text columns, each text column's categories."""
        return {"numeric_columns": list(self.numeric_),
                "text_columns": {c: list(cats) for c, cats in zip(self.text_, self.categories_)},
                "n_features_out": int(self.n_features_out_),
                "unseen_categories": "encoded as all zeros", "missing_values_in_text": repr(MISSING)}

    def __repr__(self) -> str:
        if not hasattr(self, "n_features_out_"):
            return "TableEncoder()"
        return (f"TableEncoder({len(self.numeric_)} numeric, {len(self.text_)} text column(s) -> "
                f"{self.n_features_out_} features)")
