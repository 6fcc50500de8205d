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

import hashlib
import pickle
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.rows import check_policy, feature_columns, score_frame

SPARK_HINT = "Spark scoring needs the 'spark' extra: pip install 'deepod-mnp[spark]' (and a Java runtime)."
#: model token -> unpickled model in a Python worker process; only the most recent few are kept
_MODELS: OrderedDict[str, Any] = OrderedDict()
_MODELS_KEPT = 2
#: model -> {SparkContext id: (broadcast, token)}, on the driver: one broadcast per model and context,
#: destroyed with the model
_BROADCASTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _model(broadcast: Any, token: str) -> Any:
    # keyed by the payload's digest: a worker's broadcast objects have no id of their own
    if token not in _MODELS:
        _MODELS[token] = pickle.loads(broadcast.value)
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(token)
    return _MODELS[token]


def _scorer(shipped: tuple[Any, str], features: list[str], keep: list[str], label: bool, invalid: str):
    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _model(*shipped)
        for part in batches:
            yield score_frame(model, part, features, keep, label, np.int32, invalid)

    return score_batches


def _destroy(shipped: dict[int, tuple[Any, str]]) -> None:
    for broadcast, _ in shipped.values():
        try:
            broadcast.destroy()
        except Exception:  # noqa: BLE001 - the session may be gone already
            pass


def _ship(model: Any, context: Any) -> tuple[Any, str]:
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return context.broadcast(payload), hashlib.sha256(payload).hexdigest()


def _broadcast(model: Any, context: Any) -> tuple[Any, str]:
    """The broadcast of ``model`` in ``context`` and its token: made once per model and Spark context,
    destroyed on the executors when the model object is garbage-collected."""
    try:
        per_context = _BROADCASTS[model]
    except KeyError:
        per_context = {}
        _BROADCASTS[model] = per_context
        weakref.finalize(model, _destroy, per_context)
    except TypeError:  # not weak-referenceable: one broadcast per call
        return _ship(model, context)
    key = id(context)
    if key not in per_context:
        per_context[key] = _ship(model, context)
    return per_context[key]


def score_spark(model: Any, sdf: Any, *, label: bool = False, keep: Sequence[str] = (),
                invalid: str = "error") -> Any:
    """Lazily score every row of a Spark DataFrame.

    Parameters
    ----------
    model : fitted detector
        E.g. ``MNP.load_model(path)``; broadcast to the executors once (per
        Spark context): further calls with the same object reuse the
        broadcast, which is destroyed when the object is garbage-collected.
        Do not modify a model after scoring with it (refit a new one).
    sdf : pyspark.sql.DataFrame
        Rows to score; the numeric feature columns are matched by name to
        ``feature_names_in_``.
    label : bool, default=False
        Add ``label`` (int, ``score > threshold_``).
    keep : sequence of str
        Columns of ``sdf`` to carry to the result (e.g. an id).
    invalid : {'error', 'skip', 'quarantine'}, default='error'
        A bad row (missing, NaN, infinite, beyond float32's range, text that
        is no number): fail the job with a ``ValueError`` naming its ``keep``
        values and column; drop it; or keep it with a null ``score`` and
        ``label`` and the reason in an added ``reason`` column (null for
        scored rows): filter on ``reason`` to split the scores from the
        rejected rows (persist the result first to score once).

    Returns
    -------
    pyspark.sql.DataFrame
        ``keep`` columns, ``score`` (double), optionally ``label`` and ``reason``.
    """
    try:
        from pyspark.sql import types as T
    except ImportError as exc:
        raise ImportError(SPARK_HINT) from exc
    check_policy(invalid)
    keep = list(keep)
    features = feature_columns(model, list(sdf.columns), keep)
    quarantine = invalid == "quarantine"
    fields = [sdf.schema[c] for c in keep] + [T.StructField("score", T.DoubleType(), quarantine)]
    if label:
        fields.append(T.StructField("label", T.IntegerType(), quarantine))
    if quarantine:
        fields.append(T.StructField("reason", T.StringType(), True))
    broadcast = _broadcast(model, sdf.sparkSession.sparkContext)
    return sdf.mapInPandas(_scorer(broadcast, features, keep, label, invalid), schema=T.StructType(fields))
