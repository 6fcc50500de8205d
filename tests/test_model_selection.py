"""AnomalyFoldSplit and the held-out-anomaly scorers, alone and inside scikit-learn's model selection."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import make_weak_data
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, cross_validate

from deepod_mnp import MNP
from deepod_mnp.model_selection import AnomalyFoldSplit, heldout_anomaly_ap, heldout_anomaly_auc


def _y(n_unlabeled: int, n_anomalies: int, seed: int = 0) -> np.ndarray:
    y = np.r_[np.zeros(n_unlabeled, dtype=int), np.ones(n_anomalies, dtype=int)]
    return np.random.default_rng(seed).permutation(y)


@pytest.mark.parametrize("n_anomalies, n_splits, expected", [(2, 3, 2), (3, 3, 3), (7, 3, 3), (50, 5, 5)])
def test_folds_partition_the_anomalies(n_anomalies, n_splits, expected):
    y = _y(300, n_anomalies)
    splitter = AnomalyFoldSplit(n_splits)
    folds = list(splitter.split(np.zeros((len(y), 1)), y))
    assert len(folds) == expected == splitter.get_n_splits(y=y)
    held = [test[y[test] == 1] for _, test in folds]
    # every labeled anomaly is held out exactly once, never trained on in its own fold
    assert sorted(np.concatenate(held).tolist()) == np.flatnonzero(y == 1).tolist()
    for (train, test), h in zip(folds, held):
        assert not set(train) & set(test)
        assert set(np.flatnonzero(y == 1)) - set(h) == set(train[y[train] == 1])


def test_unlabeled_samples_are_fixed_disjoint_and_bounded():
    y = _y(20_000, 9)
    splitter = AnomalyFoldSplit(3, max_fit=1000, max_eval=700, random_state=3)
    fit_rows, eval_rows = splitter.samples(y)
    assert len(fit_rows) == 1000 and len(eval_rows) == 700
    assert not set(fit_rows) & set(eval_rows) and (y[fit_rows] == 0).all() and (y[eval_rows] == 0).all()
    for train, test in splitter.split(None, y):  # the same two samples in every fold
        assert set(train[y[train] == 0]) == set(fit_rows)
        assert set(test[y[test] == 0]) == set(eval_rows)
    # same seed, same folds; another seed, other samples
    same = AnomalyFoldSplit(3, max_fit=1000, max_eval=700, random_state=3)
    again = [t.tolist() for t, _ in same.split(None, y)]
    assert again == [t.tolist() for t, _ in splitter.split(None, y)]
    assert AnomalyFoldSplit(3, max_fit=1000, max_eval=700, random_state=4).samples(y)[0].tolist() != \
        fit_rows.tolist()


def test_small_tables_split_their_unlabeled_rows_in_half():
    y = _y(41, 2)
    fit_rows, eval_rows = AnomalyFoldSplit(2).samples(y)
    assert (len(fit_rows), len(eval_rows)) == (21, 20)
    assert len(AnomalyFoldSplit(2, max_fit=None).samples(_y(10_000, 2))[0]) == 10_000 - 4096


@pytest.mark.parametrize("y, message", [
    (np.r_[np.zeros(50), 1], "at least 2"),
    (np.zeros(50), "at least 2"),
    (np.r_[np.zeros(50), 2, 1], "only 0"),
    (np.r_[1, 1, 1], "unlabeled"),
    (None, "needs y"),
])
def test_split_refuses_what_cannot_be_folded(y, message):
    with pytest.raises(ValueError, match=message):
        list(AnomalyFoldSplit(2).split(np.zeros((3, 1)), y))


class _OneFeature(BaseEstimator):
    """Scores a row by the absolute value of one feature (a detector with one parameter to tune)."""

    def __init__(self, feature: int = 0) -> None:
        self.feature = feature

    def fit(self, X, y=None):
        self.center_ = np.median(X[:, self.feature])
        return self

    def decision_function(self, X):
        return np.abs(X[:, self.feature] - self.center_)


def _informative_data(seed: int = 0):
    """Feature 0 separates the anomalies; features 1-3 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 4))
    y_true = np.zeros(600, dtype=int)
    y_true[:30] = 1
    X[:30, 0] += 6
    y = np.zeros(600, dtype=int)
    y[:9] = 1  # 9 of the 30 anomalies are labeled; 21 hide among the unlabeled rows
    return X, y


def test_grid_search_finds_the_informative_feature_from_the_labels_alone():
    X, y = _informative_data()
    search = GridSearchCV(_OneFeature(), {"feature": [1, 2, 0, 3]}, cv=AnomalyFoldSplit(3),
                          scoring=heldout_anomaly_auc).fit(X, y)
    assert search.best_params_ == {"feature": 0}
    assert search.best_score_ > 0.95
    noise = search.cv_results_["mean_test_score"][search.cv_results_["param_feature"] != 0]
    assert np.all(np.abs(noise - 0.5) < 0.25)  # the noise features rank anomalies at chance


def test_scorers_measure_held_out_anomalies_against_unseen_rows():
    X, y = _informative_data()
    model = _OneFeature(0).fit(X, y)
    # every anomaly outranks every normal row; the 21 hidden anomalies among the unlabeled rows tie in
    # distribution with the 9 labeled ones, so the AUC is 1 - 0.5 * 21 / 591, give or take their draw
    assert heldout_anomaly_auc(model, X, y) == pytest.approx(1 - 0.5 * 21 / 591, abs=0.01)
    # the 21 anomalies nobody labeled score as high as the 9 labeled ones: AP sees them, AUC does not
    ap = heldout_anomaly_ap(model, X, y)
    assert 10 * y.mean() < ap < 0.8
    reverse = _OneFeature(0).fit(X, y)
    reverse.center_ = 1e9  # scores run the other way: anomalies rank last
    assert heldout_anomaly_auc(reverse, X, y) < 0.05


def test_cross_validate_runs_mnp_with_the_users_labels():
    data = make_weak_data(n_per_mode=400, n_anomalies=40, n_labeled=12, seed=0)
    result = cross_validate(MNP(device="cpu", random_state=0), data.X, data.y,
                            cv=AnomalyFoldSplit(3, random_state=0),
                            scoring={"auc": heldout_anomaly_auc, "ap": heldout_anomaly_ap})
    assert len(result["test_auc"]) == 3
    # held-out anomalies far from three tight normal modes rank high among unseen rows: measured 0.856
    # (folds 0.75, 0.91, 0.90), far from chance (0.5); AP against the 28 hidden anomalies is lower
    assert result["test_auc"].mean() > 0.8 and result["test_auc"].min() > 0.65
    assert result["test_ap"].mean() < result["test_auc"].mean()
