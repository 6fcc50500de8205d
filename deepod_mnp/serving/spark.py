"""Score a Spark DataFrame with ``DataFrame.mapInPandas``, the model broadcast once.

The fitted detector is pickled into a Spark broadcast variable (sent to each
executor once) and unpickled once per Python worker process, which Spark
reuses across tasks (``spark.python.worker.reuse``, on by default); each Arrow
batch of a partition is scored with ``decision_function``. Spark does the
distribution; nothing here is home-made. Example::

    from pyspark.sql import SparkSession
    from deepod_mnp import MNP
    from deepod_mnp.serving.spark import score_spark

    spark = SparkSession.builder.getOrCreate()
    sdf = spark.read.parquet("hdfs:///transactions/")
    score_spark(MNP.load_model("mnp.pt"), sdf, label=True, keep=["id"]).write.parquet("hdfs:///scores/")

The executors need deepod-mnp, torch and DeepOD installed (the same versions
as the driver). Needs the ``spark`` extra (``pip install 'deepod-mnp[spark]'``)
and a Java runtime for Spark.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.stream import feature_columns, score_frame

SPARK_HINT = "Spark scoring needs the 'spark' extra: pip install 'deepod-mnp[spark]' (and a Java runtime)."
_MODELS: dict[int, Any] = {}  # broadcast id -> unpickled model, one per Python worker process


def _model(broadcast: Any) -> Any:
    key = broadcast.id if hasattr(broadcast, "id") else id(broadcast)
    if key not in _MODELS:
        _MODELS[key] = pickle.loads(broadcast.value)
    return _MODELS[key]


def _scorer(broadcast: Any, features: list[str], keep: list[str], label: bool):
    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _model(broadcast)
        for part in batches:
            yield score_frame(model, part, features, keep, label, np.int32)

    return score_batches


def score_spark(model: Any, sdf: Any, *, label: bool = False, keep: Sequence[str] = ()) -> Any:
    """Lazily score every row of a Spark DataFrame.

    Parameters
    ----------
    model : fitted detector
        E.g. ``MNP.load_model(path)``; broadcast to the executors once.
    sdf : pyspark.sql.DataFrame
        Rows to score; the numeric feature columns are matched by name to
        ``feature_names_in_``.
    label : bool, default=False
        Add ``label`` (int, ``score > threshold_``).
    keep : sequence of str
        Columns of ``sdf`` to carry to the result (e.g. an id).

    Returns
    -------
    pyspark.sql.DataFrame
        ``keep`` columns, ``score`` (double) and optionally ``label``.
    """
    try:
        from pyspark.sql import types as T
    except ImportError as exc:
        raise ImportError(SPARK_HINT) from exc
    keep = list(keep)
    features = feature_columns(model, list(sdf.columns), keep)
    fields = [sdf.schema[c] for c in keep] + [T.StructField("score", T.DoubleType(), False)]
    if label:
        fields.append(T.StructField("label", T.IntegerType(), False))
    broadcast = sdf.sparkSession.sparkContext.broadcast(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return sdf.mapInPandas(_scorer(broadcast, features, keep, label), schema=T.StructType(fields))
