"""Every detector of ours against bad and unusual inputs: one table, so the next detector inherits it.

The detectors are our classes of the registry's table (:data:`deepod_mnp.registry.OURS`:
MNP, SelectByLabels and the AnoOnly detectors; the BN controls are AnoOnly
classes with other defaults, so they are not tried twice). Each case is a row
of a table below. The invalid parameter values are written here, from what
each parameter means, not drawn from the code's own constraints (which could
then not be caught wrong); every parameter a class takes must have its row.
The rule: nothing silent, nothing leaked, nothing lost.
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import random
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import TINY_MNP, make_weak_data
from sklearn.exceptions import NotFittedError

import deepod_mnp
from deepod_mnp import DETECTORS, DegenerateFitWarning, make_detector
from deepod_mnp.registry import OURS

#: A tiny training budget per detector (a fit takes a fraction of a second).
ANOONLY_BUDGET = dict(epochs=2, epoch_steps=4, batch_size=64, anomaly_batch_size=8, inference_batch_size=64)
BUDGET = {"MNP": {k: v for k, v in TINY_MNP.items() if k not in ("device", "random_state")},
          "DevNetAnoOnly": ANOONLY_BUDGET, "DeepSADAnoOnly": ANOONLY_BUDGET}
# the selector with a tiny MNP and IForest as its candidates
BUDGET["SelectByLabels"] = {"candidates": {"MNP": ("MNP", BUDGET["MNP"]), "IForest": "IForest"}}
#: The detectors that train a network of their own (the selector trains its candidates').
NETWORKS = [name for name in OURS if name != "SelectByLabels"]


def build(name: str, **params):
    params = {"random_state": 0, "device": "cpu", **BUDGET[name], **params}
    return make_detector(name, random_state=params.pop("random_state"), device=params.pop("device"), **params)


def test_our_detectors_are_all_here():
    assert OURS == ("MNP", "SelectByLabels", "DevNetAnoOnly", "DeepSADAnoOnly") and set(BUDGET) == set(OURS)


@pytest.fixture(scope="module")
def data():
    return make_weak_data()


@pytest.fixture(scope="module")
def fitted(data):
    """One detector of each kind fitted on NumPy data (shared, read-only)."""
    return {name: build(name).fit(data.X, data.y) for name in OURS}


@pytest.fixture(scope="module")
def columns(data):
    return [f"f{i}" for i in range(data.X.shape[1])]


@pytest.fixture(scope="module")
def fitted_df(data, columns):
    """One detector of each kind fitted on a DataFrame with string column names."""
    df = pd.DataFrame(data.X, columns=columns)
    return {name: build(name).fit(df, data.y) for name in OURS}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """Each fitted detector's checkpoint."""
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, model in fitted.items():
        paths[name] = folder / f"{name}.pt"
        model.save_model(paths[name])
    return paths


def _with_value(X: np.ndarray, value: float) -> np.ndarray:
    X = X.copy()
    X[3, 1] = value
    return X


