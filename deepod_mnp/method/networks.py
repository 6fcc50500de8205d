"""Networks of MNP: the autoencoder (Eq. 1-2), the prototypes and the scoring MLP (Eq. 11)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from deepod_mnp.method.losses import reconstruction_error
from deepod_mnp.method.similarity import max_similarity, student_t_similarity

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


def hidden_width(n_features: int, rep_dim: int) -> int:
    """Width of the autoencoder's hidden layer: halfway from ``n_features`` to ``rep_dim``.

    This is the authors' choice (``D - (D - H) // 2``), so the network grows
    with the input instead of being a fixed size.
    """
    return max(1, n_features - (n_features - rep_dim) // 2)


def encoder_dims(n_features: int, rep_dim: int, hidden_dims: list[int] | None = None) -> list[int]:
    """Widths of the encoder's layers, the code last: the paper's ``[hidden_width, rep_dim]`` by default.

    ``hidden_dims`` replaces the hidden layer(s): ``[*hidden_dims, rep_dim]``
    (the decoder mirrors them).
    """
    return [*(hidden_dims or [hidden_width(n_features, rep_dim)]), rep_dim]


def make_activation(act: str) -> nn.Module:
    """A new activation module named ``act`` in ``torch.nn`` (``'LeakyReLU'`` is the paper's)."""
    return getattr(nn.modules.activation, act)()


def _block(n_in: int, n_out: int, act: str = "LeakyReLU", bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out, bias=bias), make_activation(act))


