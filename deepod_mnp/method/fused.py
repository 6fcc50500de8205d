"""A fitted MNP ensemble as one torch module of batched matrix products (the scoring hot path on the CPU).

:class:`FusedMNP` is built from a fitted MNP's members (their weights are
copied, nothing is retrained) and computes what the members compute one by one
(``MNPEnsemble.forward``), with the work of all members batched:

* the linear layers of Eq. 1-2 (encoder and decoder) and of the scoring MLP of
  Eq. 11 are the members' own weights stacked: the first encoder layer, which
  every member applies to the same input, becomes one product of width
  ``M * h``; every later layer one block-diagonal (or per-member) product;
* the squared distances of Eq. 6 come from one block-diagonal product of the
  unit codes with the unit prototypes (``|z|^2 + |p|^2 - 2 z.p``) instead of
  ``torch.cdist`` per member;
* the rest is MNP's own code, called as it is: the reconstruction error
  (``member.recon_error``), the Student-t kernel of Eq. 6
  (:func:`~deepod_mnp.deepod_tabular.mnp.student_t`) and the scoring MLP's
  input (``member.score_input``, with ``recon_norm``'s error when set).

So no equation is written here again: the batched products are the members'
layers, and ``tests/test_serving_fused.py`` holds the scores equal to the
members' forward (to 1e-6) for every option that changes the network. MNP's
``inference_forward`` scores with it on the CPU (:func:`fused_for`, which logs
at DEBUG level why it does not apply when it does not); the ONNX export
(``serving/onnx.py``) writes it, with the fitted input scaling folded in front
(``x * mul + add``). ``serving/fused.py`` is its public home.

Per row and member the work is two linear layers each way plus the scoring
MLP; :func:`flops_per_row` counts it.
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from deepod_mnp.deepod_tabular.mnp import student_t

logger = logging.getLogger(__name__)

_EPS = 1e-12  # torch.nn.functional.normalize's default eps
# Fewest rows scored at once: CPU BLAS multiplies 1-3 rows with kernels that sum in another order than
# for 4 and more (the last bit of a score changed with the batch, scikit-learn's subset-invariance check).
# MKL still rounds some rows' last bit by batch shape (3e-8 on a score): tests/test_sklearn_checks.py
_MIN_ROWS = 4


def _members(model: Any) -> list[nn.Module]:
    net = getattr(model, "net", None)
    if net is None:
        raise ValueError("the model is not fitted (it has no `net`).")
    members = list(getattr(net, "members", [net]))
    for member in members:
        for name in ("ae", "prototypes", "scorer", "alpha", "recon_error", "score_input"):
            if not hasattr(member, name):
                raise TypeError(f"{type(member).__name__} is not an MNP member network (no `{name}`).")
    return members


def _activation(modules: list[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The members' shared activation of one layer as a function of the batched layer's output."""
    first = modules[0]
    if any(type(m) is not type(first) or m.extra_repr() != first.extra_repr() for m in modules):
        raise ValueError(f"the members' activations differ ({first!r}, ...).")
    if any(True for m in modules for _ in m.parameters()):
        raise ValueError(f"the activation {first!r} has weights of its own in each member.")
    if isinstance(first, nn.LeakyReLU):  # in place, on a fresh product: no second buffer
        slope = float(first.negative_slope)
        return lambda h: nn.functional.leaky_relu_(h, slope)
    return first


def _linear_and_activation(block: nn.Module) -> tuple[nn.Linear, nn.Module]:
    """The ``Linear`` and the activation of a ``Linear + activation`` block."""
    if not (isinstance(block, nn.Sequential) and len(block) == 2 and isinstance(block[0], nn.Linear)):
        raise TypeError(f"expected a Linear + activation block, got {block!r}")
    return block[0], block[1]


