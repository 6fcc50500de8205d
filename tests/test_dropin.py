"""Drop-in use: DeepOD's shared parameters and PyOD's detector API on every detector.

DeepOD code builds detectors from one dict of shared parameters (its
``testbed/configs.yaml``, its tests); PyOD code calls ``predict_proba``,
``predict_confidence``, ``fit_predict`` and combines detectors with
``pyod.models.combination``. Both are checked here against DeepOD's and
PyOD's own classes and functions, on the bundled Pendigits.
"""
from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
from conftest import TINY_MNP, make_weak_data
from pyod.models.base import BaseDetector as PyODBaseDetector
from pyod.models.iforest import IForest
from pyod.utils.utility import standardizer
from sklearn.metrics import roc_auc_score

from deepod_mnp import MNP, DevNetAnoOnly
from deepod_mnp.benchmark.protocol import make_split
from deepod_mnp.datasets import load_pendigits
from deepod_mnp.deepod_tabular.mnp import MixedBatchLoader, pretrain
from deepod_mnp.method.sampling import full_pass_batches, resolve_epoch_steps
from deepod_mnp.registry import DETECTORS as REGISTRY

#: The detectors DeepOD scripts get (the registry's ``deepod`` ones).
DETECTORS = tuple(spec.load() for spec in REGISTRY.values() if spec.deepod)
IDS = [c.__name__ for c in DETECTORS]

#: The shared parameters as DeepOD passes them to DevNet, DeepSAD, RoSAS, PReNet and FeaWAD (its
#: configs.yaml and tests: epochs, epoch_steps=-1, batch_size, lr, hidden_dims, act, bias, ...),
#: with a tiny budget: two full passes over the unlabeled data.
DEEPOD_CONFIG = dict(epochs=2, epoch_steps=-1, batch_size=256, lr=1e-3, hidden_dims="32", act="LeakyReLU",
                     bias=False, prt_steps=1, verbose=1, device="cpu", random_state=42)


@pytest.fixture(scope="module")
def pendigits():
    """The protocol split of the bundled Pendigits with 5% of the train anomalies labeled (5 of them)."""
    X, y = load_pendigits()
    return make_split(X, y, labeled_ratio=0.05)


@pytest.fixture(scope="module")
def from_config(pendigits):
    """Each detector built from :data:`DEEPOD_CONFIG` and fitted on Pendigits (logs captured)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    log = logging.getLogger("deepod_mnp.base")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        fitted = {cls: cls(**DEEPOD_CONFIG).fit(pendigits.X_train, pendigits.y_train_semi)
                  for cls in DETECTORS}
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    return fitted, records


# ------------------------------------------------------------ DeepOD's vocabulary
def test_the_config_is_deepods_vocabulary():
    """DeepOD's own weakly supervised detectors accept exactly this dict (they seed the global RNGs)."""
    from deepod.models.tabular import DeepSAD, DevNet, FeaWAD, PReNet, RoSAS

    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng():
        for cls in (DevNet, DeepSAD, RoSAS, PReNet, FeaWAD):
            model = cls(**DEEPOD_CONFIG)
            assert {k: getattr(model, k) for k in DEEPOD_CONFIG} == DEEPOD_CONFIG
    np.random.set_state(np_state)
    random.setstate(py_state)


