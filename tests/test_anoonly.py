"""AnoOnly detectors: detection quality, batch-independent scores, anomaly-only loss, sklearn API."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from deepod_mnp import DETECTORS, DeepSADAnoOnly, DevNetAnoOnly, make_detector, register_with_deepod
from deepod_mnp.models.anoonly import parse_hidden_dims

CLASSES = [DevNetAnoOnly, DeepSADAnoOnly]
FAST = dict(epochs=10, epoch_steps=20, device="cpu", scaler=None)  # the data as given: these test the loss


def make_data(seed: int, n_normal: int = 2000, n_anom: int = 60, n_labeled: int = 12, d: int = 10):
    """Two normal Gaussian modes at -2 and +2 on every axis; anomalies sit at mixed-sign corners."""
    rng = np.random.default_rng(seed)
    modes = np.stack([np.full(d, -2.0), np.full(d, 2.0)])
    normal = modes[rng.integers(2, size=n_normal)] + rng.normal(size=(n_normal, d))
    anomalies = rng.choice([-2.0, 2.0], size=(n_anom, d)) + rng.normal(size=(n_anom, d))
    X = np.vstack([normal, anomalies])
    truth = np.r_[np.zeros(n_normal, int), np.ones(n_anom, int)]
    y = np.zeros(len(X), int)
    y[n_normal + rng.choice(n_anom, n_labeled, replace=False)] = 1
    return X, y, truth


@pytest.fixture(scope="module")
def data():
    X, y, truth = make_data(0)
    X_test, _, truth_test = make_data(1)
    return X, y, truth, X_test, truth_test


@pytest.fixture(scope="module", params=CLASSES, ids=lambda c: c.__name__)
def fitted(request, data):
    X, y, *_ = data
    return request.param(**FAST).fit(X, y)


def fresh_net(model):
    """An untrained network of the fitted model's architecture (losses not yet saturated)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return model._build_net(model.n_features_in_, model.hidden_dims_)


def mixed_batch(data, n_u=64, n_a=8):
    X, y, *_ = data
    x_u = torch.tensor(X[y == 0][:n_u], dtype=torch.float32, requires_grad=True)
    x_a = torch.tensor(X[y == 1][:n_a], dtype=torch.float32, requires_grad=True)
    return x_u, x_a


def criterion_of(model):
    """The training criterion of a fitted model (Deep SAD's holds the fitted centre)."""
    if isinstance(model, DeepSADAnoOnly):
        return model._inference_criterion()
    return model._build_criterion(model.net, None)


def input_grads(model, net, x_u, x_a, criterion=None):
    loss = model.training_forward([(x_u, x_a)], net, criterion or criterion_of(model))
    return torch.autograd.grad(loss, (x_u, x_a))


# ----------------------------------------------------------------- quality
def test_detects_planted_anomalies(fitted, data):
    X, y, truth, X_test, truth_test = data
    assert roc_auc_score(truth, fitted.decision_scores_) > 0.9
    assert roc_auc_score(truth_test, fitted.decision_function(X_test)) > 0.9
    # unlabeled anomalies too, not just the memorised labeled ones
    unlabeled = y == 0
    assert roc_auc_score(truth[unlabeled], fitted.decision_scores_[unlabeled]) > 0.9


def test_fitted_attributes_and_predict(fitted, data):
    X, _, _, X_test, _ = data
    scores = fitted.decision_scores_
    assert scores.shape == (len(X),) and scores.dtype == np.float64 and np.all(np.isfinite(scores))
    assert fitted.threshold_ == pytest.approx(np.percentile(scores, 90))
    assert isinstance(fitted.labels_, np.ndarray) and set(np.unique(fitted.labels_)) <= {0, 1}
    np.testing.assert_array_equal(fitted.labels_, (scores > fitted.threshold_).astype(int))
    pred = fitted.predict(X_test)
    np.testing.assert_array_equal(pred, (fitted.decision_function(X_test) > fitted.threshold_).astype(int))
    pred5, confidence = fitted.predict(X_test[:5], return_confidence=True)
    np.testing.assert_array_equal(pred5, pred[:5])
    assert np.all((confidence >= 0) & (confidence <= 1))
    assert list(fitted.loss_history_.columns) == ["loss"] and len(fitted.loss_history_) == FAST["epochs"]
    assert fitted.loss_history_["loss"].iloc[-1] < fitted.loss_history_["loss"].iloc[0]
    assert not fitted.net.training
    scores_t, rep = fitted.decision_function(X_test[:7], return_rep=True)
    assert scores_t.shape == (7,) and rep.ndim == 2 and len(rep) == 7


