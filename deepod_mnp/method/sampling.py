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


FULL_PASS = -1  # epoch_steps=-1: DeepOD's "all the batches", one full pass over the unlabeled rows


def full_pass_steps(n_unlabeled: int, batch_size: int) -> int:
    """Batches of one full pass (``epoch_steps=-1``): ``ceil(n_unlabeled / batch_size)``."""
    return -(-n_unlabeled // min(batch_size, n_unlabeled))


def resolve_epoch_steps(epoch_steps: int | str, n_unlabeled: int, batch_size: int) -> int:
    """The batches per epoch an ``epoch_steps`` setting means.

    ``'auto'`` is :func:`auto_epoch_steps`, ``-1`` one full pass over the
    unlabeled rows (:func:`full_pass_steps`), a positive int itself.
    """
    if epoch_steps == "auto":
        return auto_epoch_steps(n_unlabeled, batch_size)
    if epoch_steps == FULL_PASS:
        return full_pass_steps(n_unlabeled, batch_size)
    return int(epoch_steps)


def full_pass_batches(rows: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One full pass over ``rows`` in batches of ``min(batch_size, len(rows))`` rows.

    A random permutation of ``rows`` is cut into ``ceil(len(rows) / size)``
    batches, so every row is in exactly one of them; a short last batch is
    topped up to the full size with rows drawn without replacement from the
    others (so it also holds no row twice). Every batch has the same size,
    which keeps batch-norm statistics comparable from batch to batch.
    """
    size = min(batch_size, len(rows))
    order = rng.permutation(rows)
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    short = size - len(batches[-1])
    if short:
        others = order[: len(order) - len(batches[-1])]
        batches[-1] = np.concatenate([batches[-1], rng.choice(others, short, replace=False)])
    return batches


class MixedBatchLoader:
    """Yield ``steps_per_epoch`` batches of ``(x_unlabeled, x_anomalies)`` per epoch.

    Each batch holds ``batch_size`` unlabeled rows drawn without replacement
    (all of them if there are fewer) and ``anomaly_batch_size`` labeled
    anomalies drawn with replacement, so a single labeled anomaly is enough.
    The number of steps is given, so an epoch's cost does not grow with N.

    With ``full_pass=True`` (``epoch_steps=-1``) an epoch is instead one pass
    over the unlabeled rows: their batches are :func:`full_pass_batches` (each
    unlabeled row in exactly one batch of the epoch, the last batch topped
    up), ``steps_per_epoch`` must be :func:`full_pass_steps`, and each batch
    still adds ``anomaly_batch_size`` anomalies drawn with replacement.

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
    full_pass : bool, default=False
        One pass over the unlabeled rows per epoch (see above).
    """

    def __init__(self, X: torch.Tensor, y: np.ndarray, *, batch_size: int, anomaly_batch_size: int,
                 steps_per_epoch: int, rng: np.random.Generator, full_pass: bool = False) -> None:
        self.X = X
        self.unlabeled_idx = np.flatnonzero(y == 0)
        self.anomaly_idx = np.flatnonzero(y == 1)
        self.batch_size = min(batch_size, len(self.unlabeled_idx))
        self.anomaly_batch_size = anomaly_batch_size if len(self.anomaly_idx) else 0
        n_pass = full_pass_steps(len(self.unlabeled_idx), batch_size)
        if full_pass and steps_per_epoch != n_pass:
            raise ValueError(f"a full pass over {len(self.unlabeled_idx)} unlabeled rows in batches of "
                             f"{self.batch_size} takes {n_pass} steps, not {steps_per_epoch}.")
        self.steps_per_epoch = steps_per_epoch
        self.full_pass = full_pass
        self.rng = rng

    def __len__(self) -> int:
        return self.steps_per_epoch

    def sample_indices(self, u: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of one batch: unlabeled (``u``, or drawn), then anomalies."""
        if u is None:
            u = self.rng.choice(self.unlabeled_idx, self.batch_size, replace=False)
        a = self.rng.choice(self.anomaly_idx, self.anomaly_batch_size, replace=True) \
            if self.anomaly_batch_size else self.anomaly_idx[:0]
        return u, a

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        passes = full_pass_batches(self.unlabeled_idx, self.batch_size, self.rng) if self.full_pass else None
        for step in range(self.steps_per_epoch):
            u, a = self.sample_indices(None if passes is None else passes[step])
            idx = torch.from_numpy(np.concatenate([u, a])).to(self.X.device)
            batch = self.X[idx]
            yield batch[: len(u)], batch[len(u):]