class FusedMNP(nn.Module):
    """The members of a fitted MNP ensemble stacked into batched matrix products.

    Parameters
    ----------
    members : sequence of MNPNet
        The fitted members (``model.net.members``); their weights are copied.
    scaling : (array, array), optional
        ``(mul, add)``: the input is ``x * mul + add`` before the network (the
        fitted ``scaler_``'s :meth:`~deepod_mnp.method.scaling.FeatureScaler.affine`).

    Notes
    -----
    Input: float32 tensor of shape (n, D). :meth:`forward` returns the score,
    shape (n,), the members' mean of Eq. 11's sigmoid output, as
    ``MNP.decision_function`` does.
    """

    def __init__(self, members: Sequence[nn.Module], *,
                 scaling: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member.")
        first = members[0]
        self.n_members = len(members)
        self.alpha = float(first.alpha)
        if any(float(m.alpha) != self.alpha for m in members):
            raise ValueError("all members must share alpha.")
        # MNP's own per-member code, called as it is (plain attributes, not submodules: no copy of weights)
        self._recon_error = [m.recon_error for m in members]
        self._score_input = [m.score_input for m in members]

        layers = [list(m.ae.encoder) + list(m.ae.decoder) for m in members]
        if len({len(blocks) for blocks in layers}) != 1 or len(layers[0]) < 2:
            raise ValueError("members must share one autoencoder depth of at least one layer each way.")
        self.n_layers = len(layers[0])
        self.n_encoder = len(first.ae.encoder)
        self.acts: list[Callable[[torch.Tensor], torch.Tensor]] = []
        for i in range(self.n_layers):
            lins, acts = zip(*[_linear_and_activation(blocks[i]) for blocks in layers])
            self.acts.append(_activation(list(acts)))
            if i == 0:  # the members' first layers read the same input: one (D, M*h) product
                w = torch.cat([_wt(lin) for lin in lins], dim=1)
            elif i < self.n_layers - 1:  # small middle layers: one block-diagonal product
                w = torch.block_diag(*[_wt(lin) for lin in lins])
            else:  # the last decoder layer, the widest: one product per member
                w = torch.stack([_wt(lin) for lin in lins])
            b = torch.stack([_b(lin) for lin in lins])
            self.register_buffer(f"w{i}", w.contiguous())
            self.register_buffer(f"b{i}", b.reshape(-1) if i < self.n_layers - 1 else b)
        self.n_features = int(self.w0.shape[0])
        self.rep_dim = int(first.ae.encoder[-1][0].out_features)
        protos = torch.stack([m.prototypes.detach().cpu().float() for m in members])  # (M, k, H)
        unit = protos / protos.norm(dim=2, keepdim=True).clamp_min(_EPS)
        self.n_prototypes = int(protos.shape[1])
        # block-diagonal (M*H, M*k): the dot products of each member's code with its own prototypes
        self.register_buffer("proto_bd", torch.block_diag(*[u.t() for u in unit]).contiguous())
        self.register_buffer("proto_sq", (unit ** 2).sum(dim=2).contiguous())  # (M, k)
        scorers = [m.scorer for m in members]
        for sc in scorers:
            if not (len(sc) == 4 and isinstance(sc[0], nn.Linear) and isinstance(sc[2], nn.Linear)
                    and isinstance(sc[3], nn.Sigmoid)):
                raise TypeError("each scoring MLP must be Linear, activation, Linear, Sigmoid.")
        self.score_act = _activation([sc[1] for sc in scorers])
        self.register_buffer("s1_w", torch.block_diag(*[_wt(sc[0]) for sc in scorers]).contiguous())
        self.register_buffer("s1_b", torch.cat([_b(sc[0]) for sc in scorers]))
        self.register_buffer("s2_w", torch.block_diag(*[_wt(sc[2]) for sc in scorers]).contiguous())
        self.register_buffer("s2_b", torch.cat([_b(sc[2]) for sc in scorers]))
        d_in = self.n_features
        if scaling is not None:
            mul, add = (torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float32)
                        for a in scaling)
            if mul.shape != (d_in,) or add.shape != (d_in,):
                raise ValueError(f"scaling vectors must have shape ({d_in},).")
            self.register_buffer("in_mul", mul)
            self.register_buffer("in_add", add)
        self.has_scaling = scaling is not None

    @classmethod
    def from_model(cls, model: Any) -> FusedMNP:
        """Build from a fitted MNP: its members and its ``scaler_`` (if any), on the CPU."""
        members = _members(model)
        scaler = getattr(model, "scaler_", None)
        return cls(members, scaling=None if scaler is None else scaler.affine()).eval()

    # ------------------------------------------------------------------ forward
    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's score, (n, M), and the latent codes side by side, (n, M*H)."""
        if self.has_scaling:
            x = x * self.in_mul + self.in_add
        n, m = x.shape[0], self.n_members
        # the members' layers of Eq. 1-2 batched (tests/test_serving_fused.py holds them equal)
        h = self.acts[0](torch.addmm(self.b0, x, self.w0))  # (n, M*h)
        z = h
        for i in range(1, self.n_layers - 1):
            h = self.acts[i](torch.addmm(getattr(self, f"b{i}"), h, getattr(self, f"w{i}")))
            if i == self.n_encoder - 1:
                z = h
        width = h.shape[1] // m
        last = self.n_layers - 1
        w_last, b_last = getattr(self, f"w{last}"), getattr(self, f"b{last}")
        z_flat, z = z, z.reshape(n, m, self.rep_dim)
        z_unit = z / torch.linalg.vector_norm(z, dim=2, keepdim=True).clamp_min(_EPS)
        dots = (z_unit.reshape(n, m * self.rep_dim) @ self.proto_bd).reshape(n, m, self.n_prototypes)
        z_sq = (z_unit * z_unit).sum(dim=2, keepdim=True)
        d2 = (z_sq + self.proto_sq - 2.0 * dots).clamp_min(0.0)  # (n, M, k): Eq. 6's distances, batched
        s_max = student_t(d2.amin(dim=2), self.alpha)  # the similarity falls as the distance grows
        feats = []
        for j in range(m):  # each member's error and its scoring MLP's input
            x_hat = self.acts[last](torch.addmm(b_last[j], h[:, j * width:(j + 1) * width], w_last[j]))
            e = self._recon_error[j](x, x_hat)
            feats.append(self._score_input[j](x, e, z[:, j], s_max[:, j:j + 1]))
        hid = self.score_act(torch.addmm(self.s1_b, torch.cat(feats, dim=1), self.s1_w))
        return torch.sigmoid(torch.addmm(self.s2_b, hid, self.s2_w)), z_flat  # (n, M): Eq. 11's MLPs, batched

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly scores, shape (n,), of float32 rows of shape (n, D)."""
        return self._parts(x)[0].mean(dim=1)

    @property
    def block_rows(self) -> int:
        """Rows per pass that keep a pass's intermediates in a core's cache (8192 for D <= 64,
        about 2,600 at D = 200): what :meth:`score_and_rep` and :func:`fused_scores` use."""
        return int(np.clip(524_288 // self.n_features, 1024, 8192))

    def score_and_rep(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent codes side by side, (n, M*H) (``decision_function(return_rep=True)``'s), and scores,
        in passes of :attr:`block_rows` rows."""
        n = x.shape[0]
        if 0 < n < _MIN_ROWS:  # BLAS sums fewer rows in another order: pad them to a batch, like any other
            z, score = self.score_and_rep(torch.cat([x, x[:1].expand(_MIN_ROWS - n, -1)]))
            return z[:n], score[:n]
        outs = [self._parts(block) for block in x.split(self.block_rows)]
        if len(outs) == 1:
            return outs[0][1], outs[0][0].mean(dim=1)
        return torch.cat([o[1] for o in outs]), torch.cat([o[0].mean(dim=1) for o in outs])


