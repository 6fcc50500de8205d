"""Prototype initialisation (k-means on unit codes, silhouette choice of k) and AE pretraining,
as DeepOD's MNP module writes them."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import deepod_mnp.deepod_tabular.mnp as P
from deepod_mnp.deepod_tabular.mnp import AutoEncoder


def angular_clusters(k: int, n: int, dim: int = 8, spread: float = 0.05, seed: int = 0):
    """``k`` clusters of directions around orthonormal axes, with random norms.

    The norms vary by a factor of 6 inside each cluster, so only an angular
    (L2-normalised) clustering recovers the ``k`` groups.
    """
    rng = np.random.default_rng(seed)
    axes = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:k]
    labels = rng.integers(k, size=n)
    norms = rng.uniform(0.5, 3.0, size=(n, 1))
    Z = (axes[labels] + spread * rng.normal(size=(n, dim))) * norms
    return Z, labels, axes


@pytest.mark.parametrize("k", [3, 4])
def test_auto_finds_the_number_of_angular_clusters(k):
    Z, _, axes = angular_clusters(k, 600, seed=k)
    centers, silhouettes = P.init_prototypes(Z, "auto", random_state=0)
    assert len(centers) == k
    assert centers.shape == (k, 8)
    assert max(silhouettes, key=silhouettes.get) == k
    assert set(silhouettes) == set(range(2, 11))
    # every true axis has a centre pointing along it
    cos = centers @ axes.T
    np.testing.assert_allclose(np.sort(cos.max(0)), np.ones(k), atol=0.01)


def test_fixed_k_and_unit_norm_centers():
    Z, _, _ = angular_clusters(4, 300)
    centers, silhouettes = P.init_prototypes(Z, 5, random_state=0)
    assert centers.shape == (5, 8)
    assert centers.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-6)
    assert silhouettes == {}


def test_auto_centers_unit_norm_and_seeded():
    Z, _, _ = angular_clusters(3, 300)
    c1, s1 = P.init_prototypes(Z, "auto", random_state=3)
    c2, s2 = P.init_prototypes(Z, "auto", random_state=3)
    np.testing.assert_allclose(np.linalg.norm(c1, axis=1), 1.0, atol=1e-6)
    assert s1 == s2
    np.testing.assert_array_equal(c1, c2)


def test_norms_do_not_matter():
    # two clusters of directions with very different norms within each cluster: raw-space
    # k-means would split by norm, angular k-means must split by direction
    Z, labels, axes = angular_clusters(2, 400, spread=0.02, seed=7)
    Z = Z * np.where(np.arange(len(Z))[:, None] % 2 == 0, 1.0, 50.0)
    centers, _ = P.init_prototypes(Z, 2, random_state=0)
    assert len(centers) == 2
    np.testing.assert_allclose(np.sort((centers @ axes.T).max(0)), [1.0, 1.0], atol=0.01)


def test_silhouette_runs_on_a_bounded_subsample(monkeypatch):
    calls = []
    real = P.silhouette_score

    def spy(X, labels, *args, **kwargs):
        calls.append((len(X), kwargs.get("sample_size")))
        return real(X, labels, *args, **kwargs)

    monkeypatch.setattr(P, "silhouette_score", spy)
    Z, _, _ = angular_clusters(3, 5_000, seed=1)
    centers, _ = P.init_prototypes(Z, "auto", k_range=(2, 4), silhouette_samples=500, random_state=0)
    assert len(centers) == 3
    assert len(calls) == 3  # k = 2, 3, 4
    for n_rows, sample_size in calls:
        assert n_rows == 5000 and sample_size == 500


def test_silhouette_sample_size_defaults_are_bounded(monkeypatch):
    sizes = []
    real = P.silhouette_score
    monkeypatch.setattr(P, "silhouette_score",
                        lambda X, lab, **kw: sizes.append(kw.get("sample_size")) or real(X, lab, **kw))
    Z, _, _ = angular_clusters(2, 3000, seed=2)
    P.init_prototypes(Z, "auto", k_range=(2, 3), random_state=0)
    assert sizes == [2000, 2000]


def test_mnp_clusters_at_most_5000_codes(monkeypatch):
    """k-means sees a random subsample of at most KMEANS_MAX_SAMPLES unlabeled rows' codes, whatever N."""
    from deepod_mnp import MNP

    seen = []
    real = P.init_prototypes
    monkeypatch.setattr(P, "init_prototypes",
                        lambda codes, *a, **kw: seen.append(len(codes)) or real(codes, *a, **kw))
    X = np.random.default_rng(0).random((6000, 4))
    y = np.zeros(6000, dtype=int)
    y[:3] = 1
    MNP(epochs=1, epoch_steps=1, pretrain_epochs=0, n_prototypes=2, n_ensemble=2, device="cpu").fit(X, y)
    assert seen == [P.KMEANS_MAX_SAMPLES] * 2 == [5000] * 2


def test_auto_on_too_few_rows_still_returns_centers():
    Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    centers, _ = P.init_prototypes(Z, "auto", random_state=0)
    assert centers.shape == (2, 2)


# ----------------------------------------------------------------- pretraining
def _structured(n: int = 400, d: int = 10, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    # min-max style features in [0, 1] on a 2-D manifold, plus a little noise
    X = (np.tanh(latent @ rng.normal(size=(2, d))) + 1.0) / 2.0 + 0.005 * rng.normal(size=(n, d))
    return torch.from_numpy(X.astype(np.float32))


def _mse(ae: AutoEncoder, X: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(ae(X)[1], X))


def _new_ae(d: int = 10, rep_dim: int = 4, seed: int = 0) -> AutoEncoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoEncoder(d, [d - (d - rep_dim) // 2, rep_dim])  # the paper's widths


def _pretrain(ae, X, epochs=2, seed=0):
    P.pretrain(ae, X, epochs=epochs, steps=25, batch_size=64, lr=5e-3, weight_decay=0.0, noise=0.05,
               rng=np.random.default_rng(seed), generator=torch.Generator().manual_seed(seed))


def test_pretrain_lowers_reconstruction_error():
    X = _structured()
    ae = _new_ae()
    before = _mse(ae, X)
    _pretrain(ae, X)
    after = _mse(ae, X)
    assert after < 0.3 * before, (before, after)
    assert after < float(X.var(0).mean())  # better than predicting the mean


def test_pretrain_is_seeded_and_zero_epochs_is_a_no_op():
    X = _structured()
    a, b, c = _new_ae(), _new_ae(), _new_ae()
    untouched = copy.deepcopy(c.state_dict())
    _pretrain(a, X, seed=1)
    _pretrain(b, X, seed=1)
    _pretrain(c, X, epochs=0)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    for name, tensor in c.state_dict().items():
        assert torch.equal(tensor, untouched[name]), name
