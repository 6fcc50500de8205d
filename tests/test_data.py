"""Data loading: ADBench .npz files, CSVs with text columns, specs and shortcuts."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import deepod_mnp.data as data_module
from deepod_mnp.data import DATA_ENV, data_roots, describe, load_csv, load_dataset, load_npz, parse_csv_spec
from deepod_mnp.datasets import load_pendigits

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6],
        "color": ["red", "blue", "?", None, "red", "blue"],
        "size": [1.5, 2.0, 3.0, 4.0, 5.0, 6.0],
        "target": ["no", "yes", "no", "no", "yes", "no"],
    })


@pytest.fixture
def csv_path(tmp_path, frame) -> Path:
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    return path


def test_text_columns_are_one_hot_encoded(csv_path):
    X, y, info = load_csv(csv_path, "target", anomaly_values=["yes"], drop=["id"])
    assert y.tolist() == [0, 1, 0, 0, 1, 0]
    assert info["numeric"] == ["size"]
    assert info["one_hot"] == {"color": 4}  # red, blue, ?, missing
    assert info["n_features"] == 5 and X.shape == (6, 5) and X.dtype == np.float64
    names = info["feature_names"]
    assert names[0] == "size"
    assert sorted(names[1:]) == ["color=<missing>", "color=?", "color=blue", "color=red"]
    assert X[:, 0].tolist() == [1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
    onehot = pd.DataFrame(X[:, 1:], columns=names[1:])
    assert onehot.sum(axis=1).tolist() == [1.0] * 6
    assert onehot["color=?"].tolist() == [0, 0, 1, 0, 0, 0]
    assert onehot["color=<missing>"].tolist() == [0, 0, 0, 1, 0, 0]
    assert "one-hot encoded 1 column(s) (color:4)" in describe(info)


def test_missing_label_column_lists_the_columns(csv_path):
    with pytest.raises(ValueError, match=r"\['class'\] not found.*'id', 'color', 'size', 'target'"):
        load_csv(csv_path, "class")


def test_label_must_be_binary_without_anomaly_values(csv_path):
    with pytest.raises(ValueError, match="not 0/1.*anomaly"):
        load_csv(csv_path, "target")


def test_numeric_anomaly_values_and_onehot_of_numeric_codes(tmp_path):
    path = tmp_path / "codes.csv"
    pd.DataFrame({"code": [3, 5, 3, 7], "label": [2, 1, 1, 2]}).to_csv(path, index=False)
    X, y, info = load_csv(path, "label", anomaly_values=["2"], one_hot=["code"])
    assert y.tolist() == [1, 0, 0, 1]
    assert info["one_hot"] == {"code": 3} and X.shape == (4, 3)


def test_numeric_column_with_missing_values_is_an_error(tmp_path):
    path = tmp_path / "nan.csv"
    pd.DataFrame({"a": [1.0, np.nan, 2.0], "y": [0, 1, 0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"\['a'\] have missing values"):
        load_csv(path, "y")


def test_gzipped_csv_with_bom_matches_plain_csv(tmp_path, frame, csv_path):
    gz = tmp_path / "toy.csv.gz"
    frame.to_csv(gz, index=False, encoding="utf-8-sig", compression="gzip")
    plain = load_dataset(f"{csv_path}:label=target,drop=id,anomaly=yes")
    zipped = load_dataset(f"{gz}:label=target,drop=id,anomaly=yes")
    assert zipped.name == "toy" and zipped.info["feature_names"] == plain.info["feature_names"]
    assert np.array_equal(zipped.X, plain.X) and np.array_equal(zipped.y, plain.y)


def test_parse_csv_spec():
    assert parse_csv_spec("d/x.csv.gz:label=c,drop=a;b,anomaly=1;2") == {
        "path": "d/x.csv.gz", "label": "c", "drop": ["a", "b"], "anomaly_values": ["1", "2"]}
    with pytest.raises(ValueError, match="no label column"):
        parse_csv_spec("x.csv")
    with pytest.raises(ValueError, match="Bad option 'colour=red'"):
        parse_csv_spec("x.csv:label=c,colour=red")


def test_npz_relative_to_the_data_root(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.savez(tmp_path / "7_toy.npz", X=X, y=np.array([0, 0, 1, 0, 1, 0]))
    data = load_dataset("7_toy.npz", root=tmp_path)
    assert data.name == "7_toy" and data.X.dtype == np.float64 and np.array_equal(data.X, X)
    assert data.y.tolist() == [0, 0, 1, 0, 1, 0]
    assert load_npz(tmp_path / "7_toy.npz")[1].dtype == np.int64


def test_unknown_spec_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="neither a .npz path"):
        load_dataset("mystery", root=tmp_path)
    # the message says where it looked and where the file comes from
    with pytest.raises(FileNotFoundError, match=r"looked for .*fraud_oracle\.csv.*Kaggle.*save it as "
                       + re.escape(str(tmp_path / "raw" / "fraud_oracle.csv"))):
        load_dataset("vehicle_insurance", root=tmp_path)


def test_without_a_data_root_the_error_says_how_to_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setattr(data_module, "_CHECKOUT", tmp_path)  # not a checkout: no default root
    monkeypatch.chdir(tmp_path)
    assert data_roots() == []
    with pytest.raises(FileNotFoundError, match=r"ADBench.*--data-root DIR \(or set \$" + DATA_ENV):
        load_dataset("gamma")
    with pytest.raises(FileNotFoundError, match="No data root is set"):
        load_dataset("somewhere/mine.npz")


def test_shortcuts_resolve_from_any_directory(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (root / "adbench").mkdir(parents=True)
    elsewhere.mkdir()
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    np.savez(root / "adbench" / "6_cardio.npz", X=X, y=np.r_[np.zeros(8), np.ones(2)].astype(int))
    np.savez(root / "29_Pima.npz", X=X, y=np.r_[np.zeros(9), np.ones(1)].astype(int))  # flat layout
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(DATA_ENV, str(root))
    cardio = load_dataset("cardio")
    assert cardio.name == "cardio" and np.array_equal(cardio.X, X) and cardio.y.sum() == 2
    assert cardio.info["source"] == str(root / "adbench" / "6_cardio.npz")
    assert load_dataset("pima").info["source"] == str(root / "29_Pima.npz")
    # an explicit root wins over the environment variable
    with pytest.raises(FileNotFoundError):
        load_dataset("cardio", root=elsewhere)


def test_a_csv_gz_shortcut_also_finds_the_unzipped_csv(tmp_path, frame):
    (tmp_path / "raw").mkdir()
    frame.rename(columns={"target": "class"}).assign(**{"class": [0, 1, 0, 0, 1, 0]}).to_csv(
        tmp_path / "raw" / "UNSW_NB15_traintest_backdoor.csv", index=False)
    data = load_dataset("backdoor", root=tmp_path)
    assert data.name == "backdoor" and data.y.tolist() == [0, 1, 0, 0, 1, 0]
    assert data.info["source"].endswith("UNSW_NB15_traintest_backdoor.csv")


def test_pendigits_falls_back_to_the_bundled_copy(tmp_path):
    data = load_dataset("pendigits", root=tmp_path)  # tmp_path has no adbench/28_pendigits.npz
    X, y = load_pendigits()
    assert data.name == "pendigits" and data.X.shape == (6_870, 16) and int(data.y.sum()) == 156
    assert np.array_equal(data.X, X) and np.array_equal(data.y, y)
    assert "bundled" in data.info["source"]
    # a copy under the data root is preferred
    (tmp_path / "adbench").mkdir()
    np.savez(tmp_path / "adbench" / "28_pendigits.npz", X=X[:100], y=y[:100])
    assert load_dataset("pendigits", root=tmp_path).X.shape == (100, 16)


@pytest.mark.skipif(not (SHARED_DATA / "raw" / "fraud_oracle.csv").exists(), reason="shared data not found")
def test_vehicle_insurance_loads_as_in_the_paper():
    data = load_dataset("vehicle_insurance", root=SHARED_DATA)
    assert data.X.shape == (15_420, 147)
    assert int(data.y.sum()) == 923
    assert len(data.info["one_hot"]) == 24 and len(data.info["numeric"]) == 7
    assert "PolicyNumber" not in data.info["feature_names"]
