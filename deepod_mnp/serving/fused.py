"""Fused fast scoring: a fitted MNP ensemble as one module of batched matrix products.

The network is :mod:`deepod_mnp.method.fused` (the detectors' scoring hot path
uses it, and detectors may import only ``method/``); this is its public,
serving-side name, with :func:`fused_scores` for bulk scoring in worker threads.
"""
from __future__ import annotations

import numpy as np
import torch

from deepod_mnp._chunks import score_rows
from deepod_mnp.method.fused import FusedMNP, flops_per_row, fused_for

__all__ = ["FusedMNP", "flops_per_row", "fused_for", "fused_scores"]


def fused_scores(fused: FusedMNP, X: np.ndarray, *, chunk_rows: int | None = None,
                 workers: int = 1) -> np.ndarray:
    """Float64 scores of the float32 rows ``X`` (n, D), scored in chunks under inference mode.

    Parameters
    ----------
    fused : FusedMNP
        The scorer.
    X : array of shape (n, D)
        Rows (cast to float32 when they are not).
    chunk_rows : int, optional
        Rows per forward pass; default :attr:`FusedMNP.block_rows`, which
        keeps a chunk's intermediates in a core's cache.
    workers : int, default=1
        Python threads scoring chunks side by side (torch releases the GIL in
        its kernels). Run them with torch at one intra-op thread (e.g. under
        ``threadpoolctl``, or torch set to one thread by the caller):
        this function never changes torch's process-wide thread count.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)

    def score(rows: slice) -> np.ndarray:
        with torch.inference_mode():  # grad mode is per thread
            return fused(torch.from_numpy(X[rows])).numpy()

    return score_rows(score, len(X), chunk_rows or fused.block_rows, workers)
