"""A user's whole path on the command line: a CSV with a label and text columns -> fit -> info -> score.

The scores ``score`` writes are the Python API's ``decision_function`` of the
same raw rows; the held-out metrics ``fit --holdout`` prints are those of the
saved model on the rows it held out; the model ``fit`` saves is the one the
Python API fits on the same rows with the same parameters.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from test_preprocessing import _table

import deepod_mnp
from deepod_mnp import MNP
from deepod_mnp.cli import main

pytest.importorskip("pyarrow")  # `score` streams through pyarrow (the 'parquet' extra, in 'dev')

PARAMS = {k: v for k, v in TINY_MNP.items() if k not in ("device", "random_state")}
SEED = 7


def _csv(tmp_path, frame: pd.DataFrame, y: np.ndarray, name: str = "claims.csv"):
    table = frame.assign(claim_id=[f"C{i:05d}" for i in range(len(frame))], is_fraud=y)
    table = table[["claim_id", *frame.columns, "is_fraud"]]
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path, table


def _fit(path, out, *extra, params=PARAMS) -> list[str]:
    return ["fit", "--data", f"{path}:label=is_fraud,drop=claim_id,onehot=channel", "--out", str(out),
            "--params", json.dumps(params), "--seed", str(SEED), "--device", "cpu", "--no-progress", *extra]


@pytest.fixture(scope="module")
def user_path(tmp_path_factory):
    """fit --holdout on the CSV, then info and score on new raw rows; everything printed, kept."""
    tmp = tmp_path_factory.mktemp("user")
    frame, y = _table(n_per_mode=60)
    path, table = _csv(tmp, frame, y)
    model_path = tmp / "models" / "claims.pt"
    return tmp, path, table, model_path


def test_fit_with_holdout_prints_the_saved_models_metrics(user_path, capsys):
    tmp, path, table, model_path = user_path
    assert main(_fit(path, model_path, "--holdout", "0.3")) == 0
    out = capsys.readouterr().out
    n, n_anomalies = len(table), int(table["is_fraud"].sum())
    assert n == 192 and n_anomalies == 4  # 3 modes of 60 unlabeled rows, 12 planted anomalies, 4 labeled
    assert "claims: 192 rows x 6 columns, 4 labeled anomalies (2.08%) in label column 'is_fraud'" in out
    assert "Text columns the model will one-hot encode (categories): city (4), channel (3)" in out
    model = deepod_mnp.load_model(model_path)
    # the split fit made: stratified by the label, seeded, 30% held out
    y = table["is_fraud"].to_numpy()
    rows, held = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED)
    held = np.sort(held)
    X = table.drop(columns=["claim_id", "is_fraud"])
    scores = model.decision_function(X.iloc[held])
    pr, roc = average_precision_score(y[held], scores), roc_auc_score(y[held], scores)
    printed = re.search(r"Held-out (\d+) rows: AUC-PR (\d\.\d+) .*AUC-ROC (\d\.\d+)", out)
    assert printed and int(printed[1]) == len(held) == 58
    assert float(printed[2]) == pytest.approx(pr, abs=5e-5)
    assert float(printed[3]) == pytest.approx(roc, abs=5e-5)
    assert model.fit_info_["holdout"] == {"fraction": 0.3, "rows": 58,
                                          "labeled_anomalies": int(y[held].sum()), "auc_pr": pr,
                                          "auc_roc": roc, "truth": "the file's label column"}
    assert "use the file's labels as the truth" in out
    # the saved model is the Python API's fit on the other rows, same parameters and seed
    python = MNP(**PARAMS, device="cpu", random_state=SEED).fit(X.iloc[np.sort(rows)], y[np.sort(rows)])
    np.testing.assert_array_equal(model.decision_scores_, python.decision_scores_)
    assert model.fit_info_["n_samples"] == 134 and model.get_params()["verbose"] == 0


def test_info_prints_the_card(user_path, capsys):
    tmp, path, table, model_path = user_path
    assert main(["info", str(model_path)]) == 0
    text = capsys.readouterr().out
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert f"sha256 {digest}" in text
    assert "134 rows, " in text and "6 columns: amount, age, balance, score, city, channel" in text
    assert "city (4): <missing>, Lyon, Oslo, Rome" in text and "channel (3): 1, 2, 3" in text
    assert main(["info", str(model_path), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["file"]["sha256"] == digest and card["training"]["holdout"]["rows"] == 58
    assert card == json.loads(json.dumps(deepod_mnp.model_card(model_path)))


def test_score_takes_new_raw_rows_with_an_unseen_category(user_path, capsys):
    tmp, path, table, model_path = user_path
    new = table.drop(columns="is_fraud").sample(25, random_state=1).reset_index(drop=True)
    new.loc[0, "city"] = "Atlantis"  # never seen in fit
    new.loc[1, "city"] = None
    new_path = tmp / "new_claims.csv"
    new.to_csv(new_path, index=False)
    out = tmp / "scores.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning, no unseen-category warning
        assert main(["score", "--model", str(model_path), "--data", str(new_path), "--out", str(out),
                     "--label", "--keep", "claim_id", "--no-progress"]) == 0
    scored = pd.read_parquet(out)
    model = deepod_mnp.load_model(model_path)
    raw = pd.read_csv(new_path)
    expected = model.decision_function(raw.drop(columns="claim_id"))
    np.testing.assert_array_equal(scored["score"].to_numpy(), expected)
    np.testing.assert_array_equal(scored["label"].to_numpy(), (expected > model.threshold_).astype(int))
    assert list(scored["claim_id"]) == list(new["claim_id"])
    encoded = model.encoder_.transform(raw.drop(columns="claim_id").head(2))
    np.testing.assert_array_equal(encoded[0, 4:8], 0)  # the unseen city: all zeros
    np.testing.assert_array_equal(encoded[1, 4:8], [1, 0, 0, 0])  # missing: '<missing>'


# ------------------------------------------------------------------ one-line errors
def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("deepod-mnp fit: error: ")
    return err


def test_bad_label_column(tmp_path, capsys):
    frame, y = _table()
    path, _ = _csv(tmp_path, frame, y)
    err = _error(capsys, ["fit", "--data", f"{path}:label=fraud", "--out", str(tmp_path / "m.pt")])
    assert "column(s) ['fraud'] not found; the columns are ['claim_id', 'amount'" in err
    err = _error(capsys, ["fit", "--data", f"{path}:label=city", "--out", str(tmp_path / "m.pt")])
    assert "Label column 'city' is not 0/1" in err and "anomaly=VALUE" in err
    assert not (tmp_path / "m.pt").exists()


def test_identifier_text_column_must_be_dropped(tmp_path, capsys):
    frame, y = _table(n_per_mode=60)
    path, _ = _csv(tmp_path, frame, y)
    err = _error(capsys, ["fit", "--data", f"{path}:label=is_fraud", "--out", str(tmp_path / "m.pt")])
    assert "text column 'claim_id' has 192 distinct values in 192 rows" in err and ",drop=claim_id" in err


def test_no_labeled_anomaly_is_an_error_for_mnp_and_a_warning_for_the_selector(tmp_path, capsys):
    frame, y = _table()
    path, _ = _csv(tmp_path, frame, np.zeros_like(y))
    err = _error(capsys, _fit(path, tmp_path / "m.pt"))
    assert "MNP needs at least one labeled anomaly" in err and "SelectByLabels" in err
    assert main(_fit(path, tmp_path / "s.pt", "--model", "SelectByLabels", params={})) == 0
    captured = capsys.readouterr()
    assert "0 labeled anomalies" in captured.out
    assert "y labels no anomaly: SelectByLabels cannot rank its candidates and fits IForest" in captured.err
    selector = deepod_mnp.load_model(tmp_path / "s.pt")
    assert selector.best_candidate_ == "IForest" and selector.fit_info_["n_labeled_anomalies"] == 0
    err = _error(capsys, _fit(path, tmp_path / "a.pt", "--model", "DevNetAnoOnly", params={"epochs": 1}))
    assert "needs at least one labeled anomaly" in err
    err = _error(capsys, _fit(path, tmp_path / "h.pt", "--holdout", "0.2"))
    assert "--holdout needs at least 2 labeled anomalies" in err


def test_peers_are_refused_naming_what_fit_saves(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--data", "x.csv:label=y", "--out", str(tmp_path / "m.pt"), "--model", "DevNet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "DevNet is a benchmark peer that deepod-mnp cannot save safely" in err
    assert "'fit' saves MNP, SelectByLabels, DevNetAnoOnly, DeepSADAnoOnly, DevNetBN, DeepSADBN" in err


def test_fit_params_for_another_model_and_an_out_directory_are_usage_errors(tmp_path, capsys):
    frame, y = _table()
    path, _ = _csv(tmp_path, frame, y)
    err = _error(capsys, ["fit", "--data", f"{path}:label=is_fraud", "--out", str(tmp_path)])
    assert "is a directory; give the checkpoint's file name" in err
    err = _error(capsys, ["fit", "--data", f"{path}:label=is_fraud,drop=claim_id", "--out",
                          str(tmp_path / "m.pt"), "--params", '{"DevNet": {"epochs": 1}}'])
    assert "--params are for DevNet, but --model is MNP" in err
