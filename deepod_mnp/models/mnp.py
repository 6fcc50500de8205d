"""MNP as deepod-mnp ships it: DeepOD's MNP with the product layer on top.

The method (networks, losses, pretraining, prototypes, dynamic weight
averaging, mixed batches and DeepOD's hooks) is
:class:`deepod_mnp.deepod_tabular.mnp.MNP`, the module DeepOD receives as
``deepod/models/tabular/mnp.py``. This class puts
:class:`deepod_mnp.base.BaseDetector` in front of it: validation, input
scaling, device and seeds, the training loop (the steps of DeepOD's, with
logging and a divergence check), fused chunked scoring, checksummed
persistence and PyOD's API. The options beyond the paper are thin overrides
here: ``recon_norm``, ``epoch_steps='auto'`` and ``-1``.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted
from torch.nn import functional as F

from deepod_mnp._params import (
    BOOLEAN,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_REAL,
    NONE,
    POSITIVE_INT,
    POSITIVE_REAL,
    Options,
)
from deepod_mnp.base import BaseDetector, TrainingData, store_params
from deepod_mnp.deepod_tabular.mnp import (
    KMEANS_MAX_SAMPLES,
    MixedBatchLoader,
    MNPEnsemble,
    MNPLoss,
    MNPNet,
    auto_epoch_steps,
    normality_weights,
)
from deepod_mnp.deepod_tabular.mnp import MNP as DeepODMNP
from deepod_mnp.method.fused import fused_for
from deepod_mnp.method.sampling import FULL_PASS, full_pass_batches, resolve_epoch_steps
from deepod_mnp.method.scaling import DEFAULT_SCALER
from deepod_mnp.method.score_head import RECON_NORMS, relative_log_error

logger = logging.getLogger(__name__)

_LOSS_COLUMNS = [f"loss_{n}" for n in MNPLoss.names] + [f"weight_{n}" for n in MNPLoss.names]
#: Adam's eps in DeepOD's ``BaseDeepAD._training`` (main branch), so that both loops train alike
DEEPOD_ADAM_EPS = 1e-6


class MemberNet(MNPNet):
    """One member of deepod-mnp's MNP: DeepOD's :class:`MNPNet` and ``recon_norm``.

    ``recon_norm='log'`` feeds the scoring MLP
    :func:`~deepod_mnp.method.score_head.relative_log_error` against the buffer
    ``recon_ref`` (set by :meth:`set_recon_ref`) instead of ``e_i``. With the
    default (None) it is :class:`MNPNet` itself, weight for weight.
    """

    def __init__(self, n_features: int, dims: list[int], *, recon_norm: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(n_features, dims, **kwargs)
        if recon_norm is not None and recon_norm not in RECON_NORMS:
            raise ValueError(f"recon_norm must be one of {RECON_NORMS} or None, got {recon_norm!r}.")
        self.recon_norm = recon_norm
        if recon_norm is not None:  # only then in the state dict: the paper's network has no such buffer
            self.register_buffer("recon_ref", torch.ones(()))

    def score_input(self, x: torch.Tensor, e: torch.Tensor, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """MNPNet's ``cat(e_i, z_i, s_i)``, with ``log(e_i / e_ref)`` as ``e_i`` under ``recon_norm``."""
        e = e if self.recon_norm is None else relative_log_error(e, self.recon_ref)
        return super().score_input(x, e, z, s)

    @torch.no_grad()
    def set_recon_ref(self, x: torch.Tensor, chunk: int = 8192) -> None:
        """Set ``recon_ref`` to the median reconstruction error of the rows ``x`` (no-op without
        ``recon_norm``)."""
        if self.recon_norm is not None:
            e = torch.cat([self.recon_error(part, self.ae(part)[1]) for part in x.split(chunk)])
            self.recon_ref.copy_(e.median().clamp_min(1e-12))


