"""``epoch_steps=-1``, DeepOD's full pass: each unlabeled row in exactly one mini-batch of an epoch.

The mixed batches themselves are :class:`deepod_mnp.deepod_tabular.mnp.MixedBatchLoader`'s;
:func:`full_pass_batches` is what it draws the unlabeled rows with when ``epoch_steps=-1``.
"""
from __future__ import annotations

import numpy as np

FULL_PASS = -1  # epoch_steps=-1: DeepOD's "all the batches", one full pass over the unlabeled rows


def full_pass_steps(n_unlabeled: int, batch_size: int) -> int:
    """Batches of one full pass (``epoch_steps=-1``): ``ceil(n_unlabeled / batch_size)``."""
    return -(-n_unlabeled // min(batch_size, n_unlabeled))


def resolve_epoch_steps(epoch_steps: int, n_unlabeled: int, batch_size: int) -> int:
    """The batches per epoch of an int ``epoch_steps``: itself, or :func:`full_pass_steps` for ``-1``."""
    return full_pass_steps(n_unlabeled, batch_size) if epoch_steps == FULL_PASS else int(epoch_steps)


def full_pass_batches(n_rows: int, size: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One full pass over rows ``0..n_rows-1`` in ``steps`` batches of ``min(size, n_rows)`` rows.

    A random permutation of the rows is cut into ``ceil(n_rows / size)``
    batches, so every row is in exactly one of them; a short last batch is
    topped up to the full size with rows drawn without replacement from the
    others (so it also holds no row twice). Every batch has the same size,
    which keeps batch-norm statistics comparable from batch to batch. The
    signature is that of the batch draw of the loader and of pretraining
    (:func:`deepod_mnp.deepod_tabular.mnp.random_batches`).

    Raises
    ------
    ValueError
        When ``steps`` is not the number of batches of a full pass.
    """
    size = min(size, n_rows)
    order = rng.permutation(n_rows)
    batches = [order[i:i + size] for i in range(0, n_rows, size)]
    if len(batches) != steps:
        raise ValueError(f"a full pass over {n_rows} unlabeled rows in batches of {size} takes "
                         f"{len(batches)} steps, not {steps}.")
    short = size - len(batches[-1])
    if short:
        others = order[: n_rows - len(batches[-1])]
        batches[-1] = np.concatenate([batches[-1], rng.choice(others, short, replace=False)])
    return batches
