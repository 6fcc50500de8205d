"""Scoring a Dask DataFrame on a real distributed.LocalCluster: the model shipped once per worker per call
and dropped with the result, bad rows under the same policies as ``deepod-mnp score``.

The workers are threads of this process (processes=False keeps the test fast); the model is still
scattered to each worker as on a cluster of processes.
"""
from __future__ import annotations

import gc
import time

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP

dd = pytest.importorskip("dask.dataframe", reason="the 'dask' extra is missing")
distributed = pytest.importorskip("distributed", reason="the 'dask' extra (distributed) is missing")

from deepod_mnp.serving.dask import score_dask  # noqa: E402

FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def model():
    data = make_weak_data(n_per_mode=80, n_features=len(FEATURES), seed=9)
    return MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def _rows(n: int = 3_001) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    df = pd.DataFrame(rng.normal(0, 3, size=(n, 4)), columns=FEATURES[::-1])  # other column order
    df["id"] = np.arange(len(df))
    return df


def _held(client) -> dict:
    """What the workers hold: their data keys and plugins."""
    return client.run(lambda dask_worker: (sorted(map(str, dask_worker.data.keys())),
                                           sorted(dask_worker.plugins)))


def _settle(client, baseline, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while _held(client) != baseline and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    return _held(client)


def test_score_dask_dataframe_on_local_cluster(model, client):
    df = _rows()
    baseline = _held(client)
    for _ in range(3):  # a long-lived cluster: every call leaves nothing behind once its result is gone
        lazy = score_dask(model, dd.from_pandas(df, npartitions=8), client=client, label=True, keep=["id"],
                          torch_threads=1)
        assert lazy.npartitions == 8 and list(lazy.columns) == ["id", "score", "label"]
        held = _held(client)
        assert all(len(keys) == len(baseline[w][0]) + 1 for w, (keys, _) in held.items())  # one copy each
        result = lazy.compute()
        del lazy
        assert _settle(client, baseline) == baseline
    result = result.sort_values("id")
    np.testing.assert_array_equal(result["id"], df["id"])
    expected = model.decision_function(df[FEATURES])
    np.testing.assert_allclose(result["score"], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result["label"], (result["score"] > model.threshold_).astype(np.int8))


def test_bad_rows_follow_the_policy(model, client):
    df = _rows(1_000)
    df["b"] = df["b"].astype(object)
    bad = {17: ("b", "n/a", "is not a number ('n/a')"), 400: ("c", np.nan, "is NaN"),
           901: ("a", 1e39, "is 1e+39, beyond float32's range (±3.4e+38)")}
    for row, (col, value, _) in bad.items():
        df.loc[row, col] = value
    ddf = dd.from_pandas(df, npartitions=4)
    good = df.drop(index=list(bad))
    expected = model.decision_function(good[FEATURES].astype(float))

    one_bad = dd.from_pandas(df.drop(index=[400, 901]), npartitions=4)
    with pytest.raises(ValueError, match=r"\(index 17, id=17\): column 'b' is not a number \('n/a'\) "
                                         r"\(invalid='skip' or 'quarantine' scores the other rows\)"):
        score_dask(model, one_bad, client=client, keep=["id"]).compute()
    skipped = score_dask(model, ddf, client=client, keep=["id"], invalid="skip").compute().sort_values("id")
    np.testing.assert_array_equal(skipped["id"], good["id"])
    np.testing.assert_allclose(skipped["score"], expected, rtol=0, atol=1e-6)

    kept = score_dask(model, ddf, client=client, keep=["id"], label=True, invalid="quarantine").compute()
    kept = kept.sort_values("id")
    assert len(kept) == len(df)  # every row: scored ones with reason null, rejected ones with score null
    rejected = kept[kept["reason"].notna()]
    assert rejected["id"].tolist() == sorted(bad)
    for reason, row in zip(rejected["reason"], sorted(bad)):
        assert reason == f"column '{bad[row][0]}' {bad[row][2]}"
    assert rejected["score"].isna().all() and rejected["label"].isna().all()
    scored = kept[kept["reason"].isna()]
    np.testing.assert_allclose(scored["score"], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(scored["label"].astype(int), (expected > model.threshold_).astype(int))
