"""Score a Dask DataFrame on a ``distributed`` cluster, the model shipped once per worker.

The fitted detector is scattered to the workers once per call
(``Client.scatter(model, broadcast=True)``: one copy per worker, held in the
workers' memory under the future's key) and every partition is scored by the
copy on its worker with ``decision_function``. When the scored collection is
gone (computed and dropped), the future is released and the workers drop
the copy: repeated calls leave nothing behind on a long-lived cluster. Dask
does the distribution, partitioning and scheduling; nothing here is
home-made. Example::

    from distributed import Client
    import dask.dataframe as dd
    from deepod_mnp.serving.dask import score_dask

    client = Client("scheduler:8786")                 # or Client(LocalCluster())
    ddf = dd.read_parquet("s3://bucket/transactions/")
    scores = score_dask(model, ddf, client=client, label=True, keep=["id"], invalid="quarantine")
    scores.to_parquet("s3://bucket/scores/")

Needs the ``dask`` extra: ``pip install 'deepod-mnp[dask]'``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.rows import check_policy, feature_columns, score_frame

DASK_HINT = ("Dask scoring needs the 'dask' extra: pip install 'deepod-mnp[dask]' "
             "(dask[dataframe], distributed).")


def _distributed() -> Any:
    try:
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError as exc:
        raise ImportError(DASK_HINT) from exc
    return distributed


def _score_partition(part: pd.DataFrame, model: Any, features: list[str], keep: list[str], label: bool,
                     invalid: str, torch_threads: int | None) -> pd.DataFrame:
    if torch_threads:
        import torch

        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
    return score_frame(model, part, features, keep, label, np.int8, invalid)


def score_dask(model: Any, ddf: Any, *, client: Any = None, label: bool = False, keep: Sequence[str] = (),
               torch_threads: int | None = None, invalid: str = "error") -> Any:
    """Lazily score every row of a Dask DataFrame on the client's cluster.

    Parameters
    ----------
    model : fitted detector
        E.g. ``MNP.load_model(path)``; it is sent to each worker once per call
        and released with the returned collection.
    ddf : dask.dataframe.DataFrame
        Rows to score; the feature columns are matched by name to
        ``feature_names_in_`` (see :func:`deepod_mnp.serving.stream.feature_columns`).
    client : distributed.Client, optional
        Default: the current client (``distributed.get_client()``).
    label : bool, default=False
        Add ``label`` (int8, ``score > threshold_``).
    keep : sequence of str
        Columns of ``ddf`` to carry to the result.
    torch_threads : int, optional
        torch threads in each worker process (e.g. 1 with one Dask thread per core).
    invalid : {'error', 'skip', 'quarantine'}, default='error'
        A bad row (missing, NaN, infinite, beyond float32's range, text that
        is no number; :func:`~deepod_mnp.serving.stream.check_rows`): raise
        ``ValueError`` naming its index, ``keep`` values and column when the
        result is computed; drop it; or keep it with a null ``score`` and
        ``label`` and the reason in an added ``reason`` column (null for the
        scored rows): ``result[result.reason.isna()]`` are the scores,
        ``result[result.reason.notna()]`` the rejected rows, and together
        they are every input row.

    Returns
    -------
    dask.dataframe.DataFrame
        ``keep`` columns, ``score`` (float64), optionally ``label`` (int8;
        nullable Int8 with ``'quarantine'``) and ``reason``, with ``ddf``'s
        index and partitions; compute or write it to run.
    """
    distributed = _distributed()
    check_policy(invalid)
    client = client or distributed.get_client()
    keep = list(keep)
    features = feature_columns(model, list(ddf.columns), keep)
    shipped = client.scatter(model, broadcast=True, hash=False)
    meta = pd.DataFrame({c: pd.Series(dtype=ddf[c].dtype) for c in keep})
    meta["score"] = pd.Series(dtype=np.float64)
    if label:
        meta["label"] = pd.Series(dtype=pd.Int8Dtype() if invalid == "quarantine" else np.int8)
    if invalid == "quarantine":
        meta["reason"] = pd.Series(dtype=object)
    return ddf.map_partitions(_score_partition, shipped, features, keep, label, invalid, torch_threads,
                              meta=meta)
