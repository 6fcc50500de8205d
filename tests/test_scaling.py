"""Input scaling learned in fit: the scaler itself, its place in MNP, and the units of real data."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from sklearn.preprocessing import QuantileTransformer

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, drop_constant_features, make_split, split_indices
from deepod_mnp.datasets import load_pendigits
from deepod_mnp.method.scaling import FeatureScaler, make_scaler, parse_spec

SPECS = ["robust", "robust+clip", "robust+log", "standard", "standard+clip", "minmax", "quantile"]


@pytest.fixture(scope="module")
def heavy():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.lognormal(0, 2, 3000), rng.normal(5, 2, 3000),
                         (rng.random(3000) < 0.03).astype(float),  # a rare flag: IQR 0
                         np.r_[np.zeros(2990), rng.uniform(1e3, 1e6, 10)]])  # mostly constant, huge tail
    return X


@pytest.mark.parametrize("spec", SPECS)
def test_scaler_ignores_units(spec, heavy):
    a, b = np.array([100.0, 0.01, 3.0, 1e-3]), np.array([50.0, -7.0, 1.0, 1e6])
    ref = make_scaler(spec).fit(heavy).transform(heavy, np.float64)
    moved = make_scaler(spec).fit(heavy * a + b).transform(heavy * a + b, np.float64)
    np.testing.assert_allclose(moved, ref, atol=1e-6)
    assert np.isfinite(ref).all()


def test_robust_scaler_keeps_flags_and_tails_bounded(heavy):
    out = FeatureScaler("robust").fit_transform(heavy, np.float64)
    assert set(np.unique(out[:, 2])) == {0.0, 1.0}  # IQR 0: divided by the range instead
    assert out[:, 3].max() <= 1.0  # likewise for the mostly-constant column
    assert out[:, 0].max() > 20  # a heavy tail stays long ...
    clipped = FeatureScaler("robust", tail="clip").fit_transform(heavy, np.float64)
    assert clipped.max() == 5.0 and clipped.min() >= -5.0  # ... unless clipped
    logged = FeatureScaler("robust", tail="log").fit_transform(heavy, np.float64)
    inside = np.abs(out) <= 5
    np.testing.assert_array_equal(logged[inside], out[inside])
    order = np.argsort(out[:, 0])
    assert np.all(np.diff(logged[order, 0]) >= 0) and logged.max() < 5 + np.log1p(out.max())


def test_quantile_matches_scikit_learn(heavy):
    ours = FeatureScaler("quantile").fit_transform(heavy[:, :2], np.float64)
    theirs = QuantileTransformer(output_distribution="normal", n_quantiles=1000).fit_transform(heavy[:, :2])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS)
def test_state_round_trip(spec, heavy):
    scaler = make_scaler(spec).fit(heavy)
    again = FeatureScaler.from_state(scaler.get_state())
    np.testing.assert_array_equal(again.transform(heavy), scaler.transform(heavy))
    assert again.is_affine == (spec in ("robust", "standard", "minmax"))


@pytest.mark.parametrize("spec", ["nope", "robust+cut", "quantile+clip", 3])
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError, match="scaler"):
        parse_spec(spec)
    with pytest.raises(ValueError, match="scaler"):
        MNP(scaler=spec).fit(np.zeros((20, 2)) + np.arange(20)[:, None], np.r_[np.zeros(19), 1])
    assert parse_spec(None) == parse_spec("none") == (None, None)


@pytest.mark.parametrize(("kwargs", "named"), [({"tail": "cut"}, "tail"),
                                              ({"method": "quantile", "tail": "clip"}, "tail"),
                                              ({"tail": "clip", "tail_bound": -1.0}, "tail_bound")])
def test_scaler_errors_name_the_scalers_own_parameters(kwargs, named):
    """FeatureScaler's errors name its own keyword (``tail``, ``tail_bound``), one that exists."""
    with pytest.raises(ValueError) as err:
        FeatureScaler(**kwargs).fit(np.arange(8.0).reshape(4, 2))
    words = set(re.findall(r"\b[a-z_]+(?==|\b)", str(err.value)))
    assert named in words and named in inspect.signature(FeatureScaler).parameters
    assert not {w for w in words if w.startswith("scaler_")}, str(err.value)


def test_mnp_scaler_is_a_preprocessing_step_and_none_is_the_identity(make_mnp, weak_data, tmp_path):
    """``scaler='robust'`` is exactly MNP(scaler=None) fed robust-scaled data; both save and load."""
    X, y = weak_data.X, weak_data.y
    scaled = make_mnp(scaler="robust").fit(X, y)
    scaler = FeatureScaler("robust").fit(X)
    plain = make_mnp(scaler=None).fit(scaler.transform(X), y)
    assert plain.scaler_ is None
    np.testing.assert_array_equal(scaled.decision_function(X), plain.decision_function(scaler.transform(X)))
    np.testing.assert_array_equal(scaled.scaler_.center_, scaler.center_)
    for model, X_in in ((scaled, X), (plain, scaler.transform(X))):
        model.save_model(tmp_path / "m.pt")
        loaded = MNP.load_model(tmp_path / "m.pt")
        np.testing.assert_array_equal(loaded.decision_function(X_in), model.decision_function(X_in))
        assert loaded.get_params()["scaler"] == model.scaler
    loaded = MNP.load_model(tmp_path / "m.pt")
    assert loaded.scaler_ is None  # the last one saved had no scaler


