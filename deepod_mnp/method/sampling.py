"""Mixed mini-batches of unlabeled samples and labeled anomalies."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

AUTO_STEPS_RANGE = (8, 16)  # fewest and most batches per epoch of epoch_steps='auto'


def auto_epoch_steps(n_unlabeled: int, batch_size: int,
                     steps_range: tuple[int, int] = AUTO_STEPS_RANGE) -> int:
    """Batches per epoch of ``epoch_steps='auto'``: one pass over the unlabeled rows, clipped to a range.

    Small data sets get a short epoch (as DeepOD's detectors do) and from
    ``16 * batch_size`` unlabeled rows up a fixed budget, so the cost of an
    epoch stops growing with N. The cap of 16 was chosen on development splits
    (BENCHMARKS.md, "How the defaults were chosen"): longer training overfits
    the few labeled anomalies on the large sets.
    """
    lo, hi = steps_range
    return int(np.clip(-(-n_unlabeled // batch_size), lo, hi))


def resolve_epoch_steps(epoch_steps: int | str, n_unlabeled: int, batch_size: int) -> int:
    """The batches per epoch an ``epoch_steps`` setting means (``'auto'``: :func:`auto_epoch_steps`)."""
    return auto_epoch_steps(n_unlabeled, batch_size) if epoch_steps == "auto" else int(epoch_steps)


class MixedBatchLoader:
    """Yield ``steps_per_epoch`` batches of ``(x_unlabeled, x_anomalies)`` per epoch.

    Each batch holds ``batch_size`` unlabeled rows drawn without replacement
    (all of them if there are fewer) and ``anomaly_batch_size`` labeled
    anomalies drawn with replacement, so a single labeled anomaly is enough.
    The number of steps is given, so an epoch's cost does not grow with N.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on the training device.
    y : ndarray of shape (n_samples,)
        1 for labeled anomalies, 0 for unlabeled samples.
    batch_size, anomaly_batch_size : int
        ``b_u`` and ``b_a`` of the paper.
    steps_per_epoch : int
        Batches per epoch.
    rng : numpy.random.Generator
        Source of all randomness.
    """

    def __init__(self, X: torch.Tensor, y: np.ndarray, *, batch_size: int, anomaly_batch_size: int,
                 steps_per_epoch: int, rng: np.random.Generator) -> None:
        self.X = X
        self.unlabeled_idx = np.flatnonzero(y == 0)
        self.anomaly_idx = np.flatnonzero(y == 1)
        self.batch_size = min(batch_size, len(self.unlabeled_idx))
        self.anomaly_batch_size = anomaly_batch_size if len(self.anomaly_idx) else 0
        self.steps_per_epoch = steps_per_epoch
        self.rng = rng

    def __len__(self) -> int:
        return self.steps_per_epoch

    def sample_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of one batch: unlabeled, then anomalies."""
        u = self.rng.choice(self.unlabeled_idx, self.batch_size, replace=False)
        a = self.rng.choice(self.anomaly_idx, self.anomaly_batch_size, replace=True) \
            if self.anomaly_batch_size else self.anomaly_idx[:0]
        return u, a

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps_per_epoch):
            u, a = self.sample_indices()
            idx = torch.from_numpy(np.concatenate([u, a])).to(self.X.device)
            batch = self.X[idx]
            yield batch[: len(u)], batch[len(u):]
