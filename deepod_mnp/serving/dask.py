"""Score a Dask DataFrame on a ``distributed`` cluster, the model shipped once per worker.

The fitted detector travels to each worker once, in a worker plugin
(:class:`ModelPlugin`, registered with ``Client.register_plugin``; workers
that join later get it too), and every partition is scored by the copy on its
worker with ``decision_function``: Dask does the distribution, partitioning
and scheduling; nothing here is home-made. Example::

    from distributed import Client
    import dask.dataframe as dd
    from deepod_mnp.serving.dask import score_dask

    client = Client("scheduler:8786")                 # or Client(LocalCluster())
    ddf = dd.read_parquet("s3://bucket/transactions/")
    scores = score_dask(model, ddf, client=client, label=True, keep=["id"])
    scores.to_parquet("s3://bucket/scores/")

Needs the ``dask`` extra: ``pip install 'deepod-mnp[dask]'``.
"""
from __future__ import annotations

import pickle
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.stream import feature_columns, score_frame

try:  # the plugin must be a WorkerPlugin for Client.register_plugin; the module still imports without Dask
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without the extra
    _WorkerPlugin = object

DASK_HINT = ("Dask scoring needs the 'dask' extra: pip install 'deepod-mnp[dask]' "
             "(dask[dataframe], distributed).")


def _distributed() -> Any:
    try:
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError as exc:
        raise ImportError(DASK_HINT) from exc
    return distributed


class ModelPlugin(_WorkerPlugin):
    """A worker plugin holding one fitted detector per worker.

    The detector is pickled once when the plugin is registered and unpickled
    once per worker in :meth:`setup`; :attr:`n_loads` counts those loads.

    Parameters
    ----------
    model : fitted detector
        Anything picklable with ``decision_function``.
    name : str
        The plugin's name on the workers.
    torch_threads : int, optional
        Set torch's thread count in each worker process (default: leave it).
    """

    def __init__(self, model: Any, name: str, torch_threads: int | None = None) -> None:
        self.payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        self.name = name
        self.torch_threads = torch_threads
        self.model = None
        self.n_loads = 0

    def setup(self, worker: Any) -> None:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        self.model = pickle.loads(self.payload)
        self.n_loads += 1

    def teardown(self, worker: Any) -> None:
        self.model = None


def _score_partition(part: pd.DataFrame, plugin_name: str, features: list[str], keep: list[str],
                     label: bool) -> pd.DataFrame:
    from distributed import get_worker

    return score_frame(get_worker().plugins[plugin_name].model, part, features, keep, label, np.int8)


def score_dask(model: Any, ddf: Any, *, client: Any = None, label: bool = False, keep: Sequence[str] = (),
               torch_threads: int | None = None) -> Any:
    """Lazily score every row of a Dask DataFrame on the client's cluster.

    Parameters
    ----------
    model : fitted detector
        E.g. ``MNP.load_model(path)``; it is sent to each worker once.
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

    Returns
    -------
    dask.dataframe.DataFrame
        ``keep`` columns, ``score`` (float64) and optionally ``label``, with
        ``ddf``'s index and partitions; compute or write it to run.
    """
    distributed = _distributed()
    client = client or distributed.get_client()
    keep = list(keep)
    features = feature_columns(model, list(ddf.columns), keep)
    name = f"deepod-mnp-model-{uuid.uuid4().hex[:12]}"
    client.register_plugin(ModelPlugin(model, name, torch_threads), name=name)
    meta = pd.DataFrame({c: pd.Series(dtype=ddf[c].dtype) for c in keep})
    meta["score"] = pd.Series(dtype=np.float64)
    if label:
        meta["label"] = pd.Series(dtype=np.int8)
    return ddf.map_partitions(_score_partition, name, features, keep, label, meta=meta)
