"""The evaluation protocol of PROTOCOL.md, steps 1-4, and its metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from deepod_mnp.benchmark.protocol import (
    drop_constant_features,
    evaluate,
    make_split,
    semi_labels,
    split_indices,
    subsample_train,
)
from deepod_mnp.datasets import load_pendigits

N_NORMAL, N_ANOMALY = 1000, 57


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_NORMAL + N_ANOMALY, 4))
    y = np.r_[np.zeros(N_NORMAL, dtype=int), np.ones(N_ANOMALY, dtype=int)]
    order = rng.permutation(len(y))
    return X[order], y[order]


def _expected_sizes(n: int) -> tuple[int, int, int]:
    # sklearn: n_test = ceil(test_size * n), with the authors' test_size expressions
    rest = math.ceil((0.35 + 0.05) * n)
    val = math.ceil(0.05 / (0.35 + 0.05) * rest)
    return n - rest, rest - val, val


@pytest.mark.parametrize("label, n", [(0, N_NORMAL), (1, N_ANOMALY)])
def test_each_class_is_split_60_35_5(data, label, n):
    _, y = data
    train, test, val = split_indices(y)
    counts = tuple(int(np.sum(y[idx] == label)) for idx in (train, test, val))
    assert counts == _expected_sizes(n)
    for count, share in zip(counts, (0.60, 0.35, 0.05)):
        assert abs(count - share * n) <= 1.5


def test_split_is_a_partition_normals_first(data):
    _, y = data
    train, test, val = split_indices(y)
    assert np.array_equal(np.sort(np.concatenate([train, test, val])), np.arange(len(y)))
    for idx in (train, test, val):
        labels = y[idx]
        assert np.all(np.diff(labels) >= 0), "normals must come before anomalies"


def test_anomaly_ratio_is_kept(data):
    X, y = data
    split = make_split(X, y)
    ratio = N_ANOMALY / (N_NORMAL + N_ANOMALY)
    for labels in (split.y_train_true, split.y_test, split.y_val):
        assert abs(labels.mean() - ratio) < 0.01
    assert len(split.X_train) + len(split.X_test) + len(split.X_val) == len(y)


def test_constant_features_are_dropped(data):
    X, y = data
    X = np.column_stack([X[:, :2], np.full(len(X), 7.0), X[:, 2:]])
    X_kept, kept = drop_constant_features(X)
    assert kept.tolist() == [0, 1, 3, 4]
    assert np.array_equal(X_kept, X[:, [0, 1, 3, 4]])
    split = make_split(X, y)
    assert split.X_train.shape[1] == split.X_test.shape[1] == split.X_val.shape[1] == 4
    assert split.kept_features.tolist() == [0, 1, 3, 4]


def test_scaler_is_fitted_on_train_only(data):
    X, y = data
    train, test, _ = split_indices(y)
    X = X.copy()
    X[test[0], 0] = 100.0  # an extreme value that only the test split holds
    split = make_split(X, y)
    assert np.allclose(split.X_train.min(axis=0), 0) and np.allclose(split.X_train.max(axis=0), 1)
    lo, hi = X[train].min(axis=0), X[train].max(axis=0)
    assert np.allclose(split.X_test, (X[test] - lo) / (hi - lo))
    assert split.X_test[0, 0] > 1


@pytest.mark.parametrize("n_anomalies, ratio, expected", [
    (93, 0.01, 1),     # Pendigits at 1%: exactly one labeled anomaly
    (100, 0.01, 1),
    (250, 0.01, 3),    # ceil(2.5)
    (40, 0.05, 2),
    (40, 0.0, 0),
    (40, 1.0, 40),
])
def test_labeled_count_is_ceil_of_ratio(n_anomalies, ratio, expected):
    rng = np.random.default_rng(1)
    y_train = np.r_[np.zeros(500, dtype=int), np.ones(n_anomalies, dtype=int)]
    y_train = y_train[rng.permutation(len(y_train))]
    y_semi = semi_labels(y_train, ratio)
    assert y_semi.sum() == expected
    # the first anomalies in split order are the labeled ones
    assert np.array_equal(np.flatnonzero(y_semi), np.flatnonzero(y_train)[:expected])
    assert np.all(y_train[y_semi == 1] == 1)


def test_labeled_ratio_outside_unit_interval_is_an_error():
    with pytest.raises(ValueError, match="labeled_ratio"):
        semi_labels(np.array([0, 1, 1]), 1.5)


def test_pendigits_has_exactly_one_labeled_anomaly():
    X, y = load_pendigits()
    split = make_split(X, y, labeled_ratio=0.01)
    assert split.n_labeled == 1
    assert (len(split.X_train), len(split.X_test), len(split.X_val)) == (4121, 2405, 344)
    assert split.y_train_true.sum() == 93 and split.y_test.sum() == 55 and split.y_val.sum() == 8


def test_split_is_deterministic(data):
    X, y = data
    a, b = make_split(X, y), make_split(X, y)
    for name in ("X_train", "y_train_semi", "X_test", "y_test", "X_val", "y_val"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    other = split_indices(y, random_state=7)[0]
    assert not np.array_equal(np.sort(split_indices(y)[0]), np.sort(other))


def test_too_few_samples_of_a_class_is_an_error():
    with pytest.raises(ValueError, match="at least 3 samples of class 1"):
        split_indices(np.r_[np.zeros(20, dtype=int), [1, 1]])


def test_subsample_train_keeps_labeled_anomalies(data):
    X, y = data
    split = make_split(X, y, labeled_ratio=0.2)
    small = subsample_train(split, 100)
    assert len(small.X_train) == 100 and small.n_labeled == split.n_labeled
    assert np.array_equal(small.X_test, split.X_test)
    assert subsample_train(split, None) is split


def test_metrics_on_a_hand_computed_example():
    y = np.array([1, 0, 1, 0])
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    result = evaluate(y, scores)
    # PR points (recall, precision): (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5); trapezoids: .5 + .5*(.5+2/3)/2
    assert result["auc_pr"] == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert result["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["auc_roc"] == pytest.approx(0.75)
    assert evaluate(y, -scores + 10)["auc_roc"] == pytest.approx(0.25)


def test_non_finite_scores_are_an_error():
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluate(np.array([0, 1]), np.array([0.1, np.nan]))