class MNP(BaseDetector, DeepODMNP):
    """Multi-Normal Prototypes weakly supervised anomaly detector (Dong et al.).

    An autoencoder learns latent codes of the unlabeled data; ``k`` normal
    prototypes in the latent space are refined by deep embedding clustering and
    a contrastive loss against the labeled anomalies; each unlabeled sample is
    weighted by its likelihood of being normal; and an MLP scores a sample from
    its reconstruction error, latent code and largest prototype similarity. The
    three losses are balanced by dynamic weight averaging. Higher scores are
    more anomalous.

    Parameters
    ----------
    epochs : int, default=5
        Training epochs after pretraining (at least 1). Short training is deliberate: without
        validation labels to early-stop on, longer training overfits the few
        labeled anomalies (see BENCHMARKS.md, "How the defaults were chosen").
    epoch_steps : int, -1 or 'auto', default='auto'
        Mini-batches per epoch, of training and of each pretraining stage.
        ``'auto'`` makes an epoch as many batches as one pass over the
        unlabeled samples takes, clipped to 8..16 batches: small data sets
        train briefly, and from ``16 * batch_size`` unlabeled samples up an
        epoch costs the same whatever N is. The development splits chose it
        over a fixed 64 and over the earlier cap of 64 (see BENCHMARKS.md, "How
        the defaults were chosen"). ``-1`` is DeepOD's full pass: each epoch
        (and each pretraining epoch) puts every unlabeled sample in exactly one
        of its ``ceil(n_unlabeled / batch_size)`` batches (the last one topped
        up with other unlabeled samples to ``batch_size``); each batch still
        adds ``anomaly_batch_size`` labeled anomalies drawn with replacement.
        A positive int is that many batches, each drawn afresh.
    batch_size : int, default=128
        Unlabeled samples per mini-batch (``b_u``).
    anomaly_batch_size : int, default=32
        Labeled anomalies per mini-batch (``b_a``), drawn with replacement.
    lr : float, default=5e-3
        Adam learning rate.
    weight_decay : float, default=5e-4
        Adam weight decay.
    rep_dim : int, default=8
        Latent dimension H. The hidden width is ``D - (D - H) // 2``.
    hidden_dims : None, str, int or list of int, default=None
        The encoder's hidden layer widths, in DeepOD's forms (``'100,50'``,
        ``100``, ``[100, 50]``); the decoder mirrors them. None is the paper's
        single hidden layer of ``D - (D - H) // 2`` units.
    act : str, default='LeakyReLU'
        Activation (DeepOD's ``act``, one of ``deepod_mnp._params.ACTIVATION_NAMES``)
        of every autoencoder block but the decoder's output, which keeps the
        paper's LeakyReLU so that reconstructions can take any sign, and of
        the scoring MLP's hidden layer. LeakyReLU is the paper's.
    bias : bool, default=True
        Bias of every linear layer (DeepOD's ``bias``; the paper's network has
        biases, DeepOD's detectors default to False).
    n_prototypes : int or 'auto', default='auto'
        Number of normal prototypes k; ``'auto'`` picks k in 2..10 by the
        silhouette score of k-means on a random subsample of latent codes.
        ``n_prototypes=1`` is the paper's "w/o MNP" ablation.
    alpha : float, default=1.0
        Degrees of freedom of the Student-t similarity (Eq. 6).
    beta : float, default=1.0
        Similarity scale in the weights ``w_i`` (Eq. 7).
    margin : float, default=0.02
        Reconstruction margin m1 (Eq. 4).
    dwa_temperature : float, default=2.0
        Temperature of dynamic weight averaging (Eq. 13).
    pretrain_epochs : int, default=2
        Epochs (of ``epoch_steps`` batches) of each stage of the layer-wise
        denoising pretraining; 0 skips pretraining.
    pretrain_noise : float, default=0.05
        Standard deviation of the Gaussian input noise while pretraining.
    use_recon_loss : bool, default=True
        False drops ``L_recon`` (ablation "w/o L_recon").
    use_prototype_loss : bool, default=True
        False drops ``L_np`` (ablation "w/o L_np").
    use_weights : bool, default=True
        False sets every ``w_i`` to 1 (ablation "w/o w_i").
    recon_in_score : bool, default=True
        False hides ``e_i`` from the scoring MLP (ablation "w/o Decoder").
    recon_norm : {'log'} or None, default=None
        Beyond the paper: how ``e_i`` enters the scoring MLP. None feeds the
        raw ``e_i`` (the paper; about 1e-3 on min-max features, beside a
        unit-norm code, so the head all but ignores it). ``'log'`` feeds
        ``log(e_i / e_ref)``, with ``e_ref`` each member's median error on the
        unlabeled training rows after pretraining, so the error is on the
        code's scale. It is :class:`~deepod_mnp.SelectByLabels`' MNP
        candidate ("MNP-log"): blended with the boosted classifier it beat
        MNP's defaults on the development splits of the choosing half
        (BENCHMARKS.md, "Choosing a detector"). Alone it raised
        development-split AUC-PR (+0.035) but lost on the confirming half's
        test splits, so it is not MNP's default (BENCHMARKS.md, "The score
        head"): it helps where anomalies reconstruct badly (Cardio,
        Lymphography, Ionosphere) and hurts where they do not (smtp,
        Annthyroid, glass).
    n_ensemble : int, default=3
        Members trained independently (own pretraining, prototypes and batches;
        k is chosen once, on the first member) whose scores are averaged. With
        one labeled anomaly a single member's result varies a lot with its seed;
        averaging three raised development-split AUC-PR on every large set (see
        BENCHMARKS.md). 1 is the paper's single model.
    scaler : {'minmax'} or None, default='minmax'
        Input scaling learned from the training rows and applied to every row
        scored (the fitted ``scaler_``, saved with the model), so that the
        units of the features do not matter. ``'minmax'`` is the protocol's
        own step learned inside the model: on min-max scaled features it is
        the identity (the paper's model, bit for bit), on raw units it gives
        the same model (:mod:`deepod_mnp.method.scaling`). None feeds X as
        given: for features your pipeline has already scaled, for a scaling
        of your own that min-max would undo (the other scalings tried lost on
        average; BENCHMARKS.md, "Input scaling"), or to score with a network
        that must see exactly the rows you pass.
    inference_batch_size : int, default=8192
        Rows scored per forward pass. Chunks this size stay in the CPU's cache;
        on a CPU with several torch threads they are scored in parallel.
    contamination : float, default=0.1
        Expected share of anomalies, used only for ``threshold_`` and ``predict``.
    device : str, default='auto'
        ``'auto'`` (CUDA if available, else CPU) or any torch device string.
    verbose : int, default=0
        1 (or more) shows a progress bar over epochs and logs each member's
        losses at epoch 1 and every ``prt_steps`` epochs at INFO level to
        ``logging.getLogger('deepod_mnp.base')`` (every epoch at DEBUG level).
    prt_steps : int, default=10
        Epochs between two INFO log lines when ``verbose`` is on (DeepOD's
        ``prt_steps``, which prints instead).
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=42
        Seed of every random choice; the same seed gives the same scores on CPU.

    Attributes
    ----------
    net_ : MNPEnsemble
        The trained members (also readable as ``net``, DeepOD's name).
    prototypes_ : ndarray of shape (n_ensemble * k, rep_dim)
        Learned prototypes, L2-normalised, member by member (each member's
        prototypes live in its own latent space).
    n_prototypes_ : int
        The number k of prototypes of each member.
    epoch_steps_ : int
        Mini-batches per epoch actually run (``epoch_steps`` resolved).
    silhouette_scores_ : dict
        Silhouette score of each k tried when ``n_prototypes='auto'``.
    scaler_ : FeatureScaler or None
        The input scaling fitted on the training rows (None when ``scaler=None``).
    encoder_ : TableEncoder or None
        The one-hot encoding of the text columns of a table (None for
        numbers only); see :mod:`deepod_mnp.preprocessing`.
    n_features_in_ : int
        Number of features (columns) seen in ``fit``.
    n_net_features_ : int
        Width of the network's input: ``n_features_in_``, or the encoded
        width with an ``encoder_``.
    fit_info_ : dict
        What the model card shows of the fit: rows, labeled anomalies, fit
        seconds, device, torch threads, time and versions.
    device_ : torch.device
        Device the network lives on.
    loss_history_ : pandas.DataFrame
        Per member and epoch: the mean of each loss and the DWA weight applied.
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training data.
    threshold_ : float
        The ``1 - contamination`` quantile of ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        ``decision_scores_ > threshold_`` as 0/1.

    References
    ----------
    Z. Dong, H. Liu, B. Ren, W. Xiong, Z. Wu. Multi-Normal Prototypes Learning
    for Weakly Supervised Anomaly Detection. arXiv:2408.14498, 2024.
    """

    model_name = "MNP"
    _parameter_constraints: ClassVar[dict] = {
        **BaseDetector._parameter_constraints,
        "epoch_steps": [*BaseDetector._parameter_constraints["epoch_steps"], "auto"],
        "hidden_dims": [*BaseDetector._parameter_constraints["hidden_dims"], NONE],
        "n_prototypes": [POSITIVE_INT, "auto"],
        "pretrain_epochs": [NON_NEGATIVE_INT],
        "rep_dim": [POSITIVE_INT],
        "n_ensemble": [POSITIVE_INT],
        "alpha": [POSITIVE_REAL],
        "dwa_temperature": [POSITIVE_REAL],
        "margin": [NON_NEGATIVE_REAL],
        "pretrain_noise": [NON_NEGATIVE_REAL],
        "beta": [NON_NEGATIVE_REAL],
        **{name: [BOOLEAN] for name in ("use_recon_loss", "use_prototype_loss", "use_weights",
                                         "recon_in_score")},
        "recon_norm": [Options(RECON_NORMS), NONE],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._fitted_attributes, "n_prototypes_", "epoch_steps_", "silhouette_scores_")
    _saved_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._saved_attributes, "n_prototypes_", "epoch_steps_", "silhouette_scores_")
    _anomalies_required = (
        "without one, its scoring network sees only rows taken as normal and ranks anomalies below normal "
        "rows (mean AUC-ROC 0.39 on the development splits of results/selection_design, where IForest "
        "reaches 0.77); fit IForest, or SelectByLabels, which fits IForest when y labels no anomaly")

    def __init__(self, *, epochs: int = 5, epoch_steps: int | str = "auto", batch_size: int = 128,
                 anomaly_batch_size: int = 32, lr: float = 5e-3, weight_decay: float = 5e-4,
                 rep_dim: int = 8, hidden_dims: Any = None, act: str = "LeakyReLU", bias: bool = True,
                 n_prototypes: int | str = "auto", alpha: float = 1.0,
                 beta: float = 1.0, margin: float = 0.02, dwa_temperature: float = 2.0,
                 pretrain_epochs: int = 2,
                 pretrain_noise: float = 0.05, use_recon_loss: bool = True,
                 use_prototype_loss: bool = True, use_weights: bool = True,
                 recon_in_score: bool = True, recon_norm: str | None = None,
                 n_ensemble: int = 3,
                 scaler: str | None = DEFAULT_SCALER, inference_batch_size: int = 8192,
                 contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 prt_steps: int = 10, random_state: int | None = 42) -> None:
        store_params(self, locals())

    # ------------------------------------------------------------------ checks
    @property
    def n_members(self) -> int:
        """``n_ensemble`` under the name of DeepOD's MNP (whose ``n_ensemble`` is BaseDeepAD's own, 1)."""
        return self.n_ensemble

    def _check_training_data(self, X: np.ndarray, y: np.ndarray) -> None:
        n_clustered = min(int(np.sum(y == 0)), KMEANS_MAX_SAMPLES)
        if self.n_prototypes != "auto" and self.n_prototypes > n_clustered:
            raise ValueError(f"n_prototypes={self.n_prototypes} exceeds the {n_clustered} unlabeled samples "
                             "that k-means clusters; use fewer prototypes or 'auto'.")

    # --------------------------------------------------------------- training
    def training_prepare(self, X: torch.Tensor, y: np.ndarray, *,
                         data: TrainingData) -> tuple[MixedBatchLoader, MNPEnsemble, MNPLoss]:
        """DeepOD's ``training_prepare`` of every member, drawing from the fit's generator, then each
        member's ``e_ref`` (``recon_norm``)."""
        loader, net, criterion = self._prepare(X, y, data.rng,
                                               full_pass_batches if self.epoch_steps == FULL_PASS else None)
        for member in net.members:
            member.set_recon_ref(data.unlabeled)
        return loader, net, criterion

    def _fitted_state(self, loader: MixedBatchLoader, net: MNPEnsemble, criterion: MNPLoss) -> dict[str, Any]:
        return {"epoch_steps_": len(loader), "n_prototypes_": len(net.members[0].prototypes),
                "silhouette_scores_": dict(net.silhouette_scores)}

    def _loss_history(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One row per member and epoch (from :meth:`epoch_update`'s rows, columns (member, name))."""
        rows.columns = pd.MultiIndex.from_tuples(rows.columns)
        return pd.concat({m: rows[m] for m in range(self.n_ensemble)}, names=["member", "epoch"])

    def _epoch_steps(self, n_unlabeled: int) -> int:
        if self.epoch_steps == "auto":  # DeepOD's MNP calls it -1
            return auto_epoch_steps(n_unlabeled, self.batch_size)
        return resolve_epoch_steps(self.epoch_steps, n_unlabeled, self.batch_size)

    def _build_member(self, n_features: int) -> MemberNet:
        """One member's untrained network (the paper's, unless ``hidden_dims``, ``act`` or ``bias`` say)."""
        return MemberNet(n_features, self._member_dims(n_features), act=self.act, bias=self.bias,
                         alpha=self.alpha, recon_in_score=self.recon_in_score, recon_norm=self.recon_norm)

    def _optimizer(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        """DeepOD's optimizer in ``_training`` (``weight_decay`` is an L2 term of ``training_forward``)."""
        return torch.optim.Adam(net.parameters(), lr=self.lr, eps=DEEPOD_ADAM_EPS)

    def epoch_update(self, criterion: MNPLoss | None = None, epoch: int = 0,
                     epoch_loss: float = float("nan")) -> dict[tuple[int, str], float]:
        """Each member's mean losses of the epoch and the DWA weights they used; sets the next weights."""
        means, used = criterion.update_weights()
        row = {}
        for member, (member_means, member_used) in enumerate(zip(means.tolist(), used.tolist())):
            self._check_finite(dict(zip(MNPLoss.names, member_means)), epoch)
            row.update({(member, name): v for name, v in zip(_LOSS_COLUMNS, [*member_means, *member_used])})
        return row

    # -------------------------------------------------------------- inference
    def inference_forward(self, batch_x: torch.Tensor, net: MNPEnsemble,
                          criterion: None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent codes and anomaly scores (Eq. 11) of one chunk.

        On the CPU the fitted ensemble scores as one module of batched matrix
        products (:func:`deepod_mnp.method.fused.fused_for`, cached): the same
        scores to float rounding (1e-6, tested), about twice as fast.
        """
        fused = fused_for(self) if net is getattr(self, "net", None) else None
        if fused is not None:
            return fused.score_and_rep(batch_x)
        out = net(batch_x.to(self.device_, non_blocking=True))
        return out.z, out.score

    @property
    def prototypes_(self) -> np.ndarray:
        """Learned prototypes, L2-normalised, shape (n_ensemble * k, rep_dim)."""
        check_is_fitted(self)
        u = torch.cat([m.prototypes.detach() for m in self.net.members])
        return F.normalize(u, dim=1).cpu().numpy()

    def score_components(self, X: Any) -> pd.DataFrame:
        """Explain each score by its inputs.

        Returns
        -------
        pandas.DataFrame
            One row per sample: ``score``, ``reconstruction_error`` (e_i),
            ``max_similarity`` (s_i) and ``normality_weight`` (w_i of Eq. 7
            before batch normalisation), each the mean over members, and
            ``nearest_prototype``, the row of :attr:`prototypes_` most similar
            to the sample.
        """
        X = self._check_scoring_X(X)
        parts = []
        self.net.eval()
        with torch.no_grad():
            for chunk in self.inference_prepare(X):
                outs = [member(chunk.to(self.device_)) for member in self.net.members]
                nearest = torch.cat([o.similarity for o in outs], dim=1).argmax(dim=1)
                columns = [[o.score for o in outs], [o.recon_error for o in outs],
                           [o.similarity.max(dim=1).values for o in outs],
                           [normality_weights(o.similarity, self.beta) for o in outs]]
                means = [torch.stack(c).mean(dim=0) for c in columns]
                parts.append(torch.stack([*means[:3], nearest.float(), means[3]], dim=1).cpu())
        arr = torch.cat(parts).numpy().astype(np.float64)
        df = pd.DataFrame(arr, columns=["score", "reconstruction_error", "max_similarity",
                                        "nearest_prototype", "normality_weight"])
        return df.astype({"nearest_prototype": np.int64})

    def card_sections(self) -> dict[str, dict[str, Any]]:
        """MNP's section of the model card: members, prototypes, the search for k, steps and losses."""
        check_is_fitted(self)
        last = self.loss_history_.groupby(level="member").tail(1)
        losses = [c for c in last.columns if c.startswith("loss_")]
        return {"MNP": {
            "members": int(self.n_ensemble),
            "prototypes_per_member": int(self.n_prototypes_),
            "silhouette_by_k": {int(k): round(float(v), 4) for k, v in self.silhouette_scores_.items()},
            "epoch_steps": int(self.epoch_steps_),
            "last_epoch_losses": {c: round(float(last[c].mean()), 6) for c in losses},
        }}

    # ---------------------------------------------------------- persistence
    @classmethod
    def _history_layout(cls, index: list[str] | None, columns: list[str] | None) -> tuple[list, list]:
        return index or ["member", "epoch"], columns or list(_LOSS_COLUMNS)

    def _build_inference_net(self) -> MNPEnsemble:
        members = [self._build_member(self.n_net_features_) for _ in range(self.n_ensemble)]
        for member in members:  # k prototypes, to be filled by the checkpoint
            member.prototypes = torch.nn.Parameter(torch.zeros(self.n_prototypes_, self.rep_dim))
        return MNPEnsemble(members, self.silhouette_scores_)