def test_old_checkpoint_without_scaler_loads_as_unscaled(make_mnp, weak_data, tmp_path):
    import torch

    from deepod_mnp import persistence

    model = make_mnp(scaler=None).fit(weak_data.X, weak_data.y)
    state = persistence._contents(model)
    del state["scaler_"], state["params"]["scaler"]  # what a checkpoint from before scaling holds
    for version in ("1", "2"):
        if version == "1":  # format 1: the plain dict
            torch.save({**state, "format": "MNP/1"}, tmp_path / "old.pt")
        else:  # format 2: the same contents with their checksum
            import hashlib
            import io

            buffer = io.BytesIO()
            torch.save(state, buffer)
            payload = buffer.getvalue()
            torch.save({"format": state["format"], "sha256": hashlib.sha256(payload).hexdigest(),
                        "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)},
                       tmp_path / "old.pt")
        old = MNP.load_model(tmp_path / "old.pt")
        assert old.scaler is None and old.scaler_ is None
        np.testing.assert_array_equal(old.decision_function(weak_data.X),
                                      model.decision_function(weak_data.X))


def test_mnp_fitted_on_raw_pendigits_units_scores_like_min_max():
    """Real data: the protocol split of Pendigits in raw units and multiplied by 100 plus 50.

    Without scaling the raw-unit fit collapses (seed 42, defaults: AUC-PR 0.82
    on min-max features, 0.12 at x100+50); with the default scaler all three
    inputs give the same model up to float rounding.
    """
    X, y = load_pendigits()
    split = make_split(X, y, labeled_ratio=0.01)
    X_kept, _ = drop_constant_features(X)
    train, test, _ = split_indices(y)
    inputs = {"minmax": (split.X_train, split.X_test), "raw": (X_kept[train], X_kept[test]),
              "x100+50": (split.X_train * 100 + 50, split.X_test * 100 + 50)}
    params = dict(n_ensemble=1, random_state=42, device="cpu")  # one member: 0.76 at seed 42
    figures = {name: auc_pr(split.y_test, MNP(**params).fit(Xtr, split.y_train_semi).decision_function(Xte))
               for name, (Xtr, Xte) in inputs.items()}
    assert figures["minmax"] > 0.6
    for name in ("raw", "x100+50"):
        assert abs(figures[name] - figures["minmax"]) < 0.02, figures
    Xtr, Xte = inputs["x100+50"]
    unscaled = MNP(**params, scaler=None).fit(Xtr, split.y_train_semi).decision_function(Xte)
    assert auc_pr(split.y_test, unscaled) < figures["minmax"] - 0.2  # what the scaler protects against
    # on the protocol's min-max features the default scaler is the identity: the paper's model, bit for bit
    Xtr, Xte = inputs["minmax"]
    default = MNP(**params).fit(Xtr, split.y_train_semi).decision_function(Xte)
    np.testing.assert_array_equal(default, MNP(**params, scaler=None).fit(Xtr, split.y_train_semi)
                                  .decision_function(Xte))


def test_head_features_feeds_the_input_to_the_head_and_round_trips(make_mnp, weak_data, tmp_path):
    model = make_mnp(head_features=True).fit(weak_data.X, weak_data.y)
    first = model.net.members[0].scorer[0]
    assert first.in_features == model.rep_dim + 2 + weak_data.X.shape[1]
    assert make_mnp(head_features=False).fit(weak_data.X, weak_data.y).net.members[0].scorer[0].in_features \
        == model.rep_dim + 2
    with torch.no_grad():  # scored as the network itself scores (the fused path does not apply)
        direct = model.net(torch.from_numpy(model._check_scoring_X(weak_data.X))).score.numpy()
    np.testing.assert_allclose(model.decision_function(weak_data.X), direct, rtol=1e-6)
    model.save_model(tmp_path / "h.pt")
    loaded = MNP.load_model(tmp_path / "h.pt")
    np.testing.assert_array_equal(loaded.decision_function(weak_data.X), model.decision_function(weak_data.X))


@pytest.mark.parametrize("cls", ["DevNetAnoOnly", "DeepSADAnoOnly"])
def test_anoonly_learns_its_scaling_too(cls, weak_data, tmp_path):
    """AnoOnly's default scaler: raw units and min-max features give the same scores; None is X as given."""
    import deepod_mnp

    make = getattr(deepod_mnp, cls)
    X, y = weak_data.X, weak_data.y
    params = dict(epochs=2, epoch_steps=4, device="cpu", random_state=0)
    minmax = FeatureScaler("minmax").fit(X)
    on_raw = make(**params).fit(X * 1000 - 7, y)
    on_minmax = make(**params).fit(minmax.transform(X), y)
    np.testing.assert_allclose(on_raw.decision_function(X * 1000 - 7),
                               on_minmax.decision_function(minmax.transform(X)), rtol=1e-4, atol=1e-5)
    assert on_raw.scaler_.method == "minmax" and make(**params, scaler=None).fit(X, y).scaler_ is None
