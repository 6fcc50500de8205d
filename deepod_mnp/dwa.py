"""Dynamic weight averaging of the three losses (Liu, Johns and Davison 2018)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dwa_weights(history: Sequence[Sequence[float]], temperature: float = 2.0) -> np.ndarray:
    """Loss weights for the next epoch from the per-epoch mean losses so far.

    ``lambda_k = K exp(r_k / T) / sum_j exp(r_j / T)`` with the rate of descent
    ``r_k = L_k(t-1) / L_k(t-2)``; all weights are 1 until two epochs are known.
    A loss that falls more slowly gets a larger weight.

    Parameters
    ----------
    history : sequence of sequences of float
        One row per finished epoch, one column per loss.
    temperature : float
        T; a larger T gives more even weights.

    Returns
    -------
    ndarray of shape (K,)
        Weights ``w_1..w_K`` of Eq. 13, summing to K.
    """
    hist = np.asarray(history, dtype=np.float64)
    if hist.ndim != 2:
        raise ValueError("history must be a 2-D array: epochs x losses.")
    n_losses = hist.shape[1]
    if hist.shape[0] < 2:
        return np.ones(n_losses)
    prev, last = hist[-2], hist[-1]
    rate = np.divide(last, prev, out=np.ones(n_losses), where=np.abs(prev) > 1e-12)
    logits = rate / temperature
    logits -= logits.max()
    expo = np.exp(logits)
    return n_losses * expo / expo.sum()  # Eq. 13 weights
