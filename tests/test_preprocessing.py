"""The encoding a detector fits for tables with text columns (deepod_mnp.preprocessing), alone and in MNP."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP
from deepod_mnp.data import load_csv
from deepod_mnp.preprocessing import MISSING, TableEncoder, identifier_like


def _table(n_per_mode: int = 40, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Weakly labeled rows: numeric features, a text column with missing values, a coded category column."""
    data = make_weak_data(n_per_mode=n_per_mode, seed=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(data.X[:, :4], columns=["amount", "age", "balance", "score"])
    frame["city"] = rng.choice(np.array(["Lyon", "Oslo", "Rome", None], dtype=object), len(frame))
    frame["channel"] = pd.Categorical(rng.choice([1, 2, 3], len(frame)))
    return frame, data.y


@pytest.fixture(scope="module")
def table():
    return _table()


@pytest.fixture(scope="module")
def fitted(table):
    frame, y = table
    return MNP(**TINY_MNP).fit(frame, y)


# ------------------------------------------------------------------ the encoder alone
def test_numeric_columns_pass_through_and_text_columns_become_sorted_one_hot_blocks(table):
    frame, _ = table
    encoder = TableEncoder().fit(frame)
    out = encoder.transform(frame)
    assert encoder.numeric_ == ["amount", "age", "balance", "score"]
    assert encoder.text_ == ["city", "channel"]
    assert encoder.categories_ == [[MISSING, "Lyon", "Oslo", "Rome"], ["1", "2", "3"]]
    assert out.shape == (len(frame), 4 + 4 + 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, :4], frame[["amount", "age", "balance", "score"]].to_numpy())
    city = frame["city"].fillna(MISSING).to_numpy()
    for j, value in enumerate(encoder.categories_[0]):
        np.testing.assert_array_equal(out[:, 4 + j], (city == value).astype(float))
    assert np.all(out[:, 4:].reshape(len(frame), -1).sum(axis=1) == 2)  # one hot per text column
    assert list(encoder.get_feature_names_out()[4:8]) == [f"city={v}" for v in encoder.categories_[0]]


def test_unseen_category_is_all_zeros_and_missing_value_its_own_category(table):
    frame, _ = table
    encoder = TableEncoder().fit(frame)
    rows = frame.head(3).copy()
    rows["city"] = ["Atlantis", None, "Oslo"]
    out = encoder.transform(rows)
    city = out[:, 4:8]
    np.testing.assert_array_equal(city[0], [0, 0, 0, 0])  # unseen: no column, no error
    np.testing.assert_array_equal(city[1], [1, 0, 0, 0])  # missing -> '<missing>'
    np.testing.assert_array_equal(city[2], [0, 0, 1, 0])
    rows["city"] = [np.nan, np.nan, np.nan]  # a NaN as well as None is missing
    np.testing.assert_array_equal(encoder.transform(rows)[:, 4], [1, 1, 1])


def test_a_code_read_as_numbers_or_text_is_the_same_category(table):
    frame, _ = table
    encoder = TableEncoder().fit(frame)
    as_float = frame.head(5).assign(channel=frame["channel"].head(5).astype(float))
    as_text = frame.head(5).assign(channel=frame["channel"].head(5).astype(str))
    as_int = frame.head(5).assign(channel=frame["channel"].head(5).astype(int))
    expected = encoder.transform(frame.head(5))
    for variant in (as_float, as_text, as_int):
        np.testing.assert_array_equal(encoder.transform(variant), expected)


def test_columns_are_taken_by_name_and_a_missing_one_is_named(table):
    frame, _ = table
    encoder = TableEncoder().fit(frame)
    shuffled = frame[["channel", "score", "city", "balance", "age", "amount"]].assign(extra=1.0)
    np.testing.assert_array_equal(encoder.transform(shuffled), encoder.transform(frame))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['city'\]"):
        encoder.transform(frame.drop(columns="city"))
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        encoder.transform(frame.to_numpy())


def test_bad_tables_are_refused_with_the_column_named(table):
    frame, _ = table
    with pytest.raises(ValueError, match=r"numeric column\(s\) \['age'\] have missing values"):
        TableEncoder().fit(frame.assign(age=np.where(np.arange(len(frame)) == 3, np.nan, frame["age"])))
    with pytest.raises(ValueError, match=r"\['when'\] are neither numbers nor text"):
        TableEncoder().fit(frame.assign(when=pd.Timestamp("2024-01-01")))
    with pytest.raises(ValueError, match="every column name must be a string"):
        TableEncoder().fit(frame.set_axis(range(frame.shape[1]), axis=1))


