"""The evaluation protocol of ``PROTOCOL.md`` (steps 1-4 and the metrics of step 6).

The split follows the MNP authors' public code: normals and anomalies are split
separately with ``train_test_split(random_state=2024)`` into train / test /
validation = 60 / 35 / 5 %, min-max scaled on the train split only, and the
first ``ceil(r * n_train_anomalies)`` train anomalies are labeled.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from sklearn import metrics
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

logger = logging.getLogger(__name__)

SPLIT_SEED = 2024
TEST_RATIO = 0.35
VAL_RATIO = 0.05


@dataclass
class Split:
    """Train / test / validation data of one data set under the protocol.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features)
        Min-max scaled training data (normals first, then anomalies).
    y_train_true : ndarray of shape (n_train,)
        True 0/1 labels of the training data (never given to a detector).
    y_train_semi : ndarray of shape (n_train,)
        Weak labels: 1 for the labeled anomalies, 0 for every other sample.
    X_test, y_test : ndarray
        Scaled test data and its true labels.
    X_val, y_val : ndarray
        Scaled validation data and its labels; no detector ever sees them.
    kept_features : ndarray of int
        Indices of the input columns kept after dropping constant features.
    """

    X_train: np.ndarray
    y_train_true: np.ndarray
    y_train_semi: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    kept_features: np.ndarray

    @property
    def n_labeled(self) -> int:
        """Number of labeled anomalies in the train split."""
        return int(self.y_train_semi.sum())


def drop_constant_features(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: remove the columns that take a single value over the whole data set.

    Returns
    -------
    X_kept : ndarray
        ``X`` without its constant columns.
    kept : ndarray of int
        Indices of the kept columns.
    """
    kept = np.flatnonzero(np.ptp(X, axis=0) > 0) if len(X) else np.arange(X.shape[1])
    if len(kept) < X.shape[1]:
        logger.info("Dropped %d constant feature(s) of %d.", X.shape[1] - len(kept), X.shape[1])
    return X[:, kept], kept


