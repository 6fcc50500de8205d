"""What a fitted detector records about its fit (fit_info_), the model card, and fit's torch thread count."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import TINY_MNP
from test_preprocessing import _table

import deepod_mnp
from deepod_mnp import MNP, DevNetAnoOnly, format_card, model_card


@pytest.fixture(scope="module")
def fitted():
    frame, y = _table()
    return MNP(**TINY_MNP).fit(frame, y), frame, y


def test_card_of_a_fitted_detector(fitted):
    model, frame, y = fitted
    card = model_card(model)
    json.dumps(card)  # JSON's types only
    assert card["detector"] == "MNP" and card["module"] == "deepod_mnp.models.mnp"
    assert card["parameters"] == json.loads(json.dumps(model.get_params()))
    train = card["training"]
    assert train["rows"] == len(frame) and train["labeled_anomalies"] == int(y.sum())
    assert train["device"] == "cpu" and train["fit_seconds"] > 0 and train["torch_threads"] == 1
    assert card["input"]["columns"] == list(frame.columns) and card["input"]["n_columns"] == 6
    assert card["input"]["n_network_features"] == model.encoder_.n_features_out_ == 11
    assert card["input"]["encoding"]["text_columns"] == {"city": ["<missing>", "Lyon", "Oslo", "Rome"],
                                                        "channel": ["1", "2", "3"]}
    assert card["input"]["scaling"] == "minmax"
    above = float(np.mean(model.decision_scores_ > model.threshold_))
    assert card["threshold"] == {"threshold": model.threshold_, "contamination": 0.1,
                                 "training_rows_above": above}
    assert card["versions"]["torch"] == torch.__version__
    assert card["versions"]["deepod-mnp"] == deepod_mnp.__version__
    assert card["file"] is None
    details = card["details"]["MNP"]
    assert details["members"] == 3 and details["prototypes_per_member"] == model.n_prototypes_ == 2
    assert details["epoch_steps"] == model.epoch_steps_


def test_card_of_a_checkpoint_names_the_file_and_its_sha256(fitted, tmp_path):
    model, _, _ = fitted
    path = tmp_path / "model.pt"
    model.save_model(path)
    card = model_card(path)
    assert card["file"] == {"path": str(path), "bytes": path.stat().st_size,
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert {k: v for k, v in card.items() if k != "file"} == {k: v for k, v in model_card(model).items()
                                                              if k != "file"}
    text = format_card(card)
    assert f"sha256 {card['file']['sha256']}" in text
    assert "city (4): <missing>, Lyon, Oslo, Rome" in text
    n_labeled = card["training"]["labeled_anomalies"]
    assert f"{len(model.decision_scores_):,} rows, {n_labeled} labeled anomalies" in text


def test_a_detector_adds_its_own_section(fitted):
    """The hook a selecting detector uses: card_sections() returns {title: {key: value}}."""
    model, _, _ = fitted

    class Selecting(MNP):
        def card_sections(self):
            return {**super().card_sections(), "Selection": {"candidates": ["MNP", "DevNetAnoOnly"],
                                                              "fold_auc_pr": {"MNP": [0.8, 0.7]}}}

    selecting = Selecting(**TINY_MNP)
    selecting.__dict__.update({k: v for k, v in vars(model).items() if k.endswith("_")})
    card = model_card(selecting)
    assert card["details"]["Selection"]["fold_auc_pr"] == {"MNP": [0.8, 0.7]}
    assert "MNP" in card["details"]
    assert "    fold_auc_pr            MNP: 0.8, 0.7" in format_card(card)


def test_unrecorded_fits_say_so(fitted):
    model, _, _ = fitted
    card = model_card(model)
    card["training"] = dict.fromkeys(card["training"])
    card["versions"] = None
    text = format_card(card)
    assert "training     not recorded" in text and "versions     not recorded" in text


def test_card_of_an_unfitted_detector_is_an_error():
    with pytest.raises(ValueError, match="MNP is not fitted"):
        model_card(MNP())


# ------------------------------------------------------------------ fit's thread count
@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_fit_trains_on_one_thread_and_restores_the_count(two_threads, weak_data, monkeypatch):
    monkeypatch.delenv("DEEPOD_MNP_FIT_THREADS", raising=False)
    model = MNP(**TINY_MNP).fit(weak_data.X, weak_data.y)
    assert model.fit_info_["torch_threads"] == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("setting, expected", [("2", 2), ("torch", 2), ("1", 1)])
def test_the_environment_variable_sets_the_fit_threads(two_threads, weak_data, monkeypatch, setting,
                                                       expected):
    monkeypatch.setenv("DEEPOD_MNP_FIT_THREADS", setting)
    model = DevNetAnoOnly(epochs=1, epoch_steps=2, device="cpu").fit(weak_data.X, weak_data.y)
    assert model.fit_info_["torch_threads"] == expected
    assert torch.get_num_threads() == 2


def test_a_failed_fit_restores_the_thread_count(two_threads, weak_data, monkeypatch):
    monkeypatch.setenv("DEEPOD_MNP_FIT_THREADS", "1")
    with pytest.raises(RuntimeError, match="diverged"):
        MNP(**{**TINY_MNP, "lr": 1e30}).fit(weak_data.X * 1e20, weak_data.y)
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("DEEPOD_MNP_FIT_THREADS", "many")
    with pytest.raises(ValueError, match="DEEPOD_MNP_FIT_THREADS must be a positive integer or 'torch'"):
        MNP(**TINY_MNP).fit(weak_data.X, weak_data.y)
    assert torch.get_num_threads() == 2