@pytest.mark.parametrize("cls", DETECTORS, ids=IDS)
def test_deepod_config_builds_and_fits_on_pendigits(cls, from_config, pendigits):
    """Two full passes already rank Pendigits' anomalies far above chance (0.5).

    Measured test AUC-ROC with seeds 42, 0, 1 (2-core CPU): MNP 0.982, 0.987,
    0.993; DevNetAnoOnly 0.979, 0.993, 0.969; DeepSADAnoOnly 0.991, 0.989, 0.991.
    """
    fitted, _ = from_config
    model = fitted[cls]
    assert model.get_params()["epoch_steps"] == -1
    n_unlabeled = int(np.sum(pendigits.y_train_semi == 0))
    assert model.epoch_steps_ == -(-n_unlabeled // 256) == 17
    linears = [m for m in model.net.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.bias is None for m in linears)  # bias=False
    assert roc_auc_score(pendigits.y_test, model.decision_function(pendigits.X_test)) > 0.9


def test_mnp_hidden_dims_act_bias_set_the_autoencoder(from_config, pendigits):
    fitted, _ = from_config
    member = fitted[MNP].net.members[0]
    D, H = pendigits.X_train.shape[1], fitted[MNP].rep_dim
    assert [b[0].out_features for b in member.ae.encoder] == [32, H]  # hidden_dims='32', then the code
    assert [b[0].out_features for b in member.ae.decoder] == [32, D]  # mirrored
    assert all(isinstance(b[1], torch.nn.LeakyReLU) for b in [*member.ae.encoder, *member.ae.decoder])


def test_prt_steps_logs_every_n_epochs(from_config):
    """verbose=1, prt_steps=1: every epoch at INFO (MNP's members in one line), as DeepOD prints them."""
    _, records = from_config
    epochs = {}
    for r in records:
        name, _, epoch = r.getMessage().partition(": ")[0].partition(" epoch ")
        epochs.setdefault(name, []).append(int(epoch))
    assert epochs == {"MNP": [1, 2], "DevNetAnoOnly": [1, 2], "DeepSADAnoOnly": [1, 2]}


def test_prt_steps_and_verbose_zero(weak_data, caplog):
    caplog.set_level(logging.INFO, logger="deepod_mnp.base")
    DevNetAnoOnly(epochs=5, epoch_steps=2, prt_steps=2, verbose=1, device="cpu").fit(weak_data.X, weak_data.y)
    logged = [r.getMessage().split(":")[0] for r in caplog.records if r.levelno == logging.INFO]
    assert logged == [f"DevNetAnoOnly epoch {e}" for e in (1, 2, 4)]  # DeepOD: epoch 1, then every prt_steps
    caplog.clear()
    DevNetAnoOnly(epochs=5, epoch_steps=2, prt_steps=2, verbose=0, device="cpu").fit(weak_data.X, weak_data.y)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_a_shared_parameter_that_cannot_apply_is_a_clear_error(weak_data):
    """DeepOD's DevNet takes ``rep_dim`` and ignores it; DevNetAnoOnly has no layer for it to set."""
    model = DevNetAnoOnly(epochs=1, epoch_steps=1, rep_dim=128, device="cpu")
    with pytest.raises(ValueError, match=r"rep_dim must be None: DevNet scores from its last hidden layer.*"
                                         r"hidden_dims\[-1\].*got 128"):
        model.fit(weak_data.X, weak_data.y)
    assert DevNetAnoOnly(epochs=1, epoch_steps=1, rep_dim=None, device="cpu").fit(weak_data.X, weak_data.y)


def test_mnp_default_is_the_papers_architecture():
    net = MNP(**TINY_MNP)._build_member(16)
    assert [b[0].out_features for b in net.ae.encoder] == [16 - (16 - 8) // 2, 8] == [12, 8]
    assert all(isinstance(m[1], torch.nn.LeakyReLU) for m in [*net.ae.encoder, *net.ae.decoder])
    assert all(m.bias is not None for m in net.modules() if isinstance(m, torch.nn.Linear))


def test_mnp_act_and_deeper_hidden_dims(weak_data, tmp_path):
    model = MNP(**{**TINY_MNP, "hidden_dims": [16, 12], "act": "Tanh", "n_ensemble": 1})
    model.fit(weak_data.X, weak_data.y)
    ae = model.net.members[0].ae
    assert [b[0].out_features for b in ae.encoder] == [16, 12, 8]
    assert [b[0].out_features for b in ae.decoder] == [12, 16, weak_data.X.shape[1]]
    assert [type(b[1]).__name__ for b in [*ae.encoder, *ae.decoder]] == ["Tanh"] * 5 + ["LeakyReLU"]
    assert isinstance(model.net.members[0].scorer[1], torch.nn.Tanh)
    model.save_model(tmp_path / "m.pt")  # the architecture is rebuilt from the parameters
    loaded = MNP.load_model(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.decision_function(weak_data.X), model.decision_function(weak_data.X))


# ------------------------------------------------------------------- full pass
def test_full_pass_batches_hold_every_row_once():
    rng = np.random.default_rng(0)
    batches = full_pass_batches(103, 25, 5, rng)  # 103 rows in batches of 25: 5 batches, the last topped up
    assert [len(b) for b in batches] == [25] * 5
    assert all(len(set(b)) == len(b) for b in batches)
    assert np.array_equal(np.sort(np.concatenate(batches)[:103]), np.arange(103))  # a permutation first
    assert set(np.concatenate(batches)) == set(range(103))
    assert [len(b) for b in full_pass_batches(10, 25, 1, rng)] == [10]  # fewer rows than a batch


def test_mixed_loader_full_pass_per_epoch():
    y = np.zeros(70, dtype=np.int64)
    y[[3, 50]] = 1
    X = torch.arange(70, dtype=torch.float32)[:, None]
    steps = resolve_epoch_steps(-1, 68, 16)
    assert steps == 5
    loader = MixedBatchLoader(X, y, 16, 4, steps, [np.random.default_rng(0)], full_pass_batches)
    for _ in range(2):  # each epoch is a new full pass
        batches = [pair for (pair,) in loader]
        assert len(batches) == 5 and all(len(u) == 16 and len(a) == 4 for u, a in batches)
        seen = torch.cat([u for u, _ in batches]).long().ravel().tolist()
        assert set(seen) == set(np.flatnonzero(y == 0).tolist())
        assert set(torch.cat([a for _, a in batches]).long().ravel().tolist()) <= {3, 50}
    with pytest.raises(ValueError, match="takes 5 steps, not 4"):
        list(MixedBatchLoader(X, y, 16, 4, 4, [np.random.default_rng(0)], full_pass_batches))


def test_pretraining_full_pass_visits_every_row_each_epoch():
    """Each epoch of each pretraining stage is one full pass with ``epoch_steps=-1``."""
    seen = []

    def spy(n_rows, size, steps, rng):
        batches = full_pass_batches(n_rows, size, steps, rng)
        seen.append(np.concatenate(batches))
        return batches

    ae = MNP(**TINY_MNP)._build_member(5).ae  # one hidden layer: two denoising stages and the fine-tuning
    pretrain(ae, torch.rand(50, 5), epochs=3, steps=4, batch_size=16, lr=1e-3, weight_decay=0.0, noise=0.05,
             rng=np.random.default_rng(0), generator=torch.Generator().manual_seed(0), batches=spy)
    assert len(seen) == 3 * 3
    assert all(set(rows) == set(range(50)) for rows in seen)


# -------------------------------------------------------------- PyOD's detector API
class PyODView(PyODBaseDetector):
    """A PyOD detector whose scores are our fitted detector's, so PyOD's own methods apply to them."""

    def __init__(self, model=None, contamination=0.1):
        super().__init__(contamination=contamination)
        self.model = model

    def fit(self, X=None, y=None):
        self._set_n_classes(None)
        self.decision_scores_ = self.model.decision_scores_
        self._process_decision_scores()
        return self

    def decision_function(self, X):
        return self.model.decision_function(X)


@pytest.fixture(scope="module")
def tiny_fitted():
    data = make_weak_data()
    models = {MNP: MNP(**TINY_MNP), DevNetAnoOnly: DevNetAnoOnly(epochs=3, epoch_steps=4, device="cpu")}
    return {cls: m.fit(data.X, data.y) for cls, m in models.items()}, data


@pytest.mark.parametrize("cls", [MNP, DevNetAnoOnly], ids=["MNP", "DevNetAnoOnly"])
def test_pyod_api_equals_pyods_own_methods(cls, tiny_fitted):
    fitted, data = tiny_fitted
    model = fitted[cls]
    X_new = np.concatenate([data.X, make_weak_data(seed=1).X * 1.5])  # scores beyond the training range too
    pyod = PyODView(model, contamination=model.contamination).fit()
    assert pyod.threshold_ == model.threshold_
    np.testing.assert_array_equal(pyod.labels_, model.labels_)
    np.testing.assert_array_equal(model.predict(X_new), pyod.predict(X_new))
    for method in ("linear", "unify"):
        ours = model.predict_proba(X_new, method=method)
        np.testing.assert_array_equal(ours, pyod.predict_proba(X_new, method=method))
        assert ours.shape == (len(X_new), 2) and ours.min() >= 0 and ours.max() <= 1
    np.testing.assert_allclose(model.predict_confidence(X_new), pyod.predict_confidence(X_new),
                               rtol=0, atol=1e-12)
    labels, confidence = model.predict(X_new, return_confidence=True)
    pyod_labels, pyod_confidence = pyod.predict(X_new, return_confidence=True)
    np.testing.assert_array_equal(labels, pyod_labels)
    np.testing.assert_allclose(confidence, pyod_confidence, rtol=0, atol=1e-12)
    proba, confidence = model.predict_proba(X_new, method="unify", return_confidence=True)
    np.testing.assert_allclose(confidence, pyod_confidence, rtol=0, atol=1e-12)
    # the linear probability of the training data spans [0, 1] (to the rounding of PyOD's
    # MinMaxScaler, x * scale_ + min_); outside its range it is clipped
    train_proba = model.predict_proba(data.X)[:, 1]
    assert train_proba.min() == 0 and abs(train_proba.max() - 1) < 1e-12
    assert set(np.unique(model.predict_proba(X_new)[len(data.X):, 1])) & {0.0, 1.0}


def test_predict_confidence_matches_deepods_too(tiny_fitted):
    fitted, data = tiny_fitted
    model = fitted[MNP]
    scores = model.decision_function(data.X)
    np.testing.assert_allclose(model.predict_confidence(data.X), model._predict_confidence(scores),
                               rtol=0, atol=1e-12)  # BaseDeepAD._predict_confidence, DeepOD's copy


def test_predict_proba_rejects_unknown_method(tiny_fitted):
    fitted, data = tiny_fitted
    with pytest.raises(ValueError, match="method must be 'linear' or 'unify', got 'softmax'"):
        fitted[MNP].predict_proba(data.X, method="softmax")


@pytest.mark.parametrize("cls", [MNP, DevNetAnoOnly], ids=["MNP", "DevNetAnoOnly"])
def test_fit_predict_returns_the_training_labels(cls, tiny_fitted):
    fitted, data = tiny_fitted
    params = fitted[cls].get_params()
    labels = cls(**params).fit_predict(data.X, data.y)
    np.testing.assert_array_equal(labels, fitted[cls].labels_)  # same seed, same fit
    assert labels.dtype.kind == "i" and set(np.unique(labels)) <= {0, 1}
    assert labels.sum() == int(np.sum(fitted[cls].decision_scores_ > fitted[cls].threshold_))


def test_pyod_combination_over_mnp_and_a_pyod_detector(from_config, pendigits):
    """``pyod.models.combination`` on standardized scores of our detectors and PyOD's IForest.

    Measured test AUC-ROC (2-core CPU): IForest (seed 0) 0.941, MNP 0.982; over
    the four detectors average 0.992, maximization 0.993, aom 0.993.
    """
    from pyod.models.combination import aom, average, maximization

    fitted, _ = from_config
    iforest = IForest(random_state=0).fit(pendigits.X_train)
    train = np.column_stack([iforest.decision_scores_, *(fitted[c].decision_scores_ for c in DETECTORS)])
    test = np.column_stack([iforest.decision_function(pendigits.X_test),
                            *(fitted[c].decision_function(pendigits.X_test) for c in DETECTORS)])
    train_z, test_z = standardizer(train, test)
    combined = {"average": average(test_z), "maximization": maximization(test_z),
                "aom": aom(test_z, n_buckets=2, random_state=0)}
    np.testing.assert_allclose(combined["average"], test_z.mean(axis=1))
    np.testing.assert_allclose(combined["maximization"], test_z.max(axis=1))
    aucs = {name: roc_auc_score(pendigits.y_test, s) for name, s in combined.items()}
    auc_iforest = roc_auc_score(pendigits.y_test, test_z[:, 0])
    print(f"IForest {auc_iforest:.3f}", {k: round(v, 3) for k, v in aucs.items()})
    assert all(auc > max(0.9, auc_iforest) for auc in aucs.values())


@pytest.mark.parametrize("name", ["MNP", "DevNetAnoOnly", "DeepSADAnoOnly"])
def test_predict_proba_is_never_nan_when_the_training_scores_are_constant(name):
    """A fit on copies of one row gives training scores of standard deviation 0: 'unify' takes erf's
    limit (1 above the training score, 0 at or below), 'linear' stays finite."""
    import warnings

    from deepod_mnp import make_detector
    from deepod_mnp.base import DegenerateFitWarning

    X = np.tile([[0.2, 0.5, 0.7, 0.1]], (40, 1))
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    budget = dict(epochs=1, epoch_steps=2, device="cpu", random_state=0)
    if name == "MNP":
        budget.update(pretrain_epochs=1, n_prototypes=1, n_ensemble=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateFitWarning)
        model = make_detector(name, **budget).fit(X, y)
    assert np.std(model.decision_scores_) == 0  # the case: sigma = 0
    X_new = np.vstack([X[:2], make_weak_data(n_features=4).X[:20]])
    scores = model.decision_function(X_new)
    for method in ("unify", "linear"):
        proba = model.predict_proba(X_new, method=method)
        assert np.isfinite(proba).all() and proba.min() >= 0 and proba.max() <= 1, method
        np.testing.assert_array_equal(proba.sum(axis=1), 1.0)
    unify = model.predict_proba(X_new, method="unify")[:, 1]
    np.testing.assert_array_equal(unify, (scores > model.decision_scores_[0]).astype(float))
