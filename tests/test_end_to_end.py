"""End-to-end quality checks: MNP must learn, on synthetic structure and on real data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, make_split
from deepod_mnp.datasets import load_pendigits


def _multimodal(seed: int, n_per_mode: int = 600, n_anom: int = 60, dim: int = 10):
    """Three normal Gaussian modes (fixed centres) and anomalies scattered uniformly around them."""
    centers = np.random.default_rng(123).uniform(0.2, 0.8, size=(3, dim))
    rng = np.random.default_rng(seed)
    normals = np.concatenate([c + 0.03 * rng.standard_normal((n_per_mode, dim)) for c in centers])
    anomalies = rng.uniform(0.0, 1.0, size=(n_anom, dim))
    X = np.concatenate([normals, anomalies]).astype(np.float32)
    y = np.r_[np.zeros(len(normals), int), np.ones(n_anom, int)]
    return X, y


def test_mnp_learns_multimodal_normal_data():
    X, y = _multimodal(0)
    X_test, y_test = _multimodal(1)
    y_weak = np.zeros_like(y)
    y_weak[np.flatnonzero(y)[:5]] = 1  # 5 of 60 anomalies labeled, 55 hidden in the unlabeled data
    model = MNP(random_state=0, device="cpu").fit(X, y_weak)
    scores = model.decision_function(X_test)
    # Measured 0.915 with the defaults (seed 0, CPU; 0.973 and 0.845 on the draws _multimodal(2) and (4)
    # with random_state 1 and 2). The reconstruction error alone ranks these anomalies perfectly, but the
    # paper's scoring MLP sees it on a ~1e-3 scale next to unit-scale codes; recon_norm='log' reaches
    # 1.000 (tests/test_score_head.py). The floor is the one set when the default measured 0.91.
    assert roc_auc_score(y_test, scores) > 0.85
    assert auc_pr(y_test, scores) > 5 * y_test.mean()  # base rate is 3.2%
    hidden = (y == 1) & (y_weak == 0)  # unlabeled anomalies get lower normality weights
    w = model.score_components(X).normality_weight.to_numpy()
    assert w[hidden].mean() < w[y == 0].mean()


def test_mnp_on_bundled_pendigits_reaches_measured_floor():
    """Protocol split, 1 labeled anomaly, defaults, seed 42.

    Measured on a 2-core CPU: test AUC-PR 0.823, AUC-ROC 0.988 (BENCHMARKS.md
    has all 5 seeds). The floor 0.75 leaves room for BLAS differences across
    machines and is far above chance (0.022) and PyOD's IForest (0.27).
    """
    X, y = load_pendigits()
    split = make_split(X, y, labeled_ratio=0.01)
    assert split.n_labeled == 1
    model = MNP(random_state=42, device="cpu").fit(split.X_train, split.y_train_semi)
    assert auc_pr(split.y_test, model.decision_function(split.X_test)) >= 0.75


@pytest.mark.parametrize("n_prototypes", [1, 3])
def test_fixed_number_of_prototypes_beats_chance(n_prototypes):
    X, y = _multimodal(2)
    y_weak = np.zeros_like(y)
    y_weak[np.flatnonzero(y)[:5]] = 1
    model = MNP(n_prototypes=n_prototypes, random_state=0, device="cpu").fit(X, y_weak)
    assert model.n_prototypes_ == n_prototypes
    assert model.prototypes_.shape == (model.n_ensemble * n_prototypes, model.rep_dim)
    assert roc_auc_score(y, model.decision_scores_) > 0.7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mnp_on_cuda_learns_and_moves_to_cpu(tmp_path):
    """The whole fit runs on the GPU; a model saved there scores the same on the CPU."""
    X, y = _multimodal(0)
    X_test, y_test = _multimodal(1)
    y_weak = np.zeros_like(y)
    y_weak[np.flatnonzero(y)[:5]] = 1
    model = MNP(random_state=0, device="auto").fit(X, y_weak)
    assert model.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.net.parameters())
    scores = model.decision_function(X_test)
    assert np.isfinite(scores).all() and roc_auc_score(y_test, scores) > 0.75
    model.save_model(tmp_path / "gpu.pt")
    on_cpu = MNP.load_model(tmp_path / "gpu.pt", device="cpu")
    np.testing.assert_allclose(on_cpu.decision_function(X_test), scores, rtol=1e-4, atol=1e-5)
