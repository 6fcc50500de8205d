"""Losses of MNP: L_recon (Eq. 3-5), L_score (Eq. 12) and the three together, one function an equation.

L_np, the DEC and contrastive terms (Eq. 8-10), is in :mod:`deepod_mnp.method.prototype_losses`.

Naming: ``_u`` is a tensor over the unlabeled samples of a mini-batch, ``_a``
over its labeled anomalies. Every function returns a scalar (or per-sample)
tensor on the device of its inputs.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from deepod_mnp.method.prototype_losses import prototype_loss
from deepod_mnp.method.similarity import normality_weights

RECON_LOSSES = ("smooth_l1", "mse")
_ELEMENTWISE = {"smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}


def elementwise_loss(kind: str, name: str = "recon_loss"):
    """The per-element loss ``l`` called ``kind``; ``name`` is the parameter named in the error."""
    if kind not in _ELEMENTWISE:
        raise ValueError(f"{name} must be one of {RECON_LOSSES}, got {kind!r}.")
    return _ELEMENTWISE[kind]


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor, kind: str = "smooth_l1") -> torch.Tensor:
    """Per-sample reconstruction error ``e_i = l(x_i, x_hat_i)``, the mean over features."""
    return elementwise_loss(kind)(x_hat, x, reduction="none").mean(dim=1)


def recon_loss(e_u: torch.Tensor, e_a: torch.Tensor | None, w: torch.Tensor,
               margin: float = 0.02) -> torch.Tensor:
    """``L_recon``: weighted error of unlabeled samples plus the anomalies' margin hinge."""
    loss_u = (w * e_u).mean()  # Eq. 3
    if e_a is None or e_a.numel() == 0:
        return loss_u
    loss_a = F.relu(margin - (e_a - loss_u)).mean()  # Eq. 4
    return loss_u + loss_a  # Eq. 5


def score_loss(score_u: torch.Tensor, w: torch.Tensor, score_a: torch.Tensor | None,
               kind: str = "smooth_l1") -> torch.Tensor:
    """``L_score``: weighted loss of unlabeled scores towards 0, anomalies' towards 1."""
    fn = elementwise_loss(kind, "score_loss")
    loss = (w * fn(score_u, torch.zeros_like(score_u), reduction="none")).mean()
    if score_a is not None and score_a.numel() > 0:
        loss = loss + fn(score_a, torch.ones_like(score_a))
    return loss  # Eq. 12


class MNPLoss(torch.nn.Module):
    """The three losses of one mixed mini-batch: ``L_recon``, ``L_np`` and ``L_score``.

    Parameters
    ----------
    margin : float
        m1 of Eq. 4.
    beta : float
        Scale of the similarity inside the weights (Eq. 7).
    score_loss : {'smooth_l1', 'mse'}
        ``l`` of Eq. 12.
    normalize_weights : bool
        Rescale ``w_i`` to mean 1 within a batch.
    fixed_dec_target : bool
        Detach DEC's target ``p`` in Eq. 8.
    use_weights, use_recon_loss, use_prototype_loss : bool
        Ablation switches; a disabled loss is returned as 0 and ``use_weights=False``
        sets every ``w_i`` to 1.
    """

    n_losses = 3
    names = ("recon", "prototype", "score")

    def __init__(self, margin: float = 0.02, beta: float = 1.0, score_loss: str = "smooth_l1",
                 normalize_weights: bool = True, fixed_dec_target: bool = False, use_weights: bool = True,
                 use_recon_loss: bool = True, use_prototype_loss: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.beta = beta
        self.score_loss = score_loss
        self.normalize_weights = normalize_weights
        self.fixed_dec_target = fixed_dec_target
        self.use_weights = use_weights
        self.use_recon_loss = use_recon_loss
        self.use_prototype_loss = use_prototype_loss

    def forward(self, out_u, out_a=None) -> torch.Tensor:
        """Stack ``(L_recon, L_np, L_score)`` for unlabeled outputs ``out_u`` and anomalies' ``out_a``.

        Both are :class:`deepod_mnp.method.networks.MNPOutput`; ``out_a`` may be None
        when no anomaly is labeled.
        """
        if self.use_weights:
            w = normality_weights(out_u.similarity, self.beta, self.normalize_weights)
        else:
            w = torch.ones_like(out_u.score)
        has_a = out_a is not None and out_a.score.numel() > 0
        zero = out_u.score.new_zeros(())
        l_rec = recon_loss(out_u.recon_error, out_a.recon_error if has_a else None, w, self.margin) \
            if self.use_recon_loss else zero
        l_np = prototype_loss(out_u.similarity, w, out_a.similarity if has_a else None,
                              self.fixed_dec_target) \
            if self.use_prototype_loss else zero
        l_score = score_loss(out_u.score, w, out_a.score if has_a else None, self.score_loss)
        return torch.stack([l_rec, l_np, l_score])