def test_identifier_like_text_columns_are_named_and_warned_about():
    ids = pd.DataFrame({"id": [f"c{i}" for i in range(300)], "x": np.arange(300.0),
                        "city": ["a", "b", "c"] * 100})
    assert identifier_like(ids) == [("id", 300)]
    with pytest.warns(UserWarning, match="text column 'id' has 300 distinct values"):
        TableEncoder().fit(ids)


def test_state_is_plain_lists_that_torch_loads_with_weights_only_and_encodes_identically(table):
    frame, _ = table
    encoder = TableEncoder().fit(frame)
    buffer = io.BytesIO()
    torch.save(encoder.get_state(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = TableEncoder.from_state(state)
    rows = frame.assign(city=["Atlantis"] + list(frame["city"][1:]))
    np.testing.assert_array_equal(restored.transform(rows), encoder.transform(rows))
    assert list(restored.get_feature_names_out()) == list(encoder.get_feature_names_out())
    with pytest.raises(ValueError, match="not lists of column names"):
        TableEncoder.from_state({**state, "categories_": [["a"], 3]})


def test_encoding_equals_benchs_encoding_of_the_same_csv(tmp_path, table):
    """`bench` one-hot encodes a CSV with pandas (data.py); the model's encoder gives the same matrix."""
    frame, y = table
    path = tmp_path / "t.csv"
    frame.drop(columns="channel").assign(label=y).to_csv(path, index=False)
    X_bench, _, info = load_csv(path, "label")
    raw = pd.read_csv(path).drop(columns="label")
    encoder = TableEncoder().fit(raw)
    np.testing.assert_array_equal(encoder.transform(raw), X_bench)
    assert list(encoder.get_feature_names_out()) == info["feature_names"]


# ------------------------------------------------------------------ inside a detector
def test_detector_fitted_on_a_table_scores_raw_rows(fitted, table):
    frame, y = table
    assert fitted.n_features_in_ == 6 and list(fitted.feature_names_in_) == list(frame.columns)
    assert fitted.n_net_features_ == 11 == fitted.encoder_.n_features_out_
    expected = fitted._score(fitted.scaler_.transform(fitted.encoder_.transform(frame), np.float32))
    np.testing.assert_array_equal(fitted.decision_function(frame), expected)
    np.testing.assert_array_equal(fitted.decision_scores_, expected)
    new = frame.head(4).assign(city=["Atlantis", None, "Lyon", "Oslo"])
    assert np.isfinite(fitted.decision_function(new)).all()


def test_detector_checks_the_columns_as_scikit_learn_does(fitted, table):
    frame, _ = table
    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        fitted.decision_function(frame[list(frame.columns[::-1])])
    with pytest.raises(ValueError, match=r"fitted on a table with text column\(s\) \['city', 'channel'\]"):
        fitted.decision_function(frame.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same columns: no feature-name warning
        fitted.decision_function(frame)


def test_checkpoint_round_trip_is_bit_identical(fitted, table, tmp_path):
    frame, _ = table
    fitted.save_model(tmp_path / "m.pt")
    loaded = MNP.load_model(tmp_path / "m.pt")
    assert loaded.encoder_.get_state() == fitted.encoder_.get_state()
    new = frame.assign(city=["Atlantis"] * len(frame))
    np.testing.assert_array_equal(loaded.decision_function(new), fitted.decision_function(new))
    assert loaded.fit_info_ == fitted.fit_info_


def test_numeric_tables_get_no_encoder_and_the_scores_of_the_array(table):
    frame, y = table
    numeric = frame[["amount", "age", "balance", "score"]]
    from_frame = MNP(**TINY_MNP).fit(numeric, y)
    from_array = MNP(**TINY_MNP).fit(numeric.to_numpy(), y)
    assert from_frame.encoder_ is None and from_frame.n_net_features_ == 4
    np.testing.assert_array_equal(from_frame.decision_scores_, from_array.decision_scores_)
    np.testing.assert_array_equal(from_frame.decision_function(numeric),
                                  from_array.decision_function(numeric.to_numpy()))


def test_onnx_export_says_it_cannot_carry_the_encoding(fitted):
    from deepod_mnp.serving.onnx import score_module

    with pytest.raises(ValueError, match=r"encodes the text column\(s\) \['city', 'channel'\] itself"):
        score_module(fitted)
