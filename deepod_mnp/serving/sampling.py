"""Fit from a Parquet table bigger than memory: all labeled anomalies and a uniform sample of the rest.

An MNP epoch is a fixed number of mixed batches (``epoch_steps``, at most 16
by default), so its training cost does not grow with the number of unlabeled
rows; what it needs is every labeled anomaly and a uniform sample of the
unlabeled rows. :func:`sample_parquet` reads the table once, in record batches
of bounded size, keeping every row whose label is 1 and a uniform sample
without replacement of ``n_unlabeled`` rows labeled 0 (bottom-k of uniform
random keys, a reservoir sample that needs one pass and ``n_unlabeled`` rows of
memory). :func:`fit_parquet` fits a detector on that sample. The effect of the
sample size on AUC-PR is measured in BENCHMARKS.md ("Serving",
``scripts/sampled_fit.py``).

Needs pyarrow (a dependency of deepod-mnp).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.stream import PYARROW_HINT

logger = logging.getLogger(__name__)


def sample_parquet(path: str | Path, *, label_column: str, n_unlabeled: int,
                   feature_columns: Sequence[str] | None = None, random_state: int | None = 0,
                   batch_rows: int = 65_536) -> tuple[pd.DataFrame, np.ndarray]:
    """All labeled anomalies and a uniform sample of ``n_unlabeled`` unlabeled rows of a Parquet table.

    Parameters
    ----------
    path : path-like
        A Parquet file or a directory of Parquet files.
    label_column : str
        Weak labels: 1 for a labeled anomaly, 0 for an unlabeled row.
    n_unlabeled : int
        Unlabeled rows to keep (all of them when the table has fewer).
    feature_columns : sequence of str, optional
        Default: every column but ``label_column``.
    random_state : int or None, default=0
        Seed of the sample.
    batch_rows : int, default=65536
        Rows read at a time.

    Returns
    -------
    X : pandas.DataFrame
        The sampled unlabeled rows (in table order), then the labeled
        anomalies (in table order), with the feature columns.
    y : ndarray of int64
        0 for the sampled unlabeled rows, 1 for the labeled anomalies.
    """
    try:
        import pyarrow.dataset as ds
    except ImportError as exc:
        raise ImportError(PYARROW_HINT) from exc
    if n_unlabeled < 1:
        raise ValueError(f"n_unlabeled must be >= 1, got {n_unlabeled}.")
    dataset = ds.dataset(str(path), format="parquet")
    names = list(dataset.schema.names)
    if label_column not in names:
        raise ValueError(f"label column {label_column!r} is not in the table ({names[:10]} ...).")
    features = ([c for c in names if c != label_column] if feature_columns is None
                else list(feature_columns))
    missing = [c for c in features if c not in names]
    if missing:
        raise ValueError(f"feature columns {missing[:10]} are not in the table.")
    rng = np.random.default_rng(random_state)
    keys = np.empty(0)
    positions = np.empty(0, dtype=np.int64)
    rows = np.empty((0, len(features)))
    labeled, seen, n_unlabeled_seen = [], 0, 0
    scanner = dataset.scanner(columns=[*features, label_column], batch_size=batch_rows, batch_readahead=1,
                              fragment_readahead=1)
    for batch in scanner.to_batches():
        if not batch.num_rows:
            continue
        y = batch.column(label_column).to_numpy(zero_copy_only=False)
        bad = np.setdiff1d(np.unique(y), [0, 1])
        if bad.size:
            raise ValueError(f"{label_column} must hold 0 (unlabeled) and 1 (labeled anomaly); "
                             f"found {bad[:5]}.")
        X = np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in features]).astype(float)
        is_anomaly = y == 1
        labeled.append(X[is_anomaly])
        unl = np.flatnonzero(~is_anomaly)
        n_unlabeled_seen += len(unl)
        keys = np.concatenate([keys, rng.random(len(unl))])
        positions = np.concatenate([positions, seen + unl])
        rows = np.concatenate([rows, X[unl]])
        if len(keys) > n_unlabeled:  # keep the n smallest keys: a uniform sample without replacement
            keep = np.argpartition(keys, n_unlabeled - 1)[:n_unlabeled]
            keys, positions, rows = keys[keep], positions[keep], rows[keep]
        seen += batch.num_rows
    order = np.argsort(positions, kind="stable")
    anomalies = np.concatenate(labeled) if labeled else np.empty((0, len(features)))
    X = pd.DataFrame(np.concatenate([rows[order], anomalies]), columns=features)
    y = np.r_[np.zeros(len(order), dtype=np.int64), np.ones(len(anomalies), dtype=np.int64)]
    logger.info("Sampled %d of %d unlabeled rows and all %d labeled anomalies from %s.",
                len(order), n_unlabeled_seen, len(anomalies), path)
    return X, y


def fit_parquet(model: Any, path: str | Path, *, label_column: str, n_unlabeled: int = 50_000,
                feature_columns: Sequence[str] | None = None, random_state: int | None = 0,
                batch_rows: int = 65_536) -> Any:
    """Fit ``model`` on :func:`sample_parquet`'s sample of a Parquet table and return it.

    The detector is fitted on a DataFrame, so ``feature_names_in_`` holds the
    feature columns and ``deepod-mnp score`` matches them by name. Its
    ``decision_scores_`` and ``threshold_`` are those of the sample.
    """
    X, y = sample_parquet(path, label_column=label_column, n_unlabeled=n_unlabeled,
                          feature_columns=feature_columns, random_state=random_state, batch_rows=batch_rows)
    return model.fit(X, y)
