"""Input and parameter checks, no in-place changes, accepted input types and seeding."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

# ------------------------------------------------------------------- bad X


@pytest.mark.parametrize("make_X, match", [
    (lambda X: X[:, 0], "Expected 2D array"),
    (lambda X: X[:, :, None], "dim 3"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), "NaN"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), "infinity"),
    pytest.param(lambda X: X * np.where(np.arange(X.size).reshape(X.shape) == 5, 1e300, 1.0),
                 "infinity|too large",
                 marks=pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")),
    (lambda X: X[:0], "0 sample"),
    (lambda X: X[:, :0], "0 feature"),
], ids=["1d", "3d", "nan", "inf", "overflows-float32", "empty-rows", "empty-columns"])
def test_bad_X_at_fit(make_mnp, weak_data, make_X, match):
    with pytest.raises(ValueError, match=match):
        make_mnp().fit(make_X(weak_data.X), weak_data.y)


@pytest.mark.parametrize("make_X, match", [
    (lambda X: X[0], "Expected 2D array"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), "NaN"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, -np.inf, X), "infinity"),
    (lambda X: X[:0], "0 sample"),
], ids=["1d", "nan", "inf", "empty"])
@pytest.mark.parametrize("method", ["decision_function", "predict", "score_components"])
def test_bad_X_at_scoring(fitted_mnp, make_X, match, method):
    model, data = fitted_mnp
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(make_X(data.X[:10]))


@pytest.mark.parametrize("n_cols", [5, 7])
@pytest.mark.parametrize("method", ["decision_function", "predict", "score_components"])
def test_other_number_of_features(fitted_mnp, n_cols, method):
    model, data = fitted_mnp
    X = np.random.default_rng(0).normal(size=(10, n_cols))
    with pytest.raises(ValueError, match=f"X has {n_cols} features, but MNP is expecting 6 features"):
        getattr(model, method)(X)


# ------------------------------------------------------------------- bad y
@pytest.mark.parametrize("make_y, match", [
    (lambda y: y[:-1], "labels but X has"),
    (lambda y: np.r_[y[:-1], 2], r"only 0 .* and 1 .*found \[2\]"),
    (lambda y: np.r_[y[:-1], -1], r"found \[-1\]"),
    (lambda y: np.r_[y[:-1], 0.5], r"found \[0.5\]"),
    (lambda y: np.r_[y[:-1].astype(float), np.nan], "NaN"),
    (lambda y: np.array(["a"] * len(y)), "numeric"),
    (lambda y: np.c_[y, y], "1d array"),
], ids=["length", "two", "minus-one", "half", "nan", "strings", "2d"])
def test_bad_y(make_mnp, weak_data, make_y, match):
    with pytest.raises(ValueError, match=match):
        make_mnp().fit(weak_data.X, make_y(weak_data.y))


def test_all_anomaly_y(make_mnp, weak_data):
    with pytest.raises(ValueError, match="every sample as an anomaly"):
        make_mnp().fit(weak_data.X, np.ones(len(weak_data.X)))


def test_y_column_vector_and_bool_accepted(make_mnp, weak_data):
    a = make_mnp().fit(weak_data.X, weak_data.y[:, None])
    b = make_mnp().fit(weak_data.X, weak_data.y.astype(bool))
    np.testing.assert_array_equal(a.decision_scores_, b.decision_scores_)


@pytest.mark.parametrize("y", ["zeros", None], ids=["all-zero", "none"])
def test_no_labeled_anomaly_is_refused_with_what_to_do(make_mnp, weak_data, y):
    y = np.zeros(len(weak_data.X)) if y == "zeros" else None
    model = make_mnp()
    with pytest.raises(ValueError, match="at least one labeled anomaly.*IForest.*SelectByLabels"):
        model.fit(weak_data.X, y)
    assert not hasattr(model, "n_features_in_")


def test_labeled_anomaly_does_not_warn(make_mnp, weak_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        make_mnp().fit(weak_data.X, weak_data.y)


# ----------------------------------------------------------------- unfitted
@pytest.mark.parametrize("method", ["decision_function", "predict", "score_components"])
def test_unfitted_raises_not_fitted(make_mnp, weak_data, method):
    model = make_mnp()
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(model, method)(weak_data.X)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


def test_unfitted_prototypes_and_save(make_mnp, tmp_path):
    model = make_mnp()
    with pytest.raises(NotFittedError):
        model.prototypes_  # noqa: B018
    with pytest.raises(NotFittedError):
        model.save_model(tmp_path / "m.pt")


def test_failed_fit_leaves_detector_unfitted(make_mnp, weak_data):
    """A fit that fails part-way must not leave a detector that looks fitted.

    BUG: ``fit`` sets ``n_features_in_`` (the fitted marker) before training, so after
    k-means fails the next call gets ``AttributeError: no attribute 'net'`` instead of
    NotFittedError.
    """
    model = make_mnp(n_prototypes=len(weak_data.X) + 5)
    with pytest.raises(ValueError):
        model.fit(weak_data.X, weak_data.y)
    with pytest.raises(NotFittedError):
        model.decision_function(weak_data.X)


def test_too_many_prototypes_error_names_the_parameter(make_mnp, weak_data):
    """More prototypes than unlabeled rows is a parameter error; say which parameter.

    BUG: the error comes from scikit-learn's KMeans ("n_samples=... should be >=
    n_clusters=...") and never mentions ``n_prototypes``.
    """
    with pytest.raises(ValueError, match="n_prototypes"):
        make_mnp(n_prototypes=len(weak_data.X) + 5).fit(weak_data.X, weak_data.y)


# ----------------------------------------------------------------- bad params
EPOCH_STEPS = (r"epoch_steps must be a positive integer or -1 \(one full pass over the unlabeled samples "
               r"per epoch\) or 'auto', got ")


@pytest.mark.parametrize("params, match", [
    (dict(epochs=-1), r"epochs=-1 is outside \[1"),
    (dict(epochs=0), r"epochs=0 is outside \[1"),  # no training at all: an untrained network would score
    (dict(epochs=2.5), "epochs must be an integer"),
    (dict(epoch_steps=0), EPOCH_STEPS + r"0\."),
    (dict(epoch_steps=-2), EPOCH_STEPS + r"-2\."),
    (dict(batch_size=0), "batch_size=0"),
    (dict(lr=0), r"lr=0 is outside \(0"),
    (dict(lr=-1e-3), "lr="),
    (dict(alpha=0.0), "alpha="),
    (dict(margin=-0.1), "margin="),
    (dict(n_prototypes=0), r"n_prototypes=0 is outside \[1"),
    (dict(n_prototypes=True), "n_prototypes must be an integer"),
    (dict(n_prototypes="many"), "n_prototypes must be a positive integer or .auto., got .many."),
    (dict(epoch_steps="fast"), EPOCH_STEPS + r"'fast'"),
    (dict(epoch_steps=2.5), EPOCH_STEPS + r"2.5"),
    (dict(prt_steps=0), r"prt_steps=0 is outside \[1"),
    (dict(hidden_dims="a,b"), "hidden_dims must be a comma-separated string.*or None, got 'a,b'"),
    (dict(hidden_dims=[8, 0]), r"hidden_dims must be .*got \[8, 0\]"),
    (dict(act="Relu"), r"act must be one of \('ReLU', .*'LeakyReLU'.*got 'Relu'"),
    (dict(act="MultiheadAttention"), r"act must be one of \('ReLU'.*got 'MultiheadAttention'"),
    (dict(act="Module"), r"act must be one of \('ReLU'.*got 'Module'"),
    (dict(bias=1), "bias must be True or False, got 1"),
    (dict(verbose=-1), "verbose must be a non-negative integer or True or False, got -1"),
    (dict(contamination=0.7), r"contamination=0.7 is outside \(0, 0.5\]"),
    (dict(contamination=0.0), "contamination=0"),
    (dict(recon_norm="linear"), r"recon_norm must be one of \('log',\) or None, got 'linear'"),
    (dict(scaler="robust"), r"scaler must be one of \('minmax',\) or None, got 'robust'"),
    (dict(device="tpu"), "device='tpu' is not a torch device"),
], ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_bad_params_raise_at_fit(make_mnp, weak_data, params, match):
    model = make_mnp(**params)  # __init__ only stores
    for name, value in params.items():
        assert getattr(model, name) == value
    with pytest.raises(ValueError, match=match):
        model.fit(weak_data.X, weak_data.y)
    assert not hasattr(model, "n_features_in_")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_when_unavailable(make_mnp, weak_data, device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        make_mnp(device=device).fit(weak_data.X, weak_data.y)


def test_auto_device_on_cpu_machine(make_mnp, weak_data):
    model = make_mnp(device="auto").fit(weak_data.X, weak_data.y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.device_.type == expected
    assert model.device == "auto"  # the parameter is untouched


# ------------------------------------------------------- inputs left unchanged
def test_inputs_not_modified(make_mnp, weak_data):
    X, y = weak_data.X, weak_data.y
    X_copy, y_copy = X.copy(), y.copy()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df_copy = df.copy()
    model = make_mnp().fit(X, y)
    model.decision_function(X)
    model.predict(X, return_confidence=True)
    model.score_components(X)
    make_mnp().fit(df, y).decision_function(df)
    np.testing.assert_array_equal(X, X_copy)
    assert X.dtype == np.float64 and X.flags.writeable
    np.testing.assert_array_equal(y, y_copy)
    assert y.dtype == y_copy.dtype
    pd.testing.assert_frame_equal(df, df_copy)


def test_fit_does_not_keep_a_view_of_X(make_mnp, weak_data):
    X = weak_data.X.copy()
    model = make_mnp().fit(X, weak_data.y)
    before = model.decision_function(weak_data.X)
    X[:] = 0.0  # changing the caller's array later must not change the model
    np.testing.assert_array_equal(model.decision_function(weak_data.X), before)


# ------------------------------------------------------------ accepted inputs
def test_dataframe_float32_and_int_inputs(make_mnp, weak_data):
    X, y = weak_data.X, weak_data.y
    ref = make_mnp().fit(X.astype(np.float32), y)
    # the input scaling runs in float64, so float32 data is scored as float32 data (not as X)
    ref_scores = ref.decision_function(X.astype(np.float32))

    df = pd.DataFrame(X.astype(np.float32), columns=[f"f{i}" for i in range(X.shape[1])])
    from_df = make_mnp().fit(df, pd.Series(y))
    np.testing.assert_array_equal(from_df.decision_function(df), ref_scores)
    np.testing.assert_array_equal(from_df.feature_names_in_, df.columns.to_numpy())

    X_int = np.round(X * 10).astype(np.int64)
    model = make_mnp().fit(X_int, y.tolist())
    scores = model.decision_function(X_int)
    assert scores.shape == (len(X),) and scores.dtype == np.float64 and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores, model.decision_function(X_int.astype(np.float64)))


# ------------------------------------------------------------------- seeding
def test_same_seed_same_scores(make_mnp, weak_data):
    a = make_mnp(random_state=3).fit(weak_data.X, weak_data.y)
    b = make_mnp(random_state=3).fit(weak_data.X, weak_data.y)
    assert np.array_equal(a.decision_scores_, b.decision_scores_)
    assert np.array_equal(a.decision_function(weak_data.X), b.decision_function(weak_data.X))
    assert np.array_equal(a.prototypes_, b.prototypes_)
    pd.testing.assert_frame_equal(a.loss_history_, b.loss_history_)


def test_fit_order_does_not_matter(make_mnp, weak_data):
    X, y = weak_data.X, weak_data.y
    a1, b1 = make_mnp(random_state=1), make_mnp(random_state=2)
    a1.fit(X, y)
    b1.fit(X, y)
    a2, b2 = make_mnp(random_state=1), make_mnp(random_state=2)
    b2.fit(X, y)
    torch.manual_seed(1234)  # global seeding in between changes nothing either
    np.random.seed(1234)
    a2.fit(X, y)
    assert np.array_equal(a1.decision_function(X), a2.decision_function(X))
    assert np.array_equal(b1.decision_function(X), b2.decision_function(X))


def test_different_seed_different_scores(make_mnp, weak_data):
    a = make_mnp(random_state=1).fit(weak_data.X, weak_data.y)
    b = make_mnp(random_state=2).fit(weak_data.X, weak_data.y)
    assert not np.allclose(a.decision_scores_, b.decision_scores_)


def test_fit_leaves_global_rng_state_alone(make_mnp, weak_data):
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    model = make_mnp(n_prototypes="auto").fit(weak_data.X, weak_data.y)
    model.decision_function(weak_data.X)
    model.predict(weak_data.X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]
    assert random.getstate() == py_state
