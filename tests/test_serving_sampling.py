"""Fit from Parquet by sampling: every labeled anomaly, a uniform sample of the unlabeled rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP

from deepod_mnp import MNP

pa = pytest.importorskip("pyarrow", reason="pyarrow (a dependency of deepod-mnp) is missing")
pq = pytest.importorskip("pyarrow.parquet")

from deepod_mnp.serving.sampling import fit_parquet, sample_parquet  # noqa: E402


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """20,000 rows in 3 files; column ``row`` identifies each row; 40 labeled anomalies."""
    rng = np.random.default_rng(0)
    n = 20_000
    df = pd.DataFrame({"row": np.arange(n, dtype=float), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["label"] = 0
    df.loc[rng.choice(n, 40, replace=False), "label"] = 1
    path = tmp_path_factory.mktemp("sample") / "table"
    path.mkdir()
    for i, part in enumerate(np.array_split(np.arange(n), 3)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"p{i}.parquet",
                       row_group_size=1_500)
    return path, df


def test_sample_keeps_every_anomaly_and_a_uniform_sample(table):
    path, df = table
    X, y = sample_parquet(path, label_column="label", n_unlabeled=2_000, random_state=1, batch_rows=4_096)
    assert list(X.columns) == ["row", "a", "b"] and len(X) == len(y) == 2_040
    anomalies = set(df.loc[df["label"] == 1, "row"])
    assert set(X.loc[y == 1, "row"]) == anomalies
    sampled = X.loc[y == 0, "row"].to_numpy()
    assert len(set(sampled)) == 2_000 and not set(sampled) & anomalies
    assert np.all(np.diff(sampled) > 0)  # table order
    pd.testing.assert_frame_equal(X.set_index("row"), df.set_index("row").loc[X["row"], ["a", "b"]])
    # uniform over the table: each tenth of the rows holds about a tenth of the sample
    counts = np.histogram(sampled, bins=10, range=(0, len(df)))[0]
    assert counts.min() > 150 and counts.max() < 250  # expected 200, sd about 13
    other, _ = sample_parquet(path, label_column="label", n_unlabeled=2_000, random_state=2)
    assert len(set(other["row"]) & set(sampled)) < 600  # another seed, another sample (expected 200)


def test_same_seed_and_batching_give_the_same_sample(table):
    path, _ = table
    a, _ = sample_parquet(path, label_column="label", n_unlabeled=500, random_state=3, batch_rows=2_048)
    b, _ = sample_parquet(path, label_column="label", n_unlabeled=500, random_state=3, batch_rows=2_048)
    pd.testing.assert_frame_equal(a, b)


def test_small_table_is_kept_whole_and_bad_labels_are_refused(table, tmp_path):
    path, df = table
    X, y = sample_parquet(path, label_column="label", n_unlabeled=10**6, feature_columns=["a"])
    assert list(X.columns) == ["a"] and len(X) == len(df) and y.sum() == 40
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"a": [0.0, 1.0], "label": [0, 2]}), bad)
    with pytest.raises(ValueError, match="must hold 0"):
        sample_parquet(bad, label_column="label", n_unlabeled=5)
    with pytest.raises(ValueError, match="label column 'y' is not in the table"):
        sample_parquet(bad, label_column="y", n_unlabeled=5)


def test_fit_parquet_fits_on_the_sample(table):
    path, _ = table
    model = fit_parquet(MNP(**TINY_MNP), path, label_column="label", n_unlabeled=1_000,
                        feature_columns=["a", "b"])
    assert list(model.feature_names_in_) == ["a", "b"] and len(model.decision_scores_) == 1_040
