"""Scoring a Spark DataFrame with mapInPandas on a local Spark session.

Runs wherever pyspark and a Java runtime (17+ for Spark 4) are present, else is skipped with the
reason: ``pip install -e '.[dev]'`` installs pyspark; install a JDK (e.g. ``apt-get install
openjdk-17-jre-headless``) and rerun ``pytest tests/test_serving_spark.py``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data

import deepod_mnp
from deepod_mnp import MNP

pytest.importorskip("pyspark", reason="pyspark is not installed (the dev extra installs it)")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime for Spark (install a JDK 17+ and set JAVA_HOME or put java on PATH)",
                allow_module_level=True)

from deepod_mnp.serving.spark import score_spark  # noqa: E402

FEATURES = ["u", "v", "w"]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # the Python workers must import this checkout's deepod_mnp
    root = str(Path(deepod_mnp.__file__).resolve().parents[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        mp.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = (SparkSession.builder.master("local[1]").appName("deepod-mnp-test")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
                   .config("spark.driver.memory", "1g").getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_score_spark_dataframe_with_map_in_pandas(spark):
    data = make_weak_data(n_per_mode=80, n_features=len(FEATURES), seed=8)
    model = MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)
    rng = np.random.default_rng(6)
    df = pd.DataFrame(rng.normal(0, 3, size=(2_000, 3)), columns=["w", "u", "v"])
    df["id"] = np.arange(len(df), dtype=np.int64)
    sdf = spark.createDataFrame(df).repartition(3)
    scored = score_spark(model, sdf, label=True, keep=["id"])
    assert scored.columns == ["id", "score", "label"]
    result = scored.toPandas().sort_values("id").reset_index(drop=True)
    np.testing.assert_array_equal(result["id"], df["id"])
    np.testing.assert_allclose(result["score"], model.decision_function(df[FEATURES]), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result["label"], (result["score"] > model.threshold_).astype(int))


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_bad_rows_follow_the_policy_and_one_broadcast_per_model(spark, monkeypatch):
    import gc

    from deepod_mnp.serving import spark as spark_scoring

    destroyed = []
    real_destroy = spark_scoring._destroy
    monkeypatch.setattr(spark_scoring, "_destroy", lambda b: destroyed.append(len(b)) or real_destroy(b))
    data = make_weak_data(n_per_mode=60, n_features=len(FEATURES), seed=3)
    model = MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.normal(0, 3, size=(600, 3)), columns=FEATURES)
    df["id"] = np.arange(len(df), dtype=np.int64)
    df.loc[5, "v"], df.loc[444, "w"] = np.inf, np.nan
    sdf = spark.createDataFrame(df).repartition(2)
    scored = score_spark(model, sdf, label=True, keep=["id"], invalid="quarantine")
    assert scored.columns == ["id", "score", "label", "reason"]
    result = scored.toPandas().sort_values("id").reset_index(drop=True)
    assert len(result) == len(df) and result.loc[result["reason"].notna(), "id"].tolist() == [5, 444]
    assert result.loc[5, "reason"] == "column 'v' is inf" and result.loc[444, "reason"] == "column 'w' is NaN"
    assert result.loc[[5, 444], "score"].isna().all() and result.loc[[5, 444], "label"].isna().all()
    good = df.drop(index=[5, 444])
    np.testing.assert_allclose(result["score"].dropna(), model.decision_function(good[FEATURES]), rtol=0,
                               atol=1e-6)
    skipped = score_spark(model, sdf, keep=["id"], invalid="skip").toPandas()
    assert sorted(skipped["id"]) == good["id"].tolist()
    with pytest.raises(Exception, match="column 'v' is inf"):  # Spark wraps the worker's ValueError
        score_spark(model, sdf.filter("id < 100"), keep=["id"]).collect()
    assert len(spark_scoring._BROADCASTS[model]) == 1  # three calls, one broadcast
    del model
    gc.collect()
    assert destroyed == [1] and len(spark_scoring._BROADCASTS) == 0