class AutoEncoder(nn.Module):
    """Symmetric MLP autoencoder built from ``Linear + activation`` blocks.

    ``encoder[i]`` and ``decoder[-1 - i]`` form the i-th denoising autoencoder of
    the layer-wise pretraining (see :mod:`deepod_mnp.method.prototypes`).
    Every block uses ``act`` (the paper's LeakyReLU by default) except the
    decoder's output block, which keeps LeakyReLU whatever ``act`` is, so that
    a reconstruction can take any sign (ReLU or Sigmoid there could not
    reconstruct negative inputs). ``bias`` is the linear layers' bias.
    """

    def __init__(self, n_features: int, dims: list[int], act: str = "LeakyReLU", bias: bool = True) -> None:
        super().__init__()
        widths = [n_features, *dims]
        self.encoder = nn.Sequential(*[_block(a, b, act, bias) for a, b in zip(widths[:-1], widths[1:])])
        rev = widths[::-1]
        acts = [act] * (len(rev) - 2) + ["LeakyReLU"]
        self.decoder = nn.Sequential(*[_block(a, b, f, bias) for a, b, f in zip(rev[:-1], rev[1:], acts)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # Eq. 1
        return z, self.decoder(z)  # Eq. 2


class MNPOutput(NamedTuple):
    """Everything one forward pass of :class:`MNPNet` computes, per sample."""

    z: torch.Tensor  # latent code, (n, H)
    recon_error: torch.Tensor  # e_i = l(x_i, x_hat_i), (n,)
    similarity: torch.Tensor  # s_ij, (n, k)
    score: torch.Tensor  # anomaly score in (0, 1), (n,)


class MNPNet(nn.Module):
    """Autoencoder + k normal prototypes + unified scoring MLP.

    Parameters
    ----------
    n_features : int
        Input dimension D.
    rep_dim : int
        Latent dimension H.
    n_prototypes : int
        Number k of normal prototypes.
    alpha : float
        Degrees of freedom of the Student-t similarity (Eq. 6).
    recon_loss : {'smooth_l1', 'mse'}
        Per-feature error ``l`` averaged into ``e_i``.
    recon_in_score : bool
        Feed ``e_i`` to the scoring MLP (False is the paper's "w/o Decoder" ablation).
    score_hidden : int
        Width of the scoring MLP's hidden layer.
    hidden_dims : list of int, optional
        The encoder's hidden layer widths (the decoder mirrors them); None is
        the paper's single layer of :func:`hidden_width` units.
    act : str
        Activation of the autoencoder's blocks (but the decoder's output, see
        :class:`AutoEncoder`) and of the scoring MLP's hidden layer.
    bias : bool
        Bias of every linear layer.
    head_features : bool
        Also feed the input ``x`` to the scoring MLP (beyond the paper): the
        head can then use what separates the labeled anomalies in the input
        even where the autoencoder's latent code has discarded it.
    recon_norm : {'log'} or None
        How ``e_i`` enters the scoring MLP: ``'log'`` feeds
        :func:`relative_log_error` against the buffer ``recon_ref`` (set by
        :meth:`set_recon_ref`), None feeds ``e_i`` itself (the paper).
    """

    def __init__(self, n_features: int, rep_dim: int = 8, n_prototypes: int = 1,
                 alpha: float = 1.0, recon_loss: str = "smooth_l1",
                 recon_in_score: bool = True, score_hidden: int = 16,
                 hidden_dims: list[int] | None = None, act: str = "LeakyReLU", bias: bool = True,
                 head_features: bool = False, recon_norm: str | None = None) -> None:
        super().__init__()
        if recon_norm is not None and recon_norm not in RECON_NORMS:
            raise ValueError(f"recon_norm must be one of {RECON_NORMS} or None, got {recon_norm!r}.")
        self.ae = AutoEncoder(n_features, encoder_dims(n_features, rep_dim, hidden_dims), act=act, bias=bias)
        self.prototypes = nn.Parameter(torch.zeros(n_prototypes, rep_dim))
        self.alpha = alpha
        self.recon_loss = recon_loss
        self.recon_in_score = recon_in_score
        self.head_features = head_features
        self.recon_norm = recon_norm
        if recon_norm is not None:  # only then in the state dict, so the paper's checkpoints load as they are
            self.register_buffer("recon_ref", torch.ones(()))
        # Eq. 11: phi(cat(e_i, z_i, s_i)), an MLP ending in a sigmoid (with x appended if head_features)
        self.scorer = nn.Sequential(
            nn.Linear(rep_dim + 2 + (n_features if head_features else 0), score_hidden, bias=bias),
            make_activation(act),
            nn.Linear(score_hidden, 1, bias=bias), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> MNPOutput:
        z, x_hat = self.ae(x)
        e = reconstruction_error(x, x_hat, self.recon_loss)
        s = student_t_similarity(z, self.prototypes, self.alpha)
        s_max = max_similarity(s)
        e_in = self.score_error(e)
        z_unit = nn.functional.normalize(z, dim=1)
        head_in = [e_in[:, None], z_unit, s_max[:, None]] + ([x] if self.head_features else [])
        score = self.scorer(torch.cat(head_in, dim=1)).squeeze(1)
        return MNPOutput(z, e, s, score)

    def score_error(self, e: torch.Tensor) -> torch.Tensor:
        """``e_i`` as the scoring MLP reads it (zeros for the "w/o Decoder" ablation)."""
        if not self.recon_in_score:
            return torch.zeros_like(e)
        return e if self.recon_norm is None else relative_log_error(e, self.recon_ref)

    @torch.no_grad()
    def set_recon_ref(self, x: torch.Tensor) -> None:
        """Set ``recon_ref`` to the median reconstruction error of the rows ``x`` (no-op without
        ``recon_norm``)."""
        if self.recon_norm is not None:
            _, x_hat = self.ae(x)
            ref = reconstruction_error(x, x_hat, self.recon_loss).median().clamp_min(1e-12)
            self.recon_ref.copy_(ref)


def ensemble_mean(values: list[torch.Tensor]) -> torch.Tensor:
    """The members' mean of a per-sample quantity: the ensemble's score is the mean of its members'."""
    return torch.stack(values).mean(dim=0)


class MNPEnsemble(nn.Module):
    """Independently trained :class:`MNPNet` members whose scores are averaged.

    The output stacks what the members compute: ``z`` and ``similarity`` are
    concatenated over members (so prototype ``j`` of the ensemble is a row of
    :attr:`prototypes`), ``recon_error`` and ``score`` are member means.
    """

    def __init__(self, members: list[MNPNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def prototypes(self) -> torch.Tensor:
        """All members' prototypes, member by member, shape (n_members * k, H)."""
        return torch.cat([m.prototypes for m in self.members])

    def forward(self, x: torch.Tensor) -> MNPOutput:
        outs = self.member_outputs(x)
        if len(outs) == 1:
            return outs[0]
        return MNPOutput(
            z=torch.cat([o.z for o in outs], dim=1),
            recon_error=ensemble_mean([o.recon_error for o in outs]),
            similarity=torch.cat([o.similarity for o in outs], dim=1),
            score=ensemble_mean([o.score for o in outs]),
        )

    def member_outputs(self, x: torch.Tensor) -> list[MNPOutput]:
        """Each member's own forward pass (what :meth:`forward` combines)."""
        return [m(x) for m in self.members]