def test_deepsad_center(data):
    X, y, *_ = data
    model = DeepSADAnoOnly(rep_dim=16, **FAST).fit(X, y)
    assert model.center_.shape == (16,) and np.all(np.abs(model.center_) >= 0.1 - 1e-7)
    _, rep = model.decision_function(X[:50], return_rep=True)
    expected = ((rep - model.center_) ** 2).sum(1)
    np.testing.assert_allclose(model.decision_function(X[:50]), expected, rtol=1e-5)


# ------------------------------------------------------ batch independence
def test_eval_score_does_not_depend_on_batch(fitted, data):
    X_test = data[3]
    together = fitted.decision_function(X_test)
    alone = np.array([fitted.decision_function(X_test[i:i + 1])[0] for i in range(0, 40, 4)])
    # scoring runs in float64: a 1-row matmul takes another BLAS path than a 200-row one, and in float32
    # that moved scores by up to 2e-7; in float64 the difference is at the last bits
    np.testing.assert_allclose(alone, together[0:40:4], rtol=1e-12, atol=1e-12)
    chunked = copy.deepcopy(fitted).set_params(inference_batch_size=7)
    np.testing.assert_allclose(chunked.decision_function(X_test), together, rtol=1e-12, atol=1e-12)
    # contrast: in train mode BN uses the batch statistics, so the output does depend on the batch
    net = copy.deepcopy(fitted.net).train()
    x = torch.tensor(X_test[:64], dtype=torch.float32)
    with torch.no_grad():
        assert not torch.allclose(net(x)[:8], net(x[:8]), atol=1e-4)


# ------------------------------------------------------- anomaly-only loss
def test_loss_ignores_unlabeled_rows_in_eval_mode(fitted, data):
    x_u, x_a = mixed_batch(data)
    g_u, g_a = input_grads(fitted, fresh_net(fitted).eval(), x_u, x_a)
    assert torch.count_nonzero(g_u) == 0
    assert torch.count_nonzero(g_a) > 0


def test_unlabeled_rows_reach_the_loss_only_through_batch_norm(fitted, data):
    x_u, x_a = mixed_batch(data)
    net = fresh_net(fitted).train()
    g_u, g_a = input_grads(fitted, net, x_u, x_a)
    assert torch.count_nonzero(g_u) > 0  # BN's batch statistics: AnoOnly's weak supervision
    bns = [name for name, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns
    for name in bns:
        parent_name, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, attr, torch.nn.Identity())
    g_u, g_a = input_grads(fitted, net.train(), x_u, x_a)
    assert torch.count_nonzero(g_u) == 0
    assert torch.count_nonzero(g_a) > 0


def test_control_loss_on_all_trains_on_unlabeled_rows_too(fitted, data):
    """``loss_on='all'`` is the base method's whole loss: the unlabeled rows get a direct gradient."""
    x_u, x_a = mixed_batch(data)
    control = clone(fitted).set_params(loss_on="all")
    criterion = criterion_of(fitted)
    g_u, g_a = input_grads(control, fresh_net(fitted).eval(), x_u, x_a, criterion)
    assert torch.count_nonzero(g_u) > 0 and torch.count_nonzero(g_a) > 0
    # on the anomalies alone both losses agree; the control adds the unlabeled term
    out = fresh_net(fitted).eval()(torch.cat([x_u, x_a])).detach()
    n_u = len(x_u)
    def seeded(loss, *args):  # DevLoss draws its Gaussian reference from torch's global generator
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return float(loss(*args))

    anomaly_only = seeded(fitted._anomaly_loss, out[n_u:], criterion)
    unlabeled_only = seeded(control._full_loss, out[:n_u], n_u, criterion)
    whole = seeded(control._full_loss, out, n_u, criterion)
    # every call sees the same reference, so the whole batch's loss is exactly the rows' weighted mean
    assert whole == pytest.approx((n_u * unlabeled_only + len(x_a) * anomaly_only) / len(out), rel=1e-5)


def test_loss_on_is_checked(data):
    X, y, *_ = data
    with pytest.raises(ValueError, match="loss_on"):
        DevNetAnoOnly(**{**FAST, "loss_on": "unlabeled"}).fit(X, y)


