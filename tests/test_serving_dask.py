"""Scoring a Dask DataFrame on a real distributed.LocalCluster: the model shipped once per worker.

The workers are threads of this process (processes=False keeps the test fast); the plugin is still
pickled for each worker by Client.register_plugin, as on a cluster of processes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP

dd = pytest.importorskip("dask.dataframe", reason="the 'dask' extra is missing")
distributed = pytest.importorskip("distributed", reason="the 'dask' extra (distributed) is missing")

from deepod_mnp.serving.dask import score_dask  # noqa: E402

FEATURES = ["a", "b", "c", "d"]


def test_score_dask_dataframe_on_local_cluster():
    data = make_weak_data(n_per_mode=80, n_features=len(FEATURES), seed=9)
    model = MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)
    rng = np.random.default_rng(4)
    df = pd.DataFrame(rng.normal(0, 3, size=(3_001, 4)), columns=FEATURES[::-1])  # other column order
    df["id"] = np.arange(len(df))
    ddf = dd.from_pandas(df, npartitions=8)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        lazy = score_dask(model, ddf, client=client, label=True, keep=["id"], torch_threads=1)
        assert lazy.npartitions == 8 and list(lazy.columns) == ["id", "score", "label"]
        result = lazy.compute()
        loads = client.run(lambda dask_worker: sum(p.n_loads for name, p in dask_worker.plugins.items()
                                                   if name.startswith("deepod-mnp-model-")))
    assert sorted(loads.values()) == [1, 1]  # one copy per worker, not one per partition
    result = result.sort_values("id")
    np.testing.assert_array_equal(result["id"], df["id"])
    expected = model.decision_function(df[FEATURES])
    np.testing.assert_allclose(result["score"], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result["label"], (result["score"] > model.threshold_).astype(np.int8))
