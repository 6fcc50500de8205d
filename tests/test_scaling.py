"""Input scaling learned in fit: the scaler itself, its place in MNP, and the units of real data."""
from __future__ import annotations

import numpy as np
import pytest

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, drop_constant_features, make_split, split_indices
from deepod_mnp.datasets import load_pendigits
from deepod_mnp.method.scaling import FeatureScaler, make_scaler


@pytest.fixture(scope="module")
def heavy():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.lognormal(0, 2, 3000), rng.normal(5, 2, 3000),
                         (rng.random(3000) < 0.03).astype(float),  # a rare flag
                         np.r_[np.zeros(2990), rng.uniform(1e3, 1e6, 10)],  # mostly constant, huge tail
                         np.full(3000, 7.0)])  # constant
    return X


def test_scaler_maps_the_training_range_to_unit_interval(heavy):
    out = FeatureScaler().fit_transform(heavy)
    np.testing.assert_array_equal(out[:, :4].min(axis=0), 0.0)
    np.testing.assert_allclose(out[:, :4].max(axis=0), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out[:, 4], 0.0)  # a constant feature: divided by 1, not by 0
    # by hand, the rare flag: 0/1 stays 0/1; a new row beyond the training range goes beyond [0, 1]
    assert set(np.unique(out[:, 2])) == {0.0, 1.0}
    new = FeatureScaler().fit(heavy).transform(np.array([[0.0, 5.0, 2.0, -1e6, 8.0]]))
    assert new[0, 2] == 2.0 and new[0, 3] < -0.9 and new[0, 4] == 1.0


def test_scaler_ignores_units(heavy):
    a, b = np.array([100.0, 0.01, 3.0, 1e-3, 2.0]), np.array([50.0, -7.0, 1.0, 1e6, -3.0])
    ref = FeatureScaler().fit_transform(heavy)
    moved = FeatureScaler().fit_transform(heavy * a + b)
    np.testing.assert_allclose(moved, ref, atol=1e-6)


def test_scaler_is_the_identity_on_min_max_features(heavy):
    """What the protocol's min-max step (scikit-learn's MinMaxScaler) gives, the scaler leaves bit for bit
    (``scripts/check_minmax_identity.py`` checks it on every data set's split)."""
    from sklearn.preprocessing import MinMaxScaler

    unit = MinMaxScaler().fit_transform(heavy[:, :4])
    np.testing.assert_array_equal(FeatureScaler().fit_transform(unit, np.float32), unit.astype(np.float32))


def test_affine_form_and_state_round_trip(heavy):
    scaler = FeatureScaler().fit(heavy)
    mul, add = scaler.affine()
    np.testing.assert_allclose(heavy * mul + add, scaler.transform(heavy), rtol=0, atol=1e-12)
    again = FeatureScaler.from_state(scaler.get_state())
    np.testing.assert_array_equal(again.transform(heavy), scaler.transform(heavy))
    with pytest.raises(ValueError, match="X has 2 features; the scaler was fitted on 5"):
        scaler.transform(heavy[:, :2])
    assert make_scaler(None) is None and isinstance(make_scaler("minmax"), FeatureScaler)


@pytest.mark.parametrize("spec", ["robust", "standard", "quantile", "robust+clip", "none", 3])
def test_only_minmax_and_none_are_scalers(spec):
    with pytest.raises(ValueError, match=r"scaler must be one of \('minmax',\) or None"):
        MNP(scaler=spec).fit(np.zeros((20, 2)) + np.arange(20)[:, None], np.r_[np.zeros(19), 1])


def test_mnp_with_scaler_none_sees_x_as_given(make_mnp, weak_data, tmp_path):
    """``scaler='minmax'`` is exactly MNP(scaler=None) fed min-max scaled data; both save and load."""
    X, y = weak_data.X, weak_data.y
    scaled = make_mnp().fit(X, y)
    scaler = FeatureScaler().fit(X)
    plain = make_mnp(scaler=None).fit(scaler.transform(X), y)
    assert plain.scaler_ is None
    np.testing.assert_array_equal(scaled.decision_function(X), plain.decision_function(scaler.transform(X)))
    np.testing.assert_array_equal(scaled.scaler_.center_, scaler.center_)
    for model, X_in in ((scaled, X), (plain, scaler.transform(X))):
        model.save_model(tmp_path / "m.pt")
        loaded = MNP.load_model(tmp_path / "m.pt")
        np.testing.assert_array_equal(loaded.decision_function(X_in), model.decision_function(X_in))
        assert loaded.get_params()["scaler"] == model.scaler
        assert (loaded.scaler_ is None) == (model.scaler is None)


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


@pytest.mark.parametrize("cls", ["DevNetAnoOnly", "DeepSADAnoOnly"])
def test_anoonly_learns_its_scaling_too(cls, weak_data, tmp_path):
    """AnoOnly's default scaler: raw units and min-max features give the same scores; None is X as given."""
    import deepod_mnp

    make = getattr(deepod_mnp, cls)
    X, y = weak_data.X, weak_data.y
    params = dict(epochs=2, epoch_steps=4, device="cpu", random_state=0)
    minmax = FeatureScaler().fit(X)
    on_raw = make(**params).fit(X * 1000 - 7, y)
    on_minmax = make(**params).fit(minmax.transform(X), y)
    np.testing.assert_allclose(on_raw.decision_function(X * 1000 - 7),
                               on_minmax.decision_function(minmax.transform(X)), rtol=1e-4, atol=1e-5)
    assert isinstance(on_raw.scaler_, FeatureScaler) and make(**params, scaler=None).fit(X, y).scaler_ is None
