"""Fused scorer: the ensemble as batched products gives the members' scores, the scaling folded in.

The fused scorer batches the members' layers (Eq. 1-2 and 11) and Eq. 6's
distances; these tests hold it equal to the members' own forward, the paper's
equations as ``deepod_tabular/mnp.py`` writes them, for every option that
changes the network.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from conftest import TINY_MNP, random_rows

from deepod_mnp import MNP
from deepod_mnp.serving.fused import FusedMNP, flops_per_row, fused_for, fused_scores


@pytest.mark.parametrize("params", [
    {}, {"n_ensemble": 1}, {"recon_in_score": False}, {"alpha": 2.5, "n_prototypes": 3},
    {"recon_norm": "log"}, {"act": "ReLU", "bias": False}, {"act": "Tanh", "hidden_dims": "9,5"},
], ids=["default", "one-member", "no-recon-in-score", "alpha", "log-recon-norm", "relu-no-bias",
        "tanh-two-layers"])
def test_fused_scores_equal_the_unfused_ensemble(serving_data, params):
    """The fused scorer, and decision_function's hot path that uses it, give the scores of the
    members computed one by one (``MNPEnsemble.forward``) to 1e-6."""
    model = MNP(**{**TINY_MNP, "scaler": None, **params}).fit(serving_data.X, serving_data.y)
    X = random_rows(3000, serving_data.X.shape[1])
    with torch.inference_mode():
        unfused = model.net(torch.from_numpy(X))
    fused = fused_for(model)
    assert fused is not None and fused.n_members == model.n_ensemble
    np.testing.assert_allclose(fused_scores(fused, X, chunk_rows=1000), unfused.score.numpy(),
                               rtol=0, atol=1e-6)
    threads = torch.get_num_threads()
    scores, rep = model.decision_function(X, return_rep=True)
    assert torch.get_num_threads() == threads
    np.testing.assert_allclose(scores, unfused.score.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(rep, unfused.z.numpy(), rtol=1e-5, atol=1e-6)


def test_decision_function_uses_the_fused_path(serving_mnp, monkeypatch):
    import deepod_mnp.models.mnp as mnp_module

    calls = []
    real = mnp_module.fused_for
    monkeypatch.setattr(mnp_module, "fused_for", lambda model: calls.append(1) or real(model))
    serving_mnp.decision_function(random_rows(20_000, serving_mnp.n_features_in_))
    assert len(calls) == 3  # one per chunk of inference_batch_size rows
    assert real(serving_mnp) is real(serving_mnp)  # built once, then cached


def test_a_few_rows_score_as_in_a_batch(serving_mnp):
    """1, 2 or 3 rows scored alone get the very scores they get in a batch of many (scikit-learn's
    subset invariance; predict_proba's min-max scaling magnifies the last bit of a score)."""
    X = random_rows(50, serving_mnp.n_features_in_)
    batch = serving_mnp.decision_function(X)
    for n in (1, 2, 3, 4):
        few = np.concatenate([serving_mnp.decision_function(X[i:i + n]) for i in range(0, 12, n)])
        np.testing.assert_array_equal(few, batch[:12])
    proba = serving_mnp.predict_proba(X)
    np.testing.assert_array_equal(np.concatenate([serving_mnp.predict_proba(X[i:i + 1]) for i in range(12)]),
                                  proba[:12])


def test_flops_per_row_counts_every_members_layers(serving_mnp):
    fused = FusedMNP.from_model(serving_mnp)
    model = serving_mnp
    d, h, k, m = model.n_features_in_, model.rep_dim, model.n_prototypes_, model.n_ensemble
    mid = d - (d - h) // 2
    per_member = 2 * d * mid + 2 * mid * h + h * k + (h + 2) * 16 + 16
    assert flops_per_row(fused) == 2 * m * per_member


def test_the_fitted_scaling_is_folded_into_the_fused_scorer(serving_data):
    """MNP's learned input scaling (``scaler_``) folds into the fused scorer as one multiply-add per
    feature: on raw rows it gives decision_function's scores."""
    model = MNP(**TINY_MNP).fit(serving_data.X * 100 + 50, serving_data.y)
    X = random_rows(500, serving_data.X.shape[1]) * 100 + 50
    fused = FusedMNP.from_model(model)
    assert fused.has_scaling and not fused_for(model).has_scaling  # the detector scales before the network
    np.testing.assert_allclose(fused_scores(fused, X), model.decision_function(X), rtol=0, atol=1e-5)


def test_fused_refuses_unfitted_model():
    with pytest.raises(ValueError, match="not fitted"):
        FusedMNP.from_model(MNP())


def test_fused_rep_is_decision_functions_rep(serving_mnp):
    X = random_rows(1500, serving_mnp.n_features_in_)
    scores, rep = serving_mnp.decision_function(X, return_rep=True)
    with torch.inference_mode():
        z, s = FusedMNP.from_model(serving_mnp).score_and_rep(torch.from_numpy(X))
    np.testing.assert_allclose(z.numpy(), rep, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.numpy(), scores, rtol=0, atol=1e-6)


def test_fused_for_caches_and_rebuilds_when_the_weights_change(serving_data):
    from deepod_mnp.serving.fused import fused_for

    model = MNP(**{**TINY_MNP, "scaler": None}).fit(serving_data.X, serving_data.y)
    first = fused_for(model)
    assert first is not None and fused_for(model) is first
    X = torch.from_numpy(random_rows(200, serving_data.X.shape[1]))
    with torch.no_grad():
        before = first(X)
        model.net.members[0].scorer[2].bias.add_(1.0)  # in place, as an optimizer step
        rebuilt = fused_for(model)
        assert rebuilt is not first
        assert not torch.allclose(rebuilt(X), before)
        np.testing.assert_allclose(rebuilt(X).numpy(), model.net(X).score.numpy(), rtol=0, atol=1e-6)
    model.net.train()
    assert fused_for(model) is None  # never while training
    assert fused_for(object()) is None


@pytest.mark.parametrize("params, why", [
    ({"act": "PReLU"}, "its members cannot be stacked: the activation PReLU"),
    ({"device": "cuda"}, "the network is on cuda, not the CPU"),
])
def test_where_the_fused_scorer_does_not_apply_the_log_says_why(serving_data, params, why, caplog):
    """Never a silent fallback: MNP scores with the network's own forward and logs the reason, once per
    network (the first time it scores, in fit)."""
    if params.get("device") == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    X = random_rows(300, serving_data.X.shape[1])
    with caplog.at_level(logging.DEBUG, logger="deepod_mnp.method.fused"):
        model = MNP(**{**TINY_MNP, "scaler": None, **params}).fit(serving_data.X, serving_data.y)
        scores = model.decision_function(X)  # the same network: not logged again
    lines = [r.getMessage() for r in caplog.records if r.name == "deepod_mnp.method.fused"]
    assert len(lines) == 1 and "MNP scores with the network's own forward" in lines[0] and why in lines[0]
    assert fused_for(model) is None
    with torch.inference_mode():
        unfused = model.net(torch.from_numpy(X).to(model.device_)).score.cpu().numpy()
    np.testing.assert_array_equal(scores, unfused)
