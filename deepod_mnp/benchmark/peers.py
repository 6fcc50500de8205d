"""The detectors a user would try first: boosted classifiers with unlabeled rows as normal.

Each peer treats the weak labels as a binary target (1 = labeled anomaly,
0 = every unlabeled row, taken as normal) and fits a gradient-boosted
classifier with its library defaults, except for what the set-up needs:

* **class weighting**, so that the handful of labeled anomalies is not drowned
  by the unlabeled rows:

  - :class:`CatBoostPeer`: ``CatBoostClassifier(auto_class_weights='Balanced',
    thread_count=n_jobs, random_seed=random_state, verbose=0)``;
  - :class:`LightGBMPeer`: ``LGBMClassifier(class_weight='balanced',
    n_jobs=n_jobs, random_state=random_state, verbose=-1)``;
  - :class:`XGBoostPeer`: ``XGBClassifier(scale_pos_weight=n_unlabeled / n_labeled,
    n_jobs=n_jobs, random_state=random_state)``;

* **threads and seed** (``n_jobs``, ``random_state``).

:class:`XGBODPeer` is PyOD's ``XGBOD`` as is (``XGBOD(n_jobs=n_jobs,
random_state=random_state)``): it appends the scores of PyOD's default bank of
unsupervised detectors (KNN, LOF, HBOS, OCSVM, IForest at several settings) to
the features and fits XGBoost on the weak labels.

The scores are the classifiers' raw margins (log-odds), which rank the rows as
the predicted anomaly probability does without saturating at 1.

The libraries are optional: ``pip install 'deepod-mnp[boost]'`` installs
CatBoost, LightGBM and XGBoost (XGBOD needs XGBoost). A peer whose library is
missing raises :class:`PeerNotInstalledError` (an ``ImportError``) at ``fit``,
naming the extra; ``bench`` records such a job as failed with that message.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

EXTRA_HINT = "pip install 'deepod-mnp[boost]'"


class PeerNotInstalledError(ImportError):
    """The library a peer wraps is not installed."""


def _require(module: str, peer: str) -> Any:
    """Import ``module`` or raise :class:`PeerNotInstalledError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerNotInstalledError(
            f"{peer} needs the '{module.split('.')[0]}' package, which is not installed: "
            f"{EXTRA_HINT}.") from exc


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()


class _WeakLabelPeer(BaseEstimator):
    """Shared fit/score logic: validate, fit the wrapped classifier, score by its margin."""

    _peer_name = "peer"
    #: The library the peer wraps (what ``pip install 'deepod-mnp[boost]'`` brings).
    library = ""

    @classmethod
    def available(cls) -> bool:
        """Whether the wrapped library is installed (checked without importing it)."""
        return importlib.util.find_spec(cls.library) is not None

    def __init__(self, *, n_jobs: int | None = None, random_state: int | None = 42) -> None:
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _threads(self) -> int:
        n = _default_threads() if self.n_jobs is None else self.n_jobs
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n_jobs must be a positive integer or None, got {self.n_jobs!r}.")
        return int(n)

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _make(self, y: np.ndarray) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _margin(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> _WeakLabelPeer:
        """Fit the classifier on the weak labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            1 for a labeled anomaly, 0 for an unlabeled row (taken as normal).

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(f"{self._peer_name} is supervised: fit(X, y) needs the weak labels y.")
        X = check_array(X, dtype=np.float64, ensure_all_finite=True)
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} labels for {len(X)} rows.")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("y must be 0 (unlabeled) or 1 (labeled anomaly).")
        y = y.astype(np.int64)
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            raise ValueError(f"{self._peer_name} needs both labeled anomalies and unlabeled rows; "
                             f"got {n_pos} labeled anomalies of {len(y)} rows.")
        self.estimator_ = self._make(y)
        self.estimator_.fit(X, y)
        self.n_features_in_ = X.shape[1]
        self.decision_scores_ = self._margin(X)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores (the classifier's margin); higher is more anomalous."""
        check_is_fitted(self, "estimator_")
        X = check_array(X, dtype=np.float64, ensure_all_finite=True)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the peer was fitted on {self.n_features_in_}.")
        return np.asarray(self._margin(X), dtype=np.float64).ravel()


class CatBoostPeer(_WeakLabelPeer):
    """``CatBoostClassifier`` on the weak labels, classes balanced, library defaults otherwise.

    Parameters
    ----------
    n_jobs : int or None, default=None
        ``thread_count``; None uses torch's current thread count (what
        ``bench --threads`` sets).
    random_state : int or None, default=42
        ``random_seed``.
    iterations : int or None, default=None
        Boosting rounds; None is CatBoost's default (1000), with the learning rate CatBoost picks
        for it. ``SelectByLabels`` uses fewer in its folds, where a cheaper model ranks as well.

    Attributes
    ----------
    estimator_ : catboost.CatBoostClassifier
        The fitted classifier.
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training rows.
    """

    _peer_name = "CatBoostPeer"
    library = "catboost"

    def __init__(self, *, n_jobs: int | None = None, random_state: int | None = 42,
                 iterations: int | None = None) -> None:
        super().__init__(n_jobs=n_jobs, random_state=random_state)
        self.iterations = iterations

    def _make(self, y: np.ndarray) -> Any:
        catboost = _require("catboost", self._peer_name)
        if self.iterations is not None and not (isinstance(self.iterations, (int, np.integer))
                                                and self.iterations >= 1):
            raise ValueError(f"iterations must be a positive integer or None, got {self.iterations!r}.")
        return catboost.CatBoostClassifier(auto_class_weights="Balanced", thread_count=self._threads(),
                                           random_seed=self._seed(), verbose=0, iterations=self.iterations,
                                           allow_writing_files=False)

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X, prediction_type="RawFormulaVal", thread_count=self._threads())


class LightGBMPeer(_WeakLabelPeer):
    """``LGBMClassifier`` on the weak labels, classes balanced, library defaults otherwise.

    Parameters
    ----------
    n_jobs : int or None, default=None
        ``n_jobs``; None uses torch's current thread count.
    random_state : int or None, default=42
        ``random_state``.

    Attributes
    ----------
    estimator_ : lightgbm.LGBMClassifier
        The fitted classifier.
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training rows.
    """

    _peer_name = "LightGBMPeer"
    library = "lightgbm"

    def _make(self, y: np.ndarray) -> Any:
        lightgbm = _require("lightgbm", self._peer_name)
        return lightgbm.LGBMClassifier(class_weight="balanced", n_jobs=self._threads(),
                                       random_state=self._seed(), verbose=-1)

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X, raw_score=True)


class XGBoostPeer(_WeakLabelPeer):
    """``XGBClassifier`` on the weak labels, ``scale_pos_weight`` = unlabeled / labeled, defaults otherwise.

    Parameters
    ----------
    n_jobs : int or None, default=None
        ``n_jobs``; None uses torch's current thread count.
    random_state : int or None, default=42
        ``random_state``.

    Attributes
    ----------
    estimator_ : xgboost.XGBClassifier
        The fitted classifier.
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training rows.
    """

    _peer_name = "XGBoostPeer"
    library = "xgboost"

    def _make(self, y: np.ndarray) -> Any:
        xgboost = _require("xgboost", self._peer_name)
        n_pos = int(y.sum())
        return xgboost.XGBClassifier(scale_pos_weight=(len(y) - n_pos) / n_pos, n_jobs=self._threads(),
                                     random_state=self._seed())

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X, output_margin=True)


class XGBODPeer(_WeakLabelPeer):
    """PyOD's ``XGBOD`` with its defaults (it needs XGBoost), threads and seed set.

    Parameters
    ----------
    n_jobs : int or None, default=None
        ``n_jobs`` of the XGBoost model; None uses torch's current thread count.
    random_state : int or None, default=42
        ``random_state``.

    Attributes
    ----------
    estimator_ : pyod.models.xgbod.XGBOD
        The fitted detector.
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training rows.
    """

    _peer_name = "XGBODPeer"
    library = "xgboost"

    def _make(self, y: np.ndarray) -> Any:
        _require("xgboost", self._peer_name)
        xgbod = _require("pyod.models.xgbod", self._peer_name)
        return xgbod.XGBOD(n_jobs=self._threads(), random_state=self._seed())

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.decision_function(X)
