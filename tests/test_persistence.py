"""MNP.save_model / MNP.load_model."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pytest
import torch

from deepod_mnp import MNP


@pytest.fixture
def saved(fitted_mnp, tmp_path):
    model, data = fitted_mnp
    path = tmp_path / "mnp.pt"
    model.save_model(path)
    return model, data, path


def test_round_trip_gives_identical_detector(saved):
    model, data, path = saved
    loaded = MNP.load_model(path)
    assert isinstance(loaded, MNP)
    np.testing.assert_array_equal(loaded.decision_function(data.X), model.decision_function(data.X))
    np.testing.assert_array_equal(loaded.decision_scores_, model.decision_scores_)
    np.testing.assert_array_equal(loaded.prototypes_, model.prototypes_)
    assert loaded.n_prototypes_ == model.n_prototypes_ == 2
    assert loaded.epoch_steps_ == model.epoch_steps_
    assert loaded.threshold_ == model.threshold_
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    assert loaded.n_features_in_ == model.n_features_in_
    assert loaded.silhouette_scores_ == model.silhouette_scores_
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.loss_history_, model.loss_history_)
    assert len(loaded.loss_history_) == model.epochs * model.n_ensemble


def test_loaded_model_predicts_and_explains_like_the_original(saved):
    model, data, path = saved
    loaded = MNP.load_model(path)
    X = data.X[:40]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    lab_l, conf_l = loaded.predict(X, return_confidence=True)
    lab_m, conf_m = model.predict(X, return_confidence=True)
    np.testing.assert_array_equal(lab_l, lab_m)
    np.testing.assert_allclose(conf_l, conf_m)
    pd.testing.assert_frame_equal(loaded.score_components(X), model.score_components(X))
    s_l, z_l = loaded.decision_function(X, return_rep=True)
    s_m, z_m = model.decision_function(X, return_rep=True)
    np.testing.assert_array_equal(z_l, z_m)
    with pytest.raises(ValueError, match="features"):
        loaded.decision_function(X[:, :3])


def test_load_onto_cpu(saved):
    _, data, path = saved
    loaded = MNP.load_model(path, device="cpu")
    assert loaded.device == "cpu"
    assert loaded.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in loaded.net.parameters())
    assert loaded.decision_function(data.X[:5]).shape == (5,)


def test_auto_prototypes_round_trip(make_mnp, weak_data, tmp_path):
    model = make_mnp(n_prototypes="auto").fit(weak_data.X, weak_data.y)
    model.save_model(tmp_path / "auto.pt")
    loaded = MNP.load_model(tmp_path / "auto.pt")
    assert loaded.n_prototypes == "auto"
    assert loaded.n_prototypes_ == model.n_prototypes_ >= 2
    assert loaded.silhouette_scores_ == model.silhouette_scores_ and loaded.silhouette_scores_
    np.testing.assert_array_equal(loaded.decision_function(weak_data.X), model.decision_function(weak_data.X))


def test_checkpoint_is_loadable_with_weights_only(saved):
    _, _, path = saved
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["format"] == "MNP/2" and set(state) == {"format", "sha256", "payload"}
    payload = state["payload"].numpy().tobytes()
    contents = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    assert contents["format"] == "MNP/2" and hashlib.sha256(payload).hexdigest() == state["sha256"]


def test_loaded_model_can_be_refitted(saved):
    model, data, path = saved
    loaded = MNP.load_model(path)
    loaded.fit(data.X, data.y)  # same params and seed -> same detector
    np.testing.assert_array_equal(loaded.decision_scores_, model.decision_scores_)


@pytest.mark.parametrize("payload", [
    {"state_dict": {"w": torch.zeros(2)}},
    {"format": "something-else/1"},
    torch.zeros(3),
    [1, 2, 3],
], ids=["plain-dict", "other-format", "tensor", "list"])
def test_load_non_mnp_torch_file_raises_value_error(tmp_path, payload):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="not a valid deepod-mnp MNP checkpoint"):
        MNP.load_model(path)


def test_load_state_dict_of_another_model_raises_value_error(tmp_path):
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ValueError, match="not a valid deepod-mnp MNP checkpoint"):
        MNP.load_model(path)


@pytest.mark.parametrize("kind", ["text", "npy"])
def test_load_non_torch_file_raises_value_error(tmp_path, kind):
    """A file that is not a torch checkpoint at all is also "not a valid deepod-mnp MNP checkpoint".

    BUG: ``torch.load`` errors leak out unexplained: a text file gives ``KeyError``
    (e.g. ``KeyError: 101``) and a NumPy ``.npy`` file gives ``UnpicklingError`` with
    advice about ``weights_only`` that does not apply.
    """
    path = tmp_path / f"data.{kind}"
    if kind == "text":
        path.write_text("hello, this is not a model\n")
    else:
        np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="not a valid deepod-mnp MNP checkpoint"):
        MNP.load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        MNP.load_model(tmp_path / "missing.pt")


def test_round_trip_keeps_feature_names(make_mnp, weak_data, tmp_path):
    """Fitted state set by ``fit`` from a DataFrame survives a round trip.

    BUG: ``save_model`` does not store ``feature_names_in_``, so a detector fitted on a
    DataFrame loses it when loaded.
    """
    df = pd.DataFrame(weak_data.X, columns=[f"f{i}" for i in range(weak_data.X.shape[1])])
    model = make_mnp().fit(df, weak_data.y)
    model.save_model(tmp_path / "df.pt")
    loaded = MNP.load_model(tmp_path / "df.pt")
    np.testing.assert_array_equal(loaded.decision_function(df), model.decision_function(df))
    np.testing.assert_array_equal(getattr(loaded, "feature_names_in_", None), model.feature_names_in_)