# ------------------------------------------------------------------ bad X
#: case -> (make X from a good float64 X, exception, message pattern); the same at fit and scoring.
BAD_X = {
    "nan": (lambda X: _with_value(X, np.nan), ValueError, "NaN"),
    "inf": (lambda X: _with_value(X, np.inf), ValueError, "infinity"),
    "-inf": (lambda X: _with_value(X, -np.inf), ValueError, "infinity"),
    "overflows-float32": (lambda X: _with_value(X, 1e300), ValueError, "infinity|too large"),
    "1d": (lambda X: X[:, 0], ValueError, "Expected 2D array"),
    "3d": (lambda X: X[:, :, None], ValueError, "dim 3"),
    "empty-rows": (lambda X: X[:0], ValueError, "0 sample"),
    "empty-columns": (lambda X: X[:, :0], ValueError, "0 feature"),
    "sparse": (lambda X: sp.csr_matrix(X), TypeError, "Sparse data was passed"),
    "strings": (lambda X: np.full(X.shape, "a"), ValueError, "could not convert string to float"),
    "object-with-none": (lambda X: np.where(np.eye(*X.shape, dtype=bool), None, X.astype(object)), ValueError,
                         "NaN"),
    "complex": (lambda X: X + 1j, ValueError, "Complex data not supported"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("name", OURS)
def test_bad_X_at_fit(name, case, data):
    make_X, error, match = BAD_X[case]
    model = build(name)
    with pytest.raises(error, match=match):
        model.fit(make_X(data.X), data.y)
    assert not hasattr(model, "n_features_in_")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("case", [c for c in BAD_X if c != "empty-columns"])
@pytest.mark.parametrize("name", OURS)
def test_bad_X_at_scoring(name, case, fitted, data):
    make_X, error, match = BAD_X[case]
    with pytest.raises(error, match=match):
        fitted[name].decision_function(make_X(data.X[:20]))


@pytest.mark.parametrize("width", [1, 5, 7])
@pytest.mark.parametrize("name", OURS)
def test_wrong_width_at_scoring(name, width, fitted):
    X = np.random.default_rng(0).normal(size=(10, width))
    for method in ("decision_function", "predict"):
        with pytest.raises(ValueError, match=f"X has {width} features, but \\w+ is expecting 6 features"):
            getattr(fitted[name], method)(X)


@pytest.mark.parametrize("name", OURS)
def test_unfitted_scoring_and_saving(name, data, tmp_path):
    model = build(name)
    for call in (lambda: model.decision_function(data.X), lambda: model.predict(data.X),
                 lambda: model.save_model(tmp_path / "m.pt")):
        with pytest.raises(NotFittedError):
            call()


@pytest.mark.filterwarnings("ignore:y labels no anomaly")
@pytest.mark.parametrize("name", OURS)
def test_one_row(name, data):
    with pytest.raises(ValueError):
        build(name).fit(data.X[:1], np.zeros(1))


# ------------------------------------------------------------------ bad y
BAD_Y = {
    "short": (lambda y: y[:-1], "labels but X has"),
    "long": (lambda y: np.r_[y, 0], "labels but X has"),
    "two": (lambda y: np.r_[y[:-1], 2], r"found \[2\]"),
    "minus-one": (lambda y: np.r_[y[:-1], -1], r"found \[-1\]"),
    "half": (lambda y: np.r_[y[:-1], 0.5], r"found \[0.5\]"),
    "nan": (lambda y: np.r_[y[:-1].astype(float), np.nan], "NaN"),
    "strings": (lambda y: y.astype(str), "numeric 0/1"),
    "2d": (lambda y: np.c_[y, y], "1d array|shape"),
    "all-anomalies": (lambda y: np.ones_like(y), "every sample as an anomaly"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
@pytest.mark.parametrize("name", OURS)
def test_bad_y(name, case, data):
    make_y, match = BAD_Y[case]
    with pytest.raises(ValueError, match=match):
        build(name).fit(data.X, make_y(data.y))


# ------------------------------------------------------------- parameters
NAN, INF = math.nan, math.inf
#: Values no detector may take for the parameter, from what the parameter means (documented forms):
#: a count is a positive int (no bool, float or string), a rate a positive finite number, ...
INVALID: dict[str, list] = {
    "epochs": [0, -1, 1.5, "5", True, None],
    "epoch_steps": [0, -2, 2.5, "all", None],
    "batch_size": [0, -1, 64.0, "64", None],
    "anomaly_batch_size": [0, -1, 8.0, None],
    "inference_batch_size": [0, -1, 1.5, None],
    "lr": [0, -1e-3, NAN, INF, "0.01", None],
    "weight_decay": [-1e-4, NAN, INF, "0", None],
    "rep_dim": [0, -1, 2.5, "8", True],
    "hidden_dims": ["a,b", "", [], [8, 0], [8.5], 0, -5, 2.5, True],
    "act": ["relu", "Softmax", "Module", "MultiheadAttention", "GLU", 1],
    "bias": [1, 0, "True", None],
    "n_prototypes": [0, -1, 2.5, "many", True, None],
    "alpha": [0, -1.0, NAN, INF, None],
    "beta": [-0.5, NAN, INF, None],
    "margin": [-0.1, NAN, INF, None],
    "dwa_temperature": [0, -1.0, NAN, None],
    "pretrain_epochs": [-1, 1.5, "2", None],
    "pretrain_noise": [-0.1, NAN, INF, None],
    **{name: [1, 0, "yes", None] for name in ("use_recon_loss", "use_prototype_loss", "use_weights",
                                              "recon_in_score")},
    "recon_norm": ["linear", "Log", 1, True],
    "n_ensemble": [0, -1, 1.5, None],
    "scaler": ["robust", "standard", "quantile", "MinMax", "none", 1, True],
    "contamination": [0, -0.1, 0.51, 1, NAN, None],
    "device": ["tpu", "gpu", 1, None],
    "verbose": [-1, 1.5, "1", None],
    "prt_steps": [0, -1, 1.5, None],
    "random_state": [-1, 2**32, 1.5, "abc"],
    "loss_on": ["anomaly", "ALL", 1, None],
    "l": [1, 0, 2.5, None],
    "eta": [0, -1.0, NAN, None],
    "candidates": [{}, {"a+b": "MNP"}, {"x": "NoSuchDetector"}, {"me": "SelectByLabels"}, "MNP", ["MNP"], 1],
    "blends": ["MNP+IForest", ["MNP"], [1], 1],
    "default": [1, ["MNP"], "NoSuchOption"],
    "n_splits": [1, 0, 2.5, None],
    "max_fit": [1, 0, 2.5, None],
    "max_eval": [1, 0, 2.5, None],
}
#: What one detector adds to or changes in a shared row.
INVALID_FOR: dict[tuple[str, str], list] = {
    ("MNP", "rep_dim"): [None],
    ("DevNetAnoOnly", "rep_dim"): [8],  # DevNet has no representation layer: None only
    ("DeepSADAnoOnly", "rep_dim"): [None],
    ("DevNetAnoOnly", "margin"): [0],  # the deviation loss's margin is positive
    ("DevNetAnoOnly", "epoch_steps"): ["auto"], ("DeepSADAnoOnly", "epoch_steps"): ["auto"],
    ("DevNetAnoOnly", "hidden_dims"): [None], ("DeepSADAnoOnly", "hidden_dims"): [None],
}


def _invalid_values(name: str, param: str) -> list:
    """The written invalid values of ``param`` for ``name``, and values no parameter takes."""
    generic = [object(), "not-a-valid-value"] + ([] if param == "hidden_dims" else [[1, 2]])
    return generic + INVALID[param] + INVALID_FOR.get((name, param), [])


def _param_cases() -> list:
    cases = []
    for name in OURS:
        for param in DETECTORS[name].load()().get_params():
            for value in _invalid_values(name, param):
                shown = "object" if type(value) is object else repr(value)
                cases.append(pytest.param(name, param, value, id=f"{name}-{param}={shown}"))
    return cases


@pytest.mark.parametrize("name", OURS)
def test_every_parameter_has_written_invalid_values(name):
    """A new parameter must get its row in INVALID (what it must refuse) before its cases run."""
    assert set(DETECTORS[name].load()().get_params()) <= set(INVALID)


@pytest.mark.parametrize("name, param, value", _param_cases())
def test_invalid_parameter_rejected_at_fit(name, param, value, data):
    model = build(name, **{param: value})  # __init__ only stores
    with pytest.raises(ValueError, match=param):
        model.fit(data.X, data.y)
    assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("name", OURS)
def test_every_parameter_has_a_constraint(name):
    cls = DETECTORS[name].load()
    assert set(cls().get_params()) <= set(cls._parameter_constraints)


@pytest.mark.parametrize("value, match", [
    ("abc", "random_state must be None or an integer"),
    (-1, "random_state must be None or an integer"),
    (2**32, "random_state must be None or an integer"),
    (1.5, "random_state must be None or an integer"),
])
def test_random_state_errors_name_the_allowed_forms(value, match, data):
    with pytest.raises(ValueError, match=match):
        build("DevNetAnoOnly", random_state=value).fit(data.X, data.y)


@pytest.mark.parametrize("name", OURS)
def test_random_state_accepts_none_int_and_generators(name, data):
    a = build(name, random_state=np.random.RandomState(5)).fit(data.X, data.y).decision_scores_
    b = build(name, random_state=np.random.RandomState(5)).fit(data.X, data.y).decision_scores_
    np.testing.assert_array_equal(a, b)
    g = build(name, random_state=np.random.default_rng(5)).fit(data.X, data.y).decision_scores_
    assert np.isfinite(g).all() and np.isfinite(build(name, random_state=None).fit(data.X, data.y)
                                                .decision_scores_).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_unknown_activation_lists_the_valid_names(name, data):
    for act in ("Module", "Softmax", "relu"):
        with pytest.raises(ValueError, match=r"act must be one of \(.*'ReLU'.*'LeakyReLU'.*got '"):
            build(name, act=act).fit(data.X, data.y)
    assert np.isfinite(build(name, act="GELU").fit(data.X, data.y).decision_scores_).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_epochs_zero_is_rejected(name, data):
    with pytest.raises(ValueError, match=r"epochs=0 is outside \[1"):
        build(name, epochs=0).fit(data.X, data.y)


@pytest.mark.parametrize("name, param, value", [
    ("MNP", "alpha", math.nan), ("MNP", "margin", math.inf), ("MNP", "beta", math.nan),
    ("DevNetAnoOnly", "margin", math.inf), ("DeepSADAnoOnly", "eta", math.nan), ("MNP", "lr", math.nan),
    ("MNP", "contamination", math.nan),
])
def test_non_finite_parameter_is_about_the_parameter(name, param, value, data):
    with pytest.raises(ValueError, match=f"{param} must be a finite number") as info:
        build(name, **{param: value}).fit(data.X, data.y)
    assert "lr" not in str(info.value) or param == "lr"


# --------------------------------------------------------------- divergence
@pytest.mark.parametrize("name", NETWORKS)
def test_divergence_is_named_and_unfits(name, data):
    model = build(name, lr=1e30)
    with pytest.raises(RuntimeError, match=r"diverged: non-finite .*Try a smaller lr"):
        model.fit(data.X, data.y)
    assert set(vars(model)) == set(model.get_params(deep=False))
    with pytest.raises(NotFittedError):
        model.decision_function(data.X)


def test_mnp_pretraining_divergence_is_not_blamed_on_the_data(data):
    with pytest.raises(RuntimeError, match=r"MNP autoencoder pretraining diverged: non-finite latent codes\. "
                                           r"Try a smaller lr \(lr=100000000\.0\)"):
        build("MNP", lr=1e8).fit(data.X, data.y)


class _Diverging:
    """Mixin whose training loss turns NaN."""

    def training_forward(self, batch_x, net, criterion):
        return super().training_forward(batch_x, net, criterion) * float("nan")


@pytest.mark.parametrize("name", NETWORKS)
def test_failed_fit_leaves_no_fitted_looking_detector(name, data):
    base = build(name)
    model = type("Diverging", (_Diverging, type(base)), {})(**base.get_params())
    with pytest.raises(RuntimeError, match="diverged"):
        model.fit(data.X, data.y)
    assert set(vars(model)) == set(model.get_params(deep=False))
    with pytest.raises(NotFittedError):
        model.predict(data.X)


# ------------------------------------------------------------ degenerate fits
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["duplicates", "constant"])
@pytest.mark.parametrize("name", OURS)
def test_degenerate_training_data_warns(name, kind, data):
    X = np.tile(data.X[:1], (len(data.X), 1)) if kind == "duplicates" else np.full(data.X.shape, 3.0)
    with pytest.warns(DegenerateFitWarning) as record:
        model = build(name).fit(X, data.y)
    messages = [str(w.message) for w in record if issubclass(w.category, DegenerateFitWarning)]
    assert any("copies of one row" in m for m in messages)
    assert any("scores every training sample the same" in m for m in messages)
    assert np.ptp(model.decision_scores_) == 0
    assert issubclass(DegenerateFitWarning, UserWarning)


@pytest.mark.parametrize("name", OURS)
def test_ordinary_fit_does_not_warn_degenerate(name, data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        build(name).fit(data.X, data.y)


# ------------------------------------------------------- feature names
@pytest.mark.parametrize("name", OURS)
def test_reordered_or_renamed_columns_raise(name, fitted_df, data, columns):
    model = fitted_df[name]
    df = pd.DataFrame(data.X[:20], columns=columns)
    np.testing.assert_array_equal(model.feature_names_in_, np.asarray(columns, dtype=object))
    for other in (df[columns[::-1]], df.set_axis([f"g{i}" for i in range(len(columns))], axis=1),
                  df[columns[1:] + columns[:1]]):
        with pytest.raises(ValueError, match="The feature names should match those that were passed during"):
            model.decision_function(other)
    with pytest.raises(ValueError, match="feature names should match"):
        model.decision_function(df.assign(extra=1.0))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        without_names = model.decision_function(df.to_numpy())
    np.testing.assert_array_equal(model.decision_function(df), without_names)


@pytest.mark.parametrize("name", OURS)
def test_names_at_fit_or_scoring_only_warn(name, fitted, fitted_df, data, columns):
    df = pd.DataFrame(data.X[:20], columns=columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but \\w+ was fitted with"):
        fitted_df[name].decision_function(data.X[:20])
    with pytest.warns(UserWarning, match="X has feature names, but \\w+ was fitted without feature names"):
        fitted[name].decision_function(df)


@pytest.mark.parametrize("name", ["MNP", "DevNetAnoOnly"])
def test_non_string_column_names_follow_scikit_learn(name, data):
    model = build(name).fit(pd.DataFrame(data.X), data.y)  # integer names: not feature names
    assert not hasattr(model, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.decision_function(data.X[:5])
    mixed = pd.DataFrame(data.X, columns=["a", 1, "c", "d", "e", "f"])
    with pytest.raises(TypeError, match="Feature names are only supported if all input features have string"):
        build(name).fit(mixed, data.y)


@pytest.mark.parametrize("name", OURS)
def test_feature_names_survive_save_and_load(name, fitted_df, tmp_path, data, columns):
    model = fitted_df[name]
    model.save_model(tmp_path / "m.pt")
    loaded = type(model).load_model(tmp_path / "m.pt")
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == columns
    assert all(type(c) is str for c in loaded.feature_names_in_)
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.decision_function(pd.DataFrame(data.X[:5], columns=columns)[columns[::-1]])


# -------------------------------------------------- nothing modified, RNG untouched
def _rng_states():
    return pickle.dumps(np.random.get_state()), random.getstate(), torch.get_rng_state()


@pytest.mark.parametrize("name", OURS)
def test_inputs_not_modified_and_global_rngs_untouched(name, data, tmp_path, columns):
    X, y = data.X.copy(), data.y.copy()
    df = pd.DataFrame(data.X, columns=columns)
    df_copy = df.copy()
    X32 = data.X.astype(np.float32)  # scored in place of a copy: must still not be written
    X32_copy = X32.copy()
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    before = _rng_states()
    model = build(name).fit(X, y)
    model.decision_function(X32, return_rep=name in NETWORKS)
    model.predict(X32)
    model.save_model(tmp_path / "m.pt")
    type(model).load_model(tmp_path / "m.pt").decision_function(X32)
    build(name).fit(df, y).decision_function(df)
    after = _rng_states()
    assert before[0] == after[0] and before[1] == after[1] and torch.equal(before[2], after[2])
    np.testing.assert_array_equal(X, data.X)
    np.testing.assert_array_equal(y, data.y)
    np.testing.assert_array_equal(X32, X32_copy)
    pd.testing.assert_frame_equal(df, df_copy)


@pytest.mark.parametrize("name", OURS)
def test_read_only_input_is_scored_without_warning(name, fitted, data):
    X = data.X.astype(np.float32)
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = fitted[name].decision_function(X)
    # the same float32 rows, writable (the input scaling runs in float64, so float32 rows are compared
    # with float32 rows)
    np.testing.assert_allclose(scores, fitted[name].decision_function(data.X.astype(np.float32)), rtol=1e-6)


# ---------------------------------------------------- nothing leaked (pickles)
@pytest.mark.parametrize("name", OURS)
def test_pickle_holds_nothing_of_the_scored_or_training_rows(name, data):
    model = build(name).fit(data.X, data.y)
    before = pickle.dumps(model)
    big = np.random.default_rng(1).normal(size=(20_000, data.X.shape[1])).astype(np.float32)
    model.decision_function(big)
    model.decision_function(big, return_rep=name in NETWORKS)
    model.predict(big)
    after = pickle.dumps(model)
    assert len(after) == len(before)
    assert big[12345].tobytes() not in after
    for row in data.X[:5].astype(np.float32):  # nor the training data (only its scores are kept)
        assert row.tobytes() not in after


# ----------------------------------------------------------- scoring memory
@pytest.mark.parametrize("name", NETWORKS)
def test_scoring_keeps_no_representation_without_return_rep(name, fitted, data):
    """Without ``return_rep`` no chunk's representation outlives the chunk."""
    import weakref

    model = pickle.loads(pickle.dumps(fitted[name]))
    alive: list[int] = []
    refs: list[weakref.ref] = []
    forward = model.inference_forward

    def spy(batch_x, net, criterion):
        alive.append(sum(r() is not None for r in refs))
        z, scores = forward(batch_x, net, criterion)
        refs.append(weakref.ref(z))
        return z, scores

    model.inference_forward = spy
    model.inference_batch_size = 16
    scores = model.decision_function(data.X)
    assert len(alive) == math.ceil(len(data.X) / 16) and max(alive) == 0
    alive.clear()
    refs.clear()
    with_rep, rep = model.decision_function(data.X, return_rep=True)
    np.testing.assert_array_equal(with_rep, scores)
    assert rep.shape[0] == len(data.X)


# ------------------------------------------------------- damaged checkpoints
def _contents(path) -> dict:
    outer = torch.load(path, weights_only=True)
    return torch.load(io.BytesIO(outer["payload"].numpy().tobytes()), weights_only=True)


def _write(path, contents: dict, fmt: str, digest: str | None = None) -> None:
    """Write ``contents`` as a format-2 file with its checksum (or ``digest``)."""
    buffer = io.BytesIO()
    torch.save(contents, buffer)
    payload = buffer.getvalue()
    torch.save({"format": fmt, "sha256": digest or hashlib.sha256(payload).hexdigest(),
                "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, path)


def _first_float(sd: dict) -> str:
    return next(k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1)


def _set(key, value):
    def edit(c):
        c[key] = value
    return edit


def _nan_weights(c):
    sd = dict(c["state_dict"])
    k = _first_float(sd)
    sd[k] = torch.full_like(sd[k], float("nan"))
    c["state_dict"] = sd


def _reshaped_weight(c):
    sd = dict(c["state_dict"])
    sd[_first_float(sd)] = torch.zeros(3)
    c["state_dict"] = sd


def _missing_weight(c):
    sd = dict(c["state_dict"])
    sd.pop(_first_float(sd))
    c["state_dict"] = sd


def _param(key, value):
    def edit(c):
        c["params"] = {**c["params"], key: value}
    return edit


def _scores_nan(c):
    s = c["decision_scores_"].clone()
    s[0] = float("nan")
    c["decision_scores_"] = s


#: Forged contents, re-checksummed: what the checksum cannot catch, the validation must.
FORGED = {
    "params-missing": lambda c: c.pop("params"),
    "params-not-a-dict": _set("params", 5),
    "param-invalid-epochs": _param("epochs", -5),
    "param-nan-lr": _param("lr", float("nan")),
    "param-unknown": _param("nonsense", 1),
    "n-features-string": _set("n_features_in_", "x"),
    "n-features-wrong": lambda c: c.update(n_features_in_=c["n_features_in_"] + 1),
    "state-dict-empty": _set("state_dict", {}),
    "state-dict-not-tensors": lambda c: c.update(state_dict={k: 1 for k in c["state_dict"]}),
    "weight-missing": _missing_weight,
    "weight-reshaped": _reshaped_weight,
    "weights-nan": _nan_weights,
    "scores-nan": _scores_nan,
    "scores-2d": lambda c: c.update(decision_scores_=c["decision_scores_"][:, None]),
    "scores-missing": lambda c: c.pop("decision_scores_"),
    "threshold-changed": lambda c: c.update(threshold_=c["threshold_"] + 1.0),
    "threshold-string": _set("threshold_", "high"),
    "feature-names-wrong-length": _set("feature_names_in_", ["a"]),
    "loss-history-missing": lambda c: c.pop("loss_history_"),
    "loss-history-garbage": _set("loss_history_", [[1.0]]),
    "inner-format-differs": _set("format", "MNP/1"),
}


@pytest.mark.parametrize("case", list(FORGED))
@pytest.mark.parametrize("name", NETWORKS)
def test_forged_checkpoint_refused(name, case, saved, tmp_path):
    contents = _contents(saved[name])
    fmt = contents["format"]
    FORGED[case](contents)
    _write(tmp_path / "forged.pt", contents, fmt)
    with pytest.raises(ValueError, match=f"is not a valid deepod-mnp {DETECTORS[name].attr} checkpoint: "):
        type(build(name)).load_model(tmp_path / "forged.pt")


class _Marker:
    ran = False


def _mark():  # what a malicious pickle would run; weights_only=True must never call it
    _Marker.ran = True
    return 0


class _Malicious:
    def __reduce__(self):
        return (_mark, ())


def _damage_file(case: str, src, dst) -> None:
    raw = src.read_bytes()
    outer = torch.load(src, weights_only=True)
    payload = outer["payload"].numpy().tobytes()
    if case == "truncated-half":
        dst.write_bytes(raw[: len(raw) // 2])
    elif case == "truncated-header":
        dst.write_bytes(raw[:10])
    elif case == "empty-file":
        dst.write_bytes(b"")
    elif case == "text-file":
        dst.write_text("hello, this is not a model\n")
    elif case == "npy-file":
        with open(dst, "wb") as f:
            np.save(f, np.zeros(3))
    elif case == "random-bytes":
        dst.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "payload-bytes-overwritten":  # weights damaged on disk: the checksum no longer matches
        at = raw.find(payload[-200:])
        assert at > 0
        damaged = bytearray(raw)
        damaged[at: at + 8] = b"\xff" * 8
        dst.write_bytes(bytes(damaged))
    elif case == "checksum-wrong":
        torch.save({**outer, "sha256": "0" * 64}, dst)
    elif case == "checksum-missing":
        torch.save({k: v for k, v in outer.items() if k != "sha256"}, dst)
    elif case == "extra-entry":
        torch.save({**outer, "more": 1}, dst)
    elif case == "payload-not-bytes":
        torch.save({**outer, "payload": outer["payload"].float()}, dst)
    elif case == "unknown-version":
        torch.save({**outer, "format": outer["format"].replace("/2", "/9")}, dst)
    elif case == "no-format":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, dst)
    elif case == "not-a-dict":
        torch.save([1, 2, 3], dst)
    elif case == "bare-state-dict":
        torch.save(torch.nn.Linear(3, 2).state_dict(), dst)
    elif case == "malicious-pickle":
        torch.save({"format": outer["format"], "x": _Malicious()}, dst)
    else:  # pragma: no cover
        raise AssertionError(case)


DAMAGED_FILES = ["truncated-half", "truncated-header", "empty-file", "text-file", "npy-file", "random-bytes",
                 "payload-bytes-overwritten", "checksum-wrong", "checksum-missing", "extra-entry",
                 "payload-not-bytes", "unknown-version", "no-format", "not-a-dict", "bare-state-dict",
                 "malicious-pickle"]


@pytest.mark.parametrize("case", DAMAGED_FILES)
@pytest.mark.parametrize("name", OURS)
def test_damaged_checkpoint_file_refused(name, case, saved, tmp_path):
    _damage_file(case, saved[name], tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match=f"is not a valid deepod-mnp {DETECTORS[name].attr} checkpoint: "):
        type(build(name)).load_model(tmp_path / "damaged.pt")
    assert not _Marker.ran


@pytest.mark.parametrize("name", OURS)
def test_checkpoint_of_another_detector_refused(name, saved):
    other = "DevNetAnoOnly" if DETECTORS[name].attr != "DevNetAnoOnly" else "MNP"
    with pytest.raises(ValueError, match=f"its format is '{DETECTORS[other].attr}/2'"):
        type(build(name)).load_model(saved[other])


@pytest.mark.parametrize("name", NETWORKS)
def test_round_trip(name, fitted, saved, data):
    model = fitted[name]
    loaded = type(model).load_model(saved[name])
    np.testing.assert_array_equal(loaded.decision_function(data.X), model.decision_function(data.X))
    np.testing.assert_array_equal(loaded.decision_scores_, model.decision_scores_)
    assert loaded.get_params() == model.get_params()


def test_top_level_exports():
    for name in ("MNP", "DevNetAnoOnly", "DeepSADAnoOnly", "DETECTORS", "make_detector"):
        assert name in deepod_mnp.__all__ and hasattr(deepod_mnp, name)
    for cls in (deepod_mnp.MNP, deepod_mnp.DevNetAnoOnly, deepod_mnp.DeepSADAnoOnly):
        assert callable(cls.save_model) and callable(cls.load_model)
