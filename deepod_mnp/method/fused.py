"""A fitted MNP ensemble as one torch module of batched matrix products (the scoring hot path).

:class:`FusedMNP` is built from a fitted MNP detector's members
(read through their fitted modules, never retrained): the members' first
encoder layers, which all read the same input, become one matrix product of
width ``M * h``; every later layer becomes one batched product over the M
members. The module computes exactly what ``MNP.decision_function`` computes
(Eq. 1-2, 6, 11 and the member mean), up to float rounding, and folds an
affine input scaling (``x * mul + add``) in front of it. MNP's
``inference_forward`` scores with it (:func:`fused_for`), and it is the module
that the ONNX export (``serving/onnx.py``) writes. It lives in ``method/`` because
the detectors may import only ``method/`` (CONTRIBUTING.md, "Architecture");
``serving/fused.py`` is its public home.

Per row and member the work is two linear layers each way plus the scoring
MLP; :func:`flops_per_row` counts it.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from deepod_mnp.method.score_head import relative_log_error

_EPS = 1e-12  # torch.nn.functional.normalize's default eps
# Fewest rows scored at once: CPU BLAS multiplies 1-3 rows with kernels that sum in another order than
# for 4 and more (the last bit of a score changed with the batch, scikit-learn's subset-invariance check)
_MIN_ROWS = 4


class Components(NamedTuple):
    """Per-row outputs of :meth:`FusedMNP.components` (each shape (n,), member means)."""

    score: torch.Tensor
    reconstruction_error: torch.Tensor
    max_similarity: torch.Tensor
    nearest_prototype: torch.Tensor  # int64, index into the ensemble's prototypes
    normality_weight: torch.Tensor


def _linear_and_slope(block: nn.Module) -> tuple[nn.Linear, float]:
    """The ``Linear`` of a ``Linear + LeakyReLU`` block and the activation's negative slope."""
    linear, act = block[0], block[1]
    if not isinstance(linear, nn.Linear) or not isinstance(act, nn.LeakyReLU):
        raise TypeError(f"expected a Linear + LeakyReLU block, got {block!r}")
    return linear, float(act.negative_slope)


def _members(model: Any) -> list[nn.Module]:
    net = getattr(model, "net", None)
    if net is None:
        raise ValueError("the model is not fitted (it has no `net`).")
    members = list(getattr(net, "members", [net]))
    for member in members:
        for name in ("ae", "prototypes", "scorer", "alpha", "recon_loss", "recon_in_score"):
            if not hasattr(member, name):
                raise TypeError(f"{type(member).__name__} is not an MNP member network (no `{name}`).")
    return members


