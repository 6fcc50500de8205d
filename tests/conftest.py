"""Shared fixtures: a small weakly labeled data set and tiny, fast MNP detectors.

Every MNP built here has an explicit small training budget, so no test depends
on the default number of epochs for its speed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Small budgets: each fit takes a fraction of a second on one CPU core.
TINY_MNP = dict(epochs=2, epoch_steps=8, pretrain_epochs=1, n_prototypes=2, batch_size=64,
                anomaly_batch_size=8, device="cpu", random_state=0)


@dataclass
class WeakData:
    """Unlabeled rows (y=0) from several normal modes plus planted anomalies, a few labeled."""

    X: np.ndarray  # (n, n_features) float64
    y: np.ndarray  # weak labels: 1 = labeled anomaly, 0 = unlabeled
    y_true: np.ndarray  # ground truth: 1 = planted anomaly
    n_modes: int


def make_weak_data(n_per_mode: int = 80, n_modes: int = 3, n_features: int = 6, n_anomalies: int = 12,
                   n_labeled: int = 4, seed: int = 0) -> WeakData:
    """``n_modes`` tight Gaussian modes of normal data and uniformly scattered anomalies.

    ``n_labeled`` of the anomalies are labeled (y=1); the other anomalies stay
    unlabeled (y=0) and contaminate the unlabeled set, as in the paper's setting.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(n_modes, n_features))
    normals = np.concatenate([c + rng.normal(0.0, 0.3, size=(n_per_mode, n_features)) for c in centers])
    anomalies = rng.uniform(-8.0, 8.0, size=(n_anomalies, n_features))
    X = np.concatenate([normals, anomalies])
    y_true = np.r_[np.zeros(len(normals), dtype=np.int64), np.ones(n_anomalies, dtype=np.int64)]
    order = rng.permutation(len(X))
    X, y_true = X[order], y_true[order]
    y = np.zeros_like(y_true)
    y[rng.choice(np.flatnonzero(y_true == 1), n_labeled, replace=False)] = 1
    return WeakData(X=X, y=y, y_true=y_true, n_modes=n_modes)


@pytest.fixture
def weak_data() -> WeakData:
    """A fresh copy for each test, so a test that mutates it cannot affect another."""
    return make_weak_data()


@pytest.fixture
def tiny_params() -> dict:
    return dict(TINY_MNP)


@pytest.fixture
def make_mnp():
    """Factory of tiny MNP detectors: ``make_mnp(random_state=3, n_prototypes='auto')``."""
    from deepod_mnp import MNP

    def factory(**overrides) -> MNP:
        return MNP(**{**TINY_MNP, **overrides})

    return factory


@pytest.fixture(scope="session")
def fitted_mnp():
    """One tiny MNP fitted on :func:`make_weak_data`, shared read-only: ``(model, data)``."""
    from deepod_mnp import MNP

    data = make_weak_data()
    model = MNP(**TINY_MNP).fit(data.X, data.y)
    return model, data


@pytest.fixture(scope="module")
def serving_data():
    """Seven-feature weak data for the serving tests (fused scorer, ONNX export)."""
    return make_weak_data(n_per_mode=120, n_features=7, seed=3)


@pytest.fixture(scope="module")
def serving_mnp(serving_data):
    """A tiny MNP fitted on :func:`serving_data` as a DataFrame (named columns), without input scaling."""
    import pandas as pd

    from deepod_mnp import MNP

    X = pd.DataFrame(serving_data.X, columns=[f"f{i}" for i in range(serving_data.X.shape[1])])
    return MNP(**{**TINY_MNP, "scaler": None}).fit(X, serving_data.y)


def random_rows(n: int, d: int, seed: int = 7) -> np.ndarray:
    """``n`` float32 rows of width ``d`` (normal, sd 3) to score."""
    return np.random.default_rng(seed).normal(0.0, 3.0, size=(n, d)).astype(np.float32)