def _split_class(idx: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # The authors' expressions (test_size = test + val, then val / (test + val)) are kept
    # verbatim, float rounding included, so that the split is theirs row for row.
    train, rest = train_test_split(idx, test_size=TEST_RATIO + VAL_RATIO, random_state=random_state)
    test, val = train_test_split(rest, test_size=VAL_RATIO / (TEST_RATIO + VAL_RATIO),
                                 random_state=random_state)
    return train, test, val


def split_indices(y: np.ndarray, random_state: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: row indices of train / test / validation, normals first, then anomalies.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, 0 normal and 1 anomaly; each class needs at least 3 samples.
    random_state : int, default=2024
        Seed of both ``train_test_split`` calls.

    Returns
    -------
    train, test, val : ndarray of int
    """
    y = np.asarray(y)
    parts = []
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        if len(idx) < 3:
            raise ValueError(f"The protocol needs at least 3 samples of class {label}; got {len(idx)}.")
        parts.append(_split_class(idx, random_state))
    return tuple(np.concatenate([normal, anomaly]) for normal, anomaly in zip(*parts))


def semi_labels(y_train: np.ndarray, labeled_ratio: float) -> np.ndarray:
    """Step 4: label the first ``ceil(r * n_train_anomalies)`` train anomalies (in split order).

    Parameters
    ----------
    y_train : ndarray of shape (n_train,)
        True train labels.
    labeled_ratio : float in [0, 1]
        Share r of the train anomalies that is labeled.

    Returns
    -------
    ndarray of int64
        1 for a labeled anomaly, 0 for every other sample.
    """
    if not 0 <= labeled_ratio <= 1:
        raise ValueError(f"labeled_ratio={labeled_ratio!r} is outside [0, 1].")
    anomalies = np.flatnonzero(np.asarray(y_train) == 1)
    n_known = min(math.ceil(len(anomalies) * labeled_ratio), len(anomalies))
    y_semi = np.zeros(len(y_train), dtype=np.int64)
    y_semi[anomalies[:n_known]] = 1
    return y_semi


def make_split(X: np.ndarray, y: np.ndarray, labeled_ratio: float = 0.01,
               random_state: int = SPLIT_SEED, *, test_anomalies: np.ndarray | None = None) -> Split:
    """Apply protocol steps 1-4 to a whole data set.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        0 normal, 1 anomaly.
    labeled_ratio : float, default=0.01
        Share of the train anomalies that is labeled.
    random_state : int, default=2024
        Split seed (the protocol fixes it).
    test_anomalies : ndarray of shape (n_unseen, n_features), optional
        Anomalies of a type the detector must never see (the unseen-anomaly
        experiment). They are split 60/35/5 like a class and only their test
        share is used: it *replaces* the test anomalies of ``y``, so the test
        split holds the test normals and unseen anomalies only, while the
        anomalies of ``y`` stay in train and validation. Constant-feature
        dropping and scaling are those of ``X``.

    Returns
    -------
    Split
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-D with one row per label; got X {X.shape} and y {y.shape}.")
    n_features = X.shape[1]
    X, kept = drop_constant_features(X)
    train, test, val = split_indices(y, random_state)
    scaler = MinMaxScaler().fit(X[train])
    y_train = y[train]
    X_test, y_test = scaler.transform(X[test]), y[test]
    if test_anomalies is not None:
        unseen = np.asarray(test_anomalies, dtype=np.float64)
        if unseen.ndim != 2 or unseen.shape[1] != n_features or len(unseen) < 3:
            raise ValueError(f"test_anomalies must be 2-D with {n_features} columns and at least 3 rows; "
                             f"got shape {unseen.shape}.")
        _, unseen_test, _ = _split_class(np.arange(len(unseen)), random_state)
        normal = y_test == 0
        X_test = np.vstack([X_test[normal], scaler.transform(unseen[unseen_test][:, kept])])
        y_test = np.r_[y_test[normal], np.ones(len(unseen_test), dtype=np.int64)]
    return Split(X_train=scaler.transform(X[train]), y_train_true=y_train,
                 y_train_semi=semi_labels(y_train, labeled_ratio),
                 X_test=X_test, y_test=y_test,
                 X_val=scaler.transform(X[val]), y_val=y[val], kept_features=kept)


def subsample_train(split: Split, max_train: int | None, random_state: int = SPLIT_SEED) -> Split:
    """Keep at most ``max_train`` train rows (for quick runs; not part of the protocol).

    Every labeled anomaly is kept; the other rows are a uniform random subset in
    their original order. Test and validation data are unchanged.
    """
    n_train = len(split.X_train)
    if max_train is None or n_train <= max_train:
        return split
    labeled = np.flatnonzero(split.y_train_semi == 1)
    if max_train <= len(labeled):
        raise ValueError(f"max_train={max_train} must exceed the {len(labeled)} labeled anomalies.")
    others = np.flatnonzero(split.y_train_semi == 0)
    rng = np.random.default_rng(random_state)
    keep = np.sort(np.concatenate([labeled, rng.choice(others, max_train - len(labeled), replace=False)]))
    return Split(X_train=split.X_train[keep], y_train_true=split.y_train_true[keep],
                 y_train_semi=split.y_train_semi[keep], X_test=split.X_test, y_test=split.y_test,
                 X_val=split.X_val, y_val=split.y_val, kept_features=split.kept_features)


def auc_pr(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AUC-PR as the paper computes it: trapezoidal area under ``precision_recall_curve``."""
    precision, recall, _ = metrics.precision_recall_curve(y_true, scores)
    return float(metrics.auc(recall, precision))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve)."""
    return float(metrics.average_precision_score(y_true, scores))


def auc_roc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve."""
    return float(metrics.roc_auc_score(y_true, scores))


METRICS = {"auc_pr": auc_pr, "ap": average_precision, "auc_roc": auc_roc}


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """All metrics of :data:`METRICS`; non-finite scores are an error.

    Returns
    -------
    dict
        ``{'auc_pr': ..., 'ap': ..., 'auc_roc': ...}``.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(scores) != len(y_true):
        raise ValueError(f"Got {len(scores)} scores for {len(y_true)} test samples.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} test score(s) are NaN or infinite.")
    return {name: fn(y_true, scores) for name, fn in METRICS.items()}