def affine_scaling(scaler: Any, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mul, add)`` such that ``scaler.transform(X) == X * mul + add``, or None for no scaler.

    StandardScaler, RobustScaler, MinMaxScaler (``clip=False``) and
    MaxAbsScaler are read from their fitted attributes. Any other fitted
    transformer (a Pipeline of scalers, a FunctionTransformer, ...) is probed:
    its output at 0 gives ``add``, at 1 gives ``mul``, and the affine form is
    then checked on random rows; a transformer that is not per-feature affine
    (QuantileTransformer, PowerTransformer, a clipping MinMaxScaler) raises
    ``NotImplementedError``.

    Parameters
    ----------
    scaler : fitted scikit-learn transformer or None
        The detector's ``scaler_``.
    n_features : int
        Number of input features.

    Returns
    -------
    (ndarray, ndarray) or None
        Float64 vectors of length ``n_features``.
    """
    if scaler is None:
        return None
    from sklearn import preprocessing as pp

    ones, zeros = np.ones(n_features), np.zeros(n_features)
    kind = type(scaler)
    if kind is pp.StandardScaler:
        mean = scaler.mean_ if scaler.with_mean else zeros
        scale = scaler.scale_ if scaler.with_std else ones
        return 1.0 / scale, -mean / scale
    if kind is pp.RobustScaler:
        center = scaler.center_ if scaler.with_centering else zeros
        scale = scaler.scale_ if scaler.with_scaling else ones
        return 1.0 / scale, -center / scale
    if kind is pp.MinMaxScaler and not scaler.clip:
        return np.asarray(scaler.scale_, float), np.asarray(scaler.min_, float)
    if kind is pp.MaxAbsScaler:
        return 1.0 / scaler.scale_, zeros
    # anything else: probe and verify
    add = np.asarray(scaler.transform(zeros[None]), dtype=np.float64)[0]
    mul = np.asarray(scaler.transform(ones[None]), dtype=np.float64)[0] - add
    probe = np.random.default_rng(0).normal(0.0, 3.0, size=(64, n_features))
    got = np.asarray(scaler.transform(probe), dtype=np.float64)
    if got.shape != probe.shape or not np.allclose(got, probe * mul + add, rtol=1e-6, atol=1e-9):
        raise NotImplementedError(
            f"{kind.__name__} is not a per-feature affine transformer, so it cannot be folded into the "
            "fused scorer or the ONNX graph. Supported: StandardScaler, RobustScaler, MinMaxScaler "
            "(clip=False), MaxAbsScaler and any transformer that is x * a + b per feature. A "
            "QuantileTransformer would need its quantile table as a piecewise-linear interpolation "
            "in the graph (ONNX has no searchsorted operator), or scoring already-transformed input.")
    return mul, add


class FusedMNP(nn.Module):
    """The members of a fitted MNP ensemble stacked into batched matrix products.

    Parameters
    ----------
    members : sequence of MNPNet
        The fitted members (``model.net.members``); their weights are copied.
    beta : float, default=1.0
        Similarity scale of the normality weight ``w_i`` (Eq. 7), used by
        :meth:`components` only.
    scaling : (array, array), optional
        ``(mul, add)``: the input is ``x * mul + add`` before the network (see
        :func:`affine_scaling`).

    Notes
    -----
    Input: float32 tensor of shape (n, D). :meth:`forward` returns the score,
    shape (n,), the members' mean of Eq. 11's sigmoid output, as
    ``MNP.decision_function`` does.
    """

    def __init__(self, members: Sequence[nn.Module], *, beta: float = 1.0,
                 scaling: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member.")
        first = members[0]
        self.n_members = len(members)
        self.alpha = float(first.alpha)
        self.recon_loss = str(first.recon_loss)
        self.recon_in_score = bool(first.recon_in_score)
        self.recon_norm = getattr(first, "recon_norm", None)
        self.head_features = bool(getattr(first, "head_features", False))
        self.beta = float(beta)
        if self.recon_loss not in ("smooth_l1", "mse"):
            raise ValueError(f"unsupported recon_loss {self.recon_loss!r}")
        for m in members[1:]:
            if (float(m.alpha), str(m.recon_loss), bool(m.recon_in_score), getattr(m, "recon_norm", None),
                    bool(getattr(m, "head_features", False))) != (
                    self.alpha, self.recon_loss, self.recon_in_score, self.recon_norm, self.head_features):
                raise ValueError("all members must share alpha, recon_loss, recon_in_score, recon_norm and "
                                 "head_features.")

        def linears(blocks: list[nn.Module]) -> tuple[list[nn.Linear], float]:
            pairs = [_linear_and_slope(b) for b in blocks]
            slopes = {s for _, s in pairs}
            if len(slopes) != 1:
                raise ValueError("members differ in their LeakyReLU slopes.")
            return [lin for lin, _ in pairs], slopes.pop()

        layers = [list(m.ae.encoder) + list(m.ae.decoder) for m in members]
        if len({len(blocks) for blocks in layers}) != 1 or len(layers[0]) < 2:
            raise ValueError("members must share one autoencoder depth of at least one layer each way.")
        self.n_layers = len(layers[0])
        self.n_encoder = len(first.ae.encoder)
        self.slopes: list[float] = []
        for i in range(self.n_layers):
            lins, slope = linears([blocks[i] for blocks in layers])
            self.slopes.append(slope)
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
            if not (len(sc) == 4 and isinstance(sc[0], nn.Linear) and isinstance(sc[1], nn.LeakyReLU)
                    and isinstance(sc[2], nn.Linear) and isinstance(sc[3], nn.Sigmoid)):
                raise TypeError("each scoring MLP must be Linear, LeakyReLU, Linear, Sigmoid.")
        self.score_slope = float(scorers[0][1].negative_slope)
        n_head = self.rep_dim + 2  # e_i, the unit code and s_i; the input features (head_features) after them
        self.register_buffer("s1_w", torch.block_diag(*[_wt(sc[0])[:n_head] for sc in scorers]).contiguous())
        if self.head_features:  # the input's share of each head's first layer: one (D, M*hidden) product
            x_part = torch.cat([_wt(sc[0])[n_head:] for sc in scorers], dim=1)
            self.register_buffer("s1x_w", x_part.contiguous())
        if self.recon_norm is not None:  # each member's e_ref, (M,)
            refs = [m.recon_ref.detach().cpu().float() for m in members]
            self.register_buffer("recon_ref", torch.stack(refs))
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
        """Build from a fitted MNP: its members, ``beta`` and its ``scaler_`` (if any), on the CPU."""
        members = _members(model)
        n_features = int(getattr(model, "n_net_features_", model.n_features_in_))  # the network's input
        scaling = affine_scaling(getattr(model, "scaler_", None), n_features)
        fused = cls(members, beta=float(getattr(model, "beta", 1.0)), scaling=scaling)
        return fused.eval()

    # ------------------------------------------------------------------ forward
    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per member (as (n, M) columns): score, reconstruction error, largest similarity; the
        squared distances to every prototype, (n, M, k); the latent codes side by side, (n, M*H)."""
        if self.has_scaling:
            x = x * self.in_mul + self.in_add
        n, m = x.shape[0], self.n_members
        leaky = nn.functional.leaky_relu_  # in place, on fresh products only
        h = leaky(torch.addmm(self.b0, x, self.w0), self.slopes[0])  # (n, M*h)
        z = h
        for i in range(1, self.n_layers - 1):
            h = leaky(torch.addmm(getattr(self, f"b{i}"), h, getattr(self, f"w{i}")), self.slopes[i])
            if i == self.n_encoder - 1:
                z = h
        width = h.shape[1] // m
        last = self.n_layers - 1
        w_last, b_last, errors = getattr(self, f"w{last}"), getattr(self, f"b{last}"), []
        loss = (nn.functional.smooth_l1_loss if self.recon_loss == "smooth_l1" else nn.functional.mse_loss)
        for j in range(m):  # reconstruction error e_i of each member, Eq. 2-3
            x_hat = leaky(torch.addmm(b_last[j], h[:, j * width:(j + 1) * width], w_last[j]), self.slopes[-1])
            errors.append(loss(x_hat, x, reduction="none").mean(dim=1))
        e = torch.stack(errors, dim=1)  # (n, M)
        z_flat = z
        z = z.reshape(n, m, self.rep_dim)
        z_unit = z / torch.linalg.vector_norm(z, dim=2, keepdim=True).clamp_min(_EPS)
        dots = (z_unit.reshape(n, m * self.rep_dim) @ self.proto_bd).reshape(n, m, self.n_prototypes)
        z_sq = (z_unit * z_unit).sum(dim=2, keepdim=True)
        d2 = (z_sq + self.proto_sq - 2.0 * dots).clamp_min(0.0)  # (n, M, k), Eq. 6's squared distance
        s_max = (1.0 + d2.amin(dim=2) / self.alpha).pow(-(self.alpha + 1.0) / 2.0)  # s decreases with d2
        if not self.recon_in_score:
            e_in = torch.zeros_like(e)
        else:
            e_in = e if self.recon_norm is None else relative_log_error(e, self.recon_ref)
        feats = torch.cat([e_in.unsqueeze(2), z_unit, s_max.unsqueeze(2)], dim=2).reshape(n, -1)
        pre = torch.addmm(self.s1_b, feats, self.s1_w)
        if self.head_features:
            pre = pre.addmm_(x, self.s1x_w)
        hid = leaky(pre, self.score_slope)  # fresh product
        score = torch.sigmoid(torch.addmm(self.s2_b, hid, self.s2_w))  # (n, M), Eq. 11
        return score, e, s_max, d2, z_flat

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
            return outs[0][4], outs[0][0].mean(dim=1)
        return torch.cat([o[4] for o in outs]), torch.cat([o[0].mean(dim=1) for o in outs])

    def components(self, x: torch.Tensor) -> Components:
        """The score and the explanation columns of ``MNP.score_components``, member means."""
        score, e, s_max, d2, _ = self._parts(x)
        nearest = d2.reshape(x.shape[0], -1).argmin(dim=1)  # member-major prototype index
        return Components(score.mean(1), e.mean(1), s_max.mean(1), nearest,
                          torch.sigmoid(self.beta * s_max).mean(1))