def _wt(linear: nn.Linear) -> torch.Tensor:
    return linear.weight.detach().cpu().float().t()


def _b(linear: nn.Linear) -> torch.Tensor:
    if linear.bias is None:  # bias=False: a zero bias adds nothing
        return torch.zeros(linear.out_features)
    return linear.bias.detach().cpu().float()


def flops_per_row(fused: FusedMNP) -> int:
    """Floating point operations of one row's score in the members' own layers (2 per multiply-add).

    Counts each member's dense layers and prototype dot products, not the
    zeros of the block-diagonal products nor the elementwise operations.
    """
    m = fused.n_members
    macs = fused.w0.numel()
    for i in range(1, fused.n_layers - 1):
        macs += getattr(fused, f"w{i}").numel() // m
    macs += getattr(fused, f"w{fused.n_layers - 1}").numel()
    macs += fused.proto_bd.numel() // m + (fused.s1_w.numel() + fused.s2_w.numel()) // m
    return 2 * macs


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> (key, FusedMNP or None)


def fused_for(model: Any) -> FusedMNP | None:
    """The fused scorer of a fitted MNP's network on the CPU, cached; None where it does not apply.

    For the detectors' scoring hot path: the members only, *without* the input
    scaling (the detector applies its ``scaler_`` before the network). It does
    not apply to a network in training mode or off the CPU (the network's own
    forward scores there), nor to members it cannot stack (activations with
    weights of their own, such as ``act='PReLU'``); the first time a network is
    scored unfused, the reason is logged at DEBUG level
    (``logging.getLogger('deepod_mnp.method.fused')``). The cache is held
    beside the network (a weak mapping, no attribute on the detector) and
    keyed by its parameters' identities and version counters, so a refit,
    ``load_state_dict`` or an optimizer step rebuilds it.
    """
    net = getattr(model, "net", None)
    members = getattr(net, "members", None)
    if members is None:
        return None
    params = list(net.parameters())
    devices = sorted({p.device.type for p in params})
    key = (net.training, tuple(devices), tuple(id(p) for p in params), tuple(p._version for p in params))
    cached = _CACHE.get(net)
    if cached is not None and cached[0] == key:
        return cached[1]
    fused, why = None, None
    if net.training:
        why = "the network is in training mode"
    elif devices != ["cpu"]:
        why = f"the network is on {', '.join(devices)}, not the CPU"
    else:
        try:
            fused = FusedMNP(members).eval()
        except (TypeError, ValueError) as exc:
            why = f"its members cannot be stacked: {exc}"
    if why is not None:
        logger.debug("%s scores with the network's own forward, not the fused scorer: %s.",
                     type(model).__name__, why)
    _CACHE[net] = (key, fused)
    return fused
