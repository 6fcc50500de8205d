"""The one loop that scores rows chunk by chunk, side by side in threads, into one array of scores.

The detectors' ``decision_function`` (:meth:`deepod_mnp.base.BaseDetector._score`),
the fused scorer's :func:`~deepod_mnp.serving.fused.fused_scores` and
:class:`~deepod_mnp.serving.onnx.OnnxScorer` all score through it. NumPy and the
standard library only: ONNX Runtime scoring needs no torch for it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def score_chunks(score: Callable[[int], np.ndarray], sizes: Sequence[int], workers: int = 1) -> np.ndarray:
    """Float64 scores of consecutive chunks of rows, written into one array as each chunk is scored.

    Parameters
    ----------
    score : callable
        ``score(i)`` returns the ``sizes[i]`` scores of chunk ``i`` (anything NumPy casts to float64).
    sizes : sequence of int
        Rows per chunk, in order.
    workers : int, default=1
        Python threads scoring chunks side by side (torch and ONNX Runtime release the GIL in their
        kernels); 1 scores them one after the other. No chunk's result stays allocated beyond its
        slice of the output, so scoring holds the scores and one chunk per worker.

    Returns
    -------
    ndarray of shape (sum(sizes),)
    """
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.float64)

    def one(i: int) -> None:
        out[ends[i] - sizes[i]:ends[i]] = score(i)

    if workers > 1 and len(sizes) > 1:
        with ThreadPoolExecutor(min(workers, len(sizes))) as pool:
            list(pool.map(one, range(len(sizes))))
    else:
        for i in range(len(sizes)):
            one(i)
    return out


def score_rows(score: Callable[[slice], np.ndarray], n_rows: int, chunk_rows: int,
               workers: int = 1) -> np.ndarray:
    """:func:`score_chunks` of rows ``0 .. n_rows - 1`` cut into consecutive chunks of ``chunk_rows``:
    ``score(rows)`` gets each chunk's slice."""
    chunks = [slice(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]
    return score_chunks(lambda i: score(chunks[i]), [c.stop - c.start for c in chunks], workers)