def _wt(linear: nn.Linear) -> torch.Tensor:
    return linear.weight.detach().cpu().float().t()


def _b(linear: nn.Linear) -> torch.Tensor:
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
    if fused.head_features:
        macs += fused.s1x_w.numel()
    return 2 * macs


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> (key, FusedMNP)


def fused_for(model: Any) -> FusedMNP | None:
    """The fused scorer of a fitted MNP's network on the CPU, cached; None otherwise.

    For the detectors' scoring hot path: the members only, *without* the input
    scaling (the detector applies its ``scaler_`` before the network). None
    when the network is not an MNP ensemble, lives off the CPU, or is in
    training mode. The cache is held beside the network (a weak mapping, no
    attribute on the detector) and keyed by its parameters' identities and
    version counters, so a refit, ``load_state_dict`` or an optimizer step
    rebuilds it.
    """
    net = getattr(model, "net", None)
    members = getattr(net, "members", None)
    if members is None or net.training:
        return None
    params = list(net.parameters())
    if not params or any(p.device.type != "cpu" for p in params):
        return None
    beta = float(getattr(model, "beta", 1.0))
    key = (beta, tuple(id(p) for p in params), tuple(p._version for p in params))
    cached = _CACHE.get(net)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        fused = FusedMNP(members, beta=beta).eval()
    except (TypeError, ValueError, AttributeError):  # not the MNP member layout: score unfused
        return None
    _CACHE[net] = (key, fused)
    return fused
