"""Streaming scoring (``deepod-mnp score``): Parquet/CSV in chunks, the same scores as in memory."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP
from deepod_mnp.cli import main

pa = pytest.importorskip("pyarrow", reason="pyarrow (a dependency of deepod-mnp) is missing")
pq = pytest.importorskip("pyarrow.parquet")

from deepod_mnp.serving.stream import COMPONENT_COLUMNS, score_table  # noqa: E402

FEATURES = [f"x{i}" for i in range(5)]


@pytest.fixture(scope="module")
def fitted():
    data = make_weak_data(n_per_mode=100, n_features=len(FEATURES), seed=5)
    return MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)


@pytest.fixture(scope="module")
def table():
    """Rows to score: the feature columns in another order, an id and a column the model never saw."""
    rng = np.random.default_rng(11)
    n = 2_345
    df = pd.DataFrame(rng.normal(0, 3, size=(n, len(FEATURES))), columns=FEATURES)
    df["id"] = np.arange(n) * 10
    df["other"] = rng.random(n)
    return df[["other", "x3", "id", "x0", "x4", "x1", "x2"]]


def _parquet_dir(df: pd.DataFrame, path, parts: int = 3):
    path.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), parts)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"part-{i}.parquet",
                       row_group_size=300)
    return path


def test_parquet_directory_scores_equal_in_memory(fitted, table, tmp_path):
    src = _parquet_dir(table, tmp_path / "in")
    out = tmp_path / "scores.parquet"
    summary = score_table(fitted, src, out, label=True, explain=True, keep=["id"], chunk_rows=1_000,
                          progress=False)
    assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (len(table), len(table), 0)
    result = pq.read_table(out).to_pandas()
    assert list(result.columns) == ["id", "score", "label", *COMPONENT_COLUMNS]
    np.testing.assert_array_equal(result["id"], table["id"])  # input order kept
    expected = fitted.decision_function(table[FEATURES])
    np.testing.assert_allclose(result["score"], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result["label"], fitted.predict(table[FEATURES]))
    comp = fitted.score_components(table[FEATURES])
    for c in COMPONENT_COLUMNS:
        np.testing.assert_allclose(result[c], comp[c], rtol=1e-6, atol=1e-6, err_msg=c)
    # bounded chunks: one row group of at most chunk_rows rows per chunk
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 345]


def test_csv_input_and_the_cli(fitted, table, tmp_path):
    csv = tmp_path / "rows.csv"
    table.to_csv(csv, index=False)
    ckpt = tmp_path / "mnp.pt"
    fitted.save_model(ckpt)
    out = tmp_path / "out" / "scores.parquet"
    assert main(["score", "--model", str(ckpt), "--data", str(csv), "--out", str(out), "--label",
                 "--keep", "id", "--chunk-rows", "500", "--no-progress"]) == 0
    result = pq.read_table(out).to_pandas()
    assert list(result.columns) == ["id", "score", "label"]
    np.testing.assert_allclose(result["score"], fitted.decision_function(table[FEATURES]), rtol=0, atol=1e-6)
    assert pq.ParquetFile(out).metadata.num_row_groups == 5


def test_onnx_model_streams_too(fitted, table, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from deepod_mnp.serving.onnx import export_onnx

    path = export_onnx(fitted, tmp_path / "mnp.onnx")
    src = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), src)
    out = tmp_path / "scores.parquet"
    assert main(["score", "--model", str(path), "--data", str(src), "--out", str(out), "--label",
                 "--no-progress"]) == 0
    result = pq.read_table(out).to_pandas()
    np.testing.assert_allclose(result["score"], fitted.decision_function(table[FEATURES]), rtol=0, atol=1e-5)


def test_missing_feature_column_is_named(fitted, table, tmp_path):
    src = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(table.drop(columns=["x4"]), preserve_index=False), src)
    with pytest.raises(ValueError, match=r"lacks 1 of the model's feature column\(s\): \['x4'\]"):
        score_table(fitted, src, tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet").exists()


def test_model_without_feature_names_needs_exactly_its_columns(table, tmp_path):
    data = make_weak_data(n_per_mode=60, n_features=len(FEATURES), seed=2)
    model = MNP(**TINY_MNP).fit(data.X, data.y)  # an array: no feature_names_in_
    src = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(table[["id", *FEATURES]], preserve_index=False), src)
    out = tmp_path / "o.parquet"
    score_table(model, src, out, keep=["id"], progress=False)
    expected = model.decision_function(table[FEATURES].to_numpy())
    np.testing.assert_allclose(pq.read_table(out)["score"].to_numpy(), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="fitted without feature names on 5 columns"):
        score_table(model, src, out, progress=False)  # 'id' would be a sixth feature


def test_reads_never_hold_a_whole_row_group(fitted, tmp_path):
    """A file written as one 1,000,000-row group (40 MB of feature values) is read in record batches of the
    chunk's size: Arrow's peak allocation stays far below the row group (reading whole row groups, as
    before, peaked above it)."""
    rng = np.random.default_rng(3)
    n = 1_000_000
    df = pd.DataFrame(rng.normal(0, 3, size=(n, len(FEATURES))).astype(np.float64), columns=FEATURES)
    df["id"] = np.arange(n)
    src = tmp_path / "one-group.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), src, row_group_size=n)
    assert pq.ParquetFile(src).metadata.num_row_groups == 1
    group_bytes = n * len(FEATURES) * 8  # the features alone
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        summary = score_table(fitted, src, tmp_path / "o.parquet", keep=["id"], chunk_rows=16_384,
                              progress=False)
    finally:
        pa.set_memory_pool(previous)
    assert summary.rows_scored == n
    assert pool.max_memory() < group_bytes / 4, (pool.max_memory(), group_bytes)
