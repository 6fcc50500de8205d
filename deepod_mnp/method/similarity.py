"""Similarity of latent codes to the normal prototypes (Eq. 6) and the normality weights (Eq. 7)."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def student_t_similarity(z: torch.Tensor, prototypes: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Similarity ``s_ij`` of each code to each prototype, both L2-normalised, shape (n, k)."""
    z = F.normalize(z, dim=1)
    u = F.normalize(prototypes, dim=1)
    dist2 = torch.cdist(z, u).pow(2)
    return (1.0 + dist2 / alpha).pow(-(alpha + 1.0) / 2.0)  # Eq. 6


def max_similarity(s: torch.Tensor) -> torch.Tensor:
    """``s_i = max_j s_ij``, the similarity to the nearest prototype, shape (n,)."""
    return s.max(dim=1).values


def normality_weights(s: torch.Tensor, beta: float = 1.0, normalize: bool = True) -> torch.Tensor:
    """Weights ``w_i`` of unlabeled samples, the likelihood of being normal.

    With ``normalize`` (the authors' code) the weights of a batch are rescaled to
    mean 1, so they reweight samples without changing the loss's scale.
    """
    w = torch.sigmoid(beta * max_similarity(s))  # Eq. 7
    return w / w.mean() if normalize else w