def test_batch_norm_placement():
    dev = DevNetAnoOnly(hidden_dims="16,8")._build_net(5, [16, 8])
    assert isinstance(dev.bn, torch.nn.BatchNorm1d) and dev.bn.num_features == 8
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in dev.modules()) == 1  # only before the score
    assert dev.score.out_features == 1
    # without biases, BN before the score pins the training-batch mean of the scores at 0
    with torch.no_grad():
        scores = dev.train()(torch.randn(96, 5) * 3 + 1)
    assert abs(float(scores.mean())) < 1e-5 and float(scores.std()) > 1e-3
    sad = DeepSADAnoOnly(hidden_dims="16,8", rep_dim=4)._build_net(5, [16, 8])
    kinds = [type(m).__name__ for m in sad.body]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU"]
    assert isinstance(sad.code, torch.nn.Linear) and sad.code.out_features == 4


# -------------------------------------------------------------- sklearn API
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_params_and_clone(cls):
    model = cls(epochs=3, hidden_dims=[32], random_state=7)
    params = model.get_params()
    assert params["epochs"] == 3 and params["hidden_dims"] == [32] and params["device"] == "auto"
    twin = clone(model)
    assert twin.get_params() == params and twin is not model
    with pytest.raises(NotFittedError):
        twin.decision_function(np.zeros((2, 3)))
    assert twin.set_params(lr=0.01).lr == 0.01


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_labels_are_required(cls, data):
    X, y, *_ = data
    model = cls(**FAST)
    with pytest.raises(ValueError, match="no anomaly"):
        model.fit(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="labeled anomaly"):
        model.fit(X)
    with pytest.raises(ValueError, match="every sample"):
        model.fit(X[:20], np.ones(20, int))
    with pytest.raises(ValueError):
        model.fit(X, np.where(y == 1, 2, 0))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_same_seed_same_scores_and_global_rng_untouched(cls, data):
    X, y, _, X_test, _ = data
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    a = cls(epochs=2, random_state=3, device="cpu").fit(X, y)
    b = cls(epochs=2, random_state=3, device="cpu").fit(X, y)
    c = cls(epochs=2, random_state=4, device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))
    assert not np.allclose(a.decision_function(X_test), c.decision_function(X_test))
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_input_checks(fitted, data):
    X, y, *_ = data
    with pytest.raises(ValueError, match="features"):
        fitted.decision_function(X[:3, :4])
    bad = X[:3].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        fitted.decision_function(bad)
    cls = type(fitted)
    for kwargs, match in [({"epoch_steps": 0}, "epoch_steps"), ({"lr": -1.0}, "lr"),
                          ({"act": "Nope"}, "act"), ({"hidden_dims": "a,b"}, "hidden_dims"),
                          ({"contamination": 0.7}, "contamination")]:
        with pytest.raises(ValueError, match=match):
            cls(**{**FAST, **kwargs}).fit(X, y)
    with pytest.warns(UserWarning, match="bias=True"):
        cls(**{**FAST, "epochs": 1, "bias": True}).fit(X, y)


def test_parse_hidden_dims():
    assert parse_hidden_dims("100,50") == [100, 50]
    assert parse_hidden_dims(64) == [64]
    assert parse_hidden_dims((8, 4)) == [8, 4]
    for bad in ("", [], 0, "10,-1", [1.5], True):
        with pytest.raises(ValueError, match="hidden_dims"):
            parse_hidden_dims(bad)


def test_does_not_modify_input(data):
    X, y, *_ = data
    X32 = X[:500].astype(np.float32)
    y32 = y[:500].copy()
    y32[:3] = 1
    before = X32.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DevNetAnoOnly(epochs=1, device="cpu").fit(X32, y32)
    np.testing.assert_array_equal(X32, before)


# ------------------------------------------------------------------ registry
def test_registry_and_deepod_registration():
    import deepod.models
    import deepod.models.tabular

    for name, cls in [("DevNetAnoOnly", DevNetAnoOnly), ("DeepSADAnoOnly", DeepSADAnoOnly)]:
        assert DETECTORS[name].load() is cls and DETECTORS[name].supervision == "weak"
        model = make_detector(name.lower(), random_state=5, epochs=2)
        assert isinstance(model, cls) and model.random_state == 5 and model.verbose == 0
        register_with_deepod()
        assert getattr(deepod.models.tabular, name) is cls and getattr(deepod.models, name) is cls


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_cuda_matches_api(cls, data):
    """On the GPU, the settings of the CPU tests reach their level (test_detects_planted_anomalies)."""
    X, y, truth, *_ = data
    model = cls(**{**FAST, "device": "cuda"}).fit(X, y)
    assert model.device_.type == "cuda"
    assert roc_auc_score(truth, model.decision_scores_) > 0.9
