"""Dynamic weight averaging of the three losses (Liu, Johns and Davison 2018)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


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
    return n_losses * expo / expo.sum()  # lambda_k of DWA (Liu et al.), used in Eq. 13


class DynamicWeightAveraging:
    """The state of dynamic weight averaging during one training run: Eq. 13 batch by batch.

    :meth:`weighted_sum` weighs a batch's losses with the current epoch's
    weights and accumulates them; :meth:`end_epoch` returns the epoch's mean
    losses, and :meth:`update` sets the next epoch's weights from them.

    Parameters
    ----------
    n_losses : int
        K, the number of losses balanced.
    temperature : float
        T of :func:`dwa_weights`.
    device : torch.device
        Where the weights and sums live (that of the losses).
    """

    def __init__(self, n_losses: int, temperature: float, device: torch.device) -> None:
        self.temperature = temperature
        self.weights = torch.ones(n_losses, device=device)
        self._sum = torch.zeros(n_losses, device=device)
        self._batches = 0
        self._history: list[list[float]] = []

    def weighted_sum(self, losses: torch.Tensor) -> torch.Tensor:
        """``sum_k lambda_k L_k`` of one batch; records the losses for the epoch's means."""
        self._sum += losses.detach()
        self._batches += 1
        return (self.weights * losses).sum()  # Eq. 13

    def end_epoch(self) -> np.ndarray:
        """The epoch's mean of each loss, shape (K,)."""
        return (self._sum / max(self._batches, 1)).cpu().numpy()

    def update(self, means: np.ndarray) -> list[float]:
        """Record an epoch's means, set the next epoch's weights; return the weights the epoch used."""
        used = self.weights.cpu().tolist()
        self._history.append(means.tolist())
        self.weights = torch.as_tensor(dwa_weights(self._history, self.temperature),
                                       dtype=torch.float32, device=self.weights.device)
        self._sum.zero_()
        self._batches = 0
        return used
