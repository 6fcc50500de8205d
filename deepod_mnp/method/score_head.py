"""Beyond the paper: how the reconstruction error reaches MNP's scoring MLP with ``recon_norm='log'``."""
from __future__ import annotations

import torch

RECON_NORMS = ("log",)


def relative_log_error(e: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``log(e_i / e_ref)``: the reconstruction error as the scoring MLP sees it with ``recon_norm='log'``.

    ``e_ref`` is the median error of the unlabeled training rows after
    pretraining, so a typical normal row enters the head near 0 and an error
    ten times larger near 2.3, on the scale of the unit-norm code beside it.
    The raw ``e_i`` of the paper is about 1e-3 on min-max features, so the
    head can hardly use it (beyond the paper, an option of MNP; BENCHMARKS.md,
    "The score head", has its ablation).
    """
    return torch.log(e.clamp_min(1e-12) / ref)
