"""Model selection with the user's own labeled anomalies, for any weakly supervised detector.

A weakly labeled table has two kinds of rows: a few *labeled anomalies*
(``y == 1``) and many *unlabeled* rows (``y == 0``, mostly normal but
contaminated with anomalies nobody labeled). There is no labeled normal row,
so scikit-learn's usual splitters and scorers do not measure what matters.
What can be measured is how high a labeled anomaly that the detector did not
see ranks among unlabeled rows that it did not see either.

:class:`AnomalyFoldSplit` makes such folds: the labeled anomalies are split
into ``n_splits`` groups; the unlabeled rows into one fixed *fitting sample*
and one fixed *evaluation sample* (the same in every fold, each of bounded
size). Fold ``i`` trains on the fitting sample and every labeled anomaly but
group ``i``; it tests on the evaluation sample and group ``i``. A scorer on the
test part then sees the held-out anomalies as ``y == 1`` and the evaluation
sample as ``y == 0``: :func:`heldout_anomaly_auc` (the probability that a
held-out anomaly outranks an unseen unlabeled row) and
:func:`heldout_anomaly_ap` (average precision) are such scorers. Both work with
scikit-learn's ``cross_validate`` and ``GridSearchCV`` for any estimator with
``fit(X, y)`` and ``decision_function`` (ours, DeepOD's, PyOD's)::

    from sklearn.model_selection import GridSearchCV
    from deepod_mnp import MNP
    from deepod_mnp.model_selection import AnomalyFoldSplit, heldout_anomaly_auc

    search = GridSearchCV(MNP(), {"n_prototypes": [1, "auto"]},
                          cv=AnomalyFoldSplit(n_splits=3), scoring=heldout_anomaly_auc)
    search.fit(X, y)   # y: 1 = labeled anomaly, 0 = unlabeled

Only the labels passed to ``fit`` are used, so the selection is honest: no
validation or test labels are involved.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

__all__ = ["AnomalyFoldSplit", "heldout_anomaly_auc", "heldout_anomaly_ap"]


class AnomalyFoldSplit(BaseCrossValidator):
    """Folds over the labeled anomalies, with a fixed fitting and evaluation sample of unlabeled rows.

    Parameters
    ----------
    n_splits : int, default=3
        Number of folds; at most the number of labeled anomalies (each fold
        holds out at least one). At least 2.
    eval_fraction : float in (0, 1), default=0.5
        Share of the unlabeled rows set aside as the evaluation sample (before
        the size caps below).
    max_eval : int, default=4096
        Largest evaluation sample.
    max_fit : int or None, default=4096
        Largest fitting sample of unlabeled rows (None: every unlabeled row not
        in the evaluation sample). Bounding it bounds the cost of a fold,
        whatever the size of the table.
    random_state : int, RandomState instance or None, default=0
        Seed of the shuffling of anomalies and unlabeled rows.

    Notes
    -----
    ``split`` needs ``y``: the weak labels (1 = labeled anomaly, 0 =
    unlabeled). Every fold shares the same fitting and evaluation samples, so
    candidates compared on the same folds are compared on the same rows.
    """

    def __init__(self, n_splits: int = 3, *, eval_fraction: float = 0.5, max_eval: int = 4096,
                 max_fit: int | None = 4096, random_state: Any = 0) -> None:
        self.n_splits = n_splits
        self.eval_fraction = eval_fraction
        self.max_eval = max_eval
        self.max_fit = max_fit
        self.random_state = random_state

    def _check(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(self.n_splits, (int, np.integer)) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an integer of at least 2, got {self.n_splits!r}.")
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction!r}.")
        if y is None:
            raise ValueError("AnomalyFoldSplit.split needs y: 1 for a labeled anomaly, 0 for an unlabeled "
                             "row.")
        y = np.asarray(y).ravel()
        if not np.isin(y, (0, 1)).all():
            raise ValueError("y must hold only 0 (unlabeled) and 1 (labeled anomaly).")
        anomalies, unlabeled = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        if len(anomalies) < 2:
            raise ValueError(f"folds over the labeled anomalies need at least 2 of them; y labels "
                             f"{len(anomalies)}.")
        if len(unlabeled) < 2:
            raise ValueError(f"y has {len(unlabeled)} unlabeled rows; the folds need at least 2.")
        return anomalies, unlabeled

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds: ``n_splits``, or the number of labeled anomalies if ``y`` has fewer."""
        if y is None:
            return self.n_splits
        anomalies, _ = self._check(y)
        return min(self.n_splits, len(anomalies))

    def _layout(self, y: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The anomaly groups of the folds, then the fitting and evaluation samples (sorted indices)."""
        anomalies, unlabeled = self._check(y)
        rng = check_random_state(self.random_state)
        anomalies = anomalies[rng.permutation(len(anomalies))]
        order = unlabeled[rng.permutation(len(unlabeled))]
        n_eval = max(1, min(int(round(self.eval_fraction * len(order))), self.max_eval, len(order) - 1))
        fit_rows = order[n_eval:] if self.max_fit is None else order[n_eval:n_eval + self.max_fit]
        groups = np.array_split(anomalies, min(self.n_splits, len(anomalies)))
        return groups, np.sort(fit_rows), np.sort(order[:n_eval])

    def samples(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """The fitting and evaluation samples of unlabeled rows (sorted row indices)."""
        _, fit_rows, eval_rows = self._layout(y)
        return fit_rows, eval_rows

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row indices of each fold.

        ``train`` is the fitting sample plus the labeled anomalies of the other
        folds; ``test`` the evaluation sample plus this fold's anomalies.
        """
        held_out, fit_rows, eval_rows = self._layout(y)
        for i, held in enumerate(held_out):
            kept = np.concatenate([g for j, g in enumerate(held_out) if j != i])
            yield np.sort(np.concatenate([fit_rows, kept])), np.sort(np.concatenate([eval_rows, held]))

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[np.ndarray]:
        for _, test in self.split(X, y, groups):
            yield test


def _scores(estimator: Any, X: Any) -> np.ndarray:
    return np.asarray(estimator.decision_function(X), dtype=np.float64).ravel()


def heldout_anomaly_auc(estimator: Any, X: Any, y: Any) -> float:
    """Probability that a held-out labeled anomaly scores above an unseen unlabeled row (ties half).

    A scikit-learn scorer (``scoring=heldout_anomaly_auc``): ``X``, ``y`` are
    a test fold of :class:`AnomalyFoldSplit`, ``y`` its weak labels. Higher
    ``decision_function`` must mean more anomalous (PyOD's and DeepOD's
    convention).
    """
    return float(roc_auc_score(np.asarray(y).ravel(), _scores(estimator, X)))


def heldout_anomaly_ap(estimator: Any, X: Any, y: Any) -> float:
    """Average precision of the held-out labeled anomalies among the unseen unlabeled rows.

    A scikit-learn scorer like :func:`heldout_anomaly_auc`; it weighs the top of
    the ranking, where the anomalies a user inspects are.
    """
    return float(average_precision_score(np.asarray(y).ravel(), _scores(estimator, X)))
