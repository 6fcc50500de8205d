"""L_np, the prototype terms of MNP: DEC's clustering loss (Eq. 8) and the contrastive loss (Eq. 9-10).

Naming: ``_u`` is a tensor over the unlabeled samples of a mini-batch, ``_a``
over its labeled anomalies.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from deepod_mnp.method.similarity import max_similarity


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``."""
    weight = q.pow(2) / q.sum(dim=0, keepdim=True)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(s_u: torch.Tensor, fixed_target: bool = False) -> torch.Tensor:
    """``L_kl(P || Q)`` of deep embedding clustering, summed over samples and prototypes.

    ``q`` is the similarity normalised over prototypes and ``p`` DEC's sharpened
    target. As in the authors' code the gradient flows through ``p`` too, which
    makes the loss also favour confident assignments; ``fixed_target=True``
    detaches ``p`` as DEC does. On development splits the joint target won by a
    wide margin (see BENCHMARKS.md, "How the defaults were chosen").
    """
    q = s_u / s_u.sum(dim=1, keepdim=True)
    p = dec_target(q).detach() if fixed_target else dec_target(q)
    return (p * (p.log() - q.log())).sum()  # Eq. 8


def contrastive_loss(s_max_u: torch.Tensor, w: torch.Tensor, s_max_a: torch.Tensor | None) -> torch.Tensor:
    """``L_con``: unlabeled samples close to a prototype, labeled anomalies far from all."""
    gap = (w * s_max_u).mean()
    if s_max_a is not None and s_max_a.numel() > 0:
        gap = gap - s_max_a.mean()
    return -F.logsigmoid(gap)  # Eq. 9


def prototype_loss(s_u: torch.Tensor, w: torch.Tensor, s_a: torch.Tensor | None,
                   fixed_target: bool = False) -> torch.Tensor:
    """``L_np = L_con + L_kl``."""
    s_max_a = None if s_a is None else max_similarity(s_a)
    l_con = contrastive_loss(max_similarity(s_u), w, s_max_a)
    return l_con + kl_clustering_loss(s_u, fixed_target)  # Eq. 10
