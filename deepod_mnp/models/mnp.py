"""MNP: reconstruction-based multi-normal prototypes learning as a DeepOD detector.

The method itself (networks, losses, prototypes, DWA, sampling) is in
:mod:`deepod_mnp.method`; the fitting, scoring and persistence that every
detector shares is in :class:`deepod_mnp.base.BaseDetector`. This module holds
MNP's parameters and DeepOD's hooks.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from deepod_mnp._params import (
    BOOLEAN,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_REAL,
    NONE,
    POSITIVE_INT,
    POSITIVE_REAL,
    Options,
    parse_hidden_dims,
)
from deepod_mnp.base import BaseDetector, TrainingData, store_params
from deepod_mnp.method.dwa import DynamicWeightAveraging
from deepod_mnp.method.fused import fused_for
from deepod_mnp.method.losses import RECON_LOSSES, MNPLoss
from deepod_mnp.method.networks import RECON_NORMS, MNPEnsemble, MNPNet, ensemble_mean
from deepod_mnp.method.prototypes import KMEANS_MAX_SAMPLES, choose_prototypes, pretrain_autoencoder
from deepod_mnp.method.sampling import FULL_PASS, MixedBatchLoader, resolve_epoch_steps
from deepod_mnp.method.scaling import DEFAULT_SCALER
from deepod_mnp.method.similarity import max_similarity, normality_weights

logger = logging.getLogger(__name__)

HEAD_FEATURES_MIN_LABELED = 5  # head_features='auto': the input reaches the head from this many labels on
_LOSS_COLUMNS = [f"loss_{n}" for n in MNPLoss.names] + [f"weight_{n}" for n in MNPLoss.names]


class MNPCriterion(NamedTuple):
    """What one member trains with: the three losses, their DWA balance, and the k search it ran."""

    losses: MNPLoss
    balance: DynamicWeightAveraging
    silhouette_scores: dict


class MNP(BaseDetector):
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
    recon_loss : {'smooth_l1', 'mse'}, default='smooth_l1'
        Per-feature error ``l`` of Eq. 3-4 and of the score input ``e_i``.
    score_loss : {'smooth_l1', 'mse'}, default='smooth_l1'
        ``l`` of Eq. 12.
    normalize_weights : bool, default=True
        Rescale ``w_i`` to mean 1 within each batch (as the authors' code does).
    fixed_dec_target : bool, default=False
        Hold DEC's target distribution fixed in Eq. 8 (as DEC does) instead of
        letting the gradient flow through it (as the authors' code does).
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
        code's scale. It raised development-split AUC-PR (+0.035) but lost on
        the confirming half's test splits, so it is not the default
        (BENCHMARKS.md, "The score head"): it helps where anomalies
        reconstruct badly (Cardio, Lymphography, Ionosphere) and hurts where
        they do not (smtp, Annthyroid, glass).
    head_features : bool or 'auto', default=False
        Beyond the paper: also feed the (scaled) input features to the scoring
        MLP, so that the head can learn what separates the labeled anomalies
        in the input itself, not only through the autoencoder's latent code.
        ``'auto'`` does so when ``y`` labels at least
        ``HEAD_FEATURES_MIN_LABELED`` (5) anomalies; with fewer, the head
        overfits the one or two labels. ``'auto'`` won on the development
        splits (Donors 0.78 -> 0.98 AUC-PR on test, Cover, Celeba, Backdoor
        0.83 -> 0.87) but was level on the confirming half (Mnist down), so
        False (the paper's model) stays the default; try ``'auto'`` when
        dozens of anomalies are labeled.
    n_ensemble : int, default=3
        Members trained independently (own pretraining, prototypes and batches;
        k is chosen once, on the first member) whose scores are averaged. With
        one labeled anomaly a single member's result varies a lot with its seed;
        averaging three raised development-split AUC-PR on every large set (see
        BENCHMARKS.md). 1 is the paper's single model.
    scaler : str or None, default='minmax'
        Input scaling learned from the training rows and applied to every row
        scored (the fitted ``scaler_``, saved with the model), so that the
        units of the features do not matter. ``'minmax'`` is the protocol's
        own step learned inside the model: on min-max scaled features it is
        the identity (the paper's model, bit for bit), on raw units it gives
        the same model. ``'robust'`` (median / IQR), ``'standard'`` and
        ``'quantile'`` are the alternatives, an affine one optionally with a
        tail rule for rows far outside the training bulk (``'robust+clip'``,
        ``'robust+log'``); see :mod:`deepod_mnp.method.scaling`. The
        development splits chose ``'minmax'`` (BENCHMARKS.md, "Input
        scaling"). None feeds X as given.
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
    head_features_ : bool
        Whether the scoring MLP reads the input (``head_features`` resolved).
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
        "recon_loss": [Options(RECON_LOSSES)],
        "score_loss": [Options(RECON_LOSSES)],
        **{name: [BOOLEAN] for name in ("normalize_weights", "fixed_dec_target", "use_recon_loss",
                                         "use_prototype_loss", "use_weights", "recon_in_score")},
        "head_features": [BOOLEAN, "auto"],
        "recon_norm": [Options(RECON_NORMS), NONE],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._fitted_attributes, "n_prototypes_", "epoch_steps_", "silhouette_scores_",
        "head_features_")
    _saved_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._saved_attributes, "n_prototypes_", "epoch_steps_", "silhouette_scores_",
        "head_features_")
    _no_anomaly_terms = "Eq. 4, the anomaly side of Eq. 9 and 12"

    def __init__(self, *, epochs: int = 5, epoch_steps: int | str = "auto", batch_size: int = 128,
                 anomaly_batch_size: int = 32, lr: float = 5e-3, weight_decay: float = 5e-4,
                 rep_dim: int = 8, hidden_dims: Any = None, act: str = "LeakyReLU", bias: bool = True,
                 n_prototypes: int | str = "auto", alpha: float = 1.0,
                 beta: float = 1.0, margin: float = 0.02, dwa_temperature: float = 2.0,
                 recon_loss: str = "smooth_l1", score_loss: str = "smooth_l1",
                 normalize_weights: bool = True, fixed_dec_target: bool = False,
                 pretrain_epochs: int = 2,
                 pretrain_noise: float = 0.05, use_recon_loss: bool = True,
                 use_prototype_loss: bool = True, use_weights: bool = True,
                 recon_in_score: bool = True, recon_norm: str | None = None,
                 head_features: bool | str = False, n_ensemble: int = 3,
                 scaler: str | None = DEFAULT_SCALER, inference_batch_size: int = 8192,
                 contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 prt_steps: int = 10, random_state: int | None = 42) -> None:
        store_params(self, locals())

    # ------------------------------------------------------------------ checks
    def _check_training_data(self, X: np.ndarray, y: np.ndarray) -> None:
        n_clustered = min(int(np.sum(y == 0)), KMEANS_MAX_SAMPLES)
        if self.n_prototypes != "auto" and self.n_prototypes > n_clustered:
            raise ValueError(f"n_prototypes={self.n_prototypes} exceeds the {n_clustered} unlabeled samples "
                             "that k-means clusters; use fewer prototypes or 'auto'.")

    # --------------------------------------------------------------- training
    def _fit_net(self, data: TrainingData) -> tuple[MNPEnsemble, pd.DataFrame]:
        """Train ``n_ensemble`` members; k is chosen on the first and given to the others."""
        self.epoch_steps_ = resolve_epoch_steps(self.epoch_steps, len(data.unlabeled), self.batch_size)
        generator = torch.Generator().manual_seed(int(data.rng.integers(2**31 - 1)))
        self.head_features_ = bool(int(np.sum(data.y == 1)) >= HEAD_FEATURES_MIN_LABELED
                                   if self.head_features == "auto" else self.head_features)
        k, members, histories = self.n_prototypes, [], []
        for i in range(self.n_ensemble):
            loader, net, criterion = self.training_prepare(data.X, data.y, data=data, generator=generator,
                                                           n_prototypes=k)
            if i == 0:
                k, self.silhouette_scores_ = len(net.prototypes), criterion.silhouette_scores
            histories.append(self._training(loader, net, criterion))
            members.append(net)
        self.n_prototypes_ = k
        history = pd.concat(histories, keys=range(len(histories)), names=["member", "epoch"])
        return MNPEnsemble(members).eval(), history

    def training_prepare(self, X: torch.Tensor, y: np.ndarray, *, data: TrainingData,
                         generator: torch.Generator,
                         n_prototypes: int | str) -> tuple[MixedBatchLoader, MNPNet, MNPCriterion]:
        """Pretrain one member's autoencoder, initialise its prototypes, build the loader and loss.

        ``X`` is the device copy of the training data; ``data`` holds its
        unlabeled rows and the fit's RNG, ``generator`` draws the pretraining
        noise and ``n_prototypes`` is k (or ``'auto'`` for the first member).
        """
        rng, unlabeled, device = data.rng, data.unlabeled, X.device
        net = self._build_net(X.shape[1], n_prototypes=1).to(device)
        full_pass = self.epoch_steps == FULL_PASS
        pretrain_autoencoder(net.ae, unlabeled, epochs=self.pretrain_epochs, steps=self.epoch_steps_,
                             batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                             noise=self.pretrain_noise, rng=rng, generator=generator, full_pass=full_pass)
        sub = rng.choice(len(unlabeled), min(len(unlabeled), KMEANS_MAX_SAMPLES), replace=False)
        with torch.no_grad():
            Z = net.ae.encoder(unlabeled[torch.from_numpy(sub).to(device)]).cpu().numpy()
        # a diverged pretraining shows here first (k-means would blame the data for the NaN)
        self._check_finite_stage("autoencoder pretraining", "latent codes", bool(np.isfinite(Z).all()))
        centers, _, silhouettes = choose_prototypes(Z, n_prototypes,
                                                    random_state=int(rng.integers(2**31 - 1)))
        net.prototypes = torch.nn.Parameter(torch.from_numpy(centers).to(device))
        net.set_recon_ref(unlabeled[torch.from_numpy(sub).to(device)])
        loader = MixedBatchLoader(X, y, batch_size=self.batch_size,
                                  anomaly_batch_size=self.anomaly_batch_size,
                                  steps_per_epoch=self.epoch_steps_, rng=rng, full_pass=full_pass)
        losses = MNPLoss(margin=self.margin, beta=self.beta, score_loss=self.score_loss,
                         normalize_weights=self.normalize_weights, fixed_dec_target=self.fixed_dec_target,
                         use_weights=self.use_weights, use_recon_loss=self.use_recon_loss,
                         use_prototype_loss=self.use_prototype_loss)
        balance = DynamicWeightAveraging(MNPLoss.n_losses, self.dwa_temperature, device)
        return loader, net, MNPCriterion(losses, balance, silhouettes)

    def training_forward(self, batch_x: tuple[torch.Tensor, torch.Tensor], net: MNPNet,
                         criterion: MNPCriterion) -> torch.Tensor:
        """Eq. 13 on one mixed batch (the DWA-weighted sum of the three losses)."""
        x_u, x_a = batch_x
        out = net(torch.cat([x_u, x_a]))
        n_u = len(x_u)
        out_u = type(out)(*(t[:n_u] for t in out))
        out_a = type(out)(*(t[n_u:] for t in out)) if len(x_a) else None
        return criterion.balance.weighted_sum(criterion.losses(out_u, out_a))

    def epoch_update(self, criterion: MNPCriterion | None = None, epoch: int = 0,
                     epoch_loss: float = float("nan")) -> dict[str, float]:
        """The epoch's mean losses and DWA weights; sets the DWA weights of the next epoch."""
        means = criterion.balance.end_epoch()
        self._check_finite(dict(zip(MNPLoss.names, means.tolist())), epoch)
        used = criterion.balance.update(means)
        return dict(zip(_LOSS_COLUMNS, [*means.tolist(), *used]))

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
        u = torch.nn.functional.normalize(self.net.prototypes.detach(), dim=1)
        return u.cpu().numpy()

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
                outs = self.net.member_outputs(chunk.to(self.device_))
                weights = [normality_weights(o.similarity, self.beta, normalize=False) for o in outs]
                nearest = torch.cat([o.similarity for o in outs], dim=1).argmax(dim=1)
                parts.append(torch.stack([
                    ensemble_mean([o.score for o in outs]),
                    ensemble_mean([o.recon_error for o in outs]),
                    ensemble_mean([max_similarity(o.similarity) for o in outs]), nearest.float(),
                    ensemble_mean(weights),
                ], dim=1).cpu())
        arr = torch.cat(parts).numpy().astype(np.float64)
        df = pd.DataFrame(arr, columns=["score", "reconstruction_error", "max_similarity",
                                        "nearest_prototype", "normality_weight"])
        return df.astype({"nearest_prototype": np.int64})

    def card_sections(self) -> dict[str, dict[str, Any]]:
        """MNP's section of the model card: members, prototypes, the search for k, steps and the head."""
        check_is_fitted(self)
        last = self.loss_history_.groupby(level="member").tail(1)
        losses = [c for c in last.columns if c.startswith("loss_")]
        return {"MNP": {
            "members": int(self.n_ensemble),
            "prototypes_per_member": int(self.n_prototypes_),
            "silhouette_by_k": {int(k): round(float(v), 4) for k, v in self.silhouette_scores_.items()},
            "epoch_steps": int(self.epoch_steps_),
            "head_reads_input": bool(self.head_features_),
            "last_epoch_losses": {c: round(float(last[c].mean()), 6) for c in losses},
        }}

    # ---------------------------------------------------------- persistence
    @classmethod
    def _history_layout(cls, index: list[str] | None, columns: list[str] | None) -> tuple[list, list]:
        return index or ["member", "epoch"], columns or list(_LOSS_COLUMNS)

    def _restore(self, state: dict[str, Any]) -> None:
        state.setdefault("epoch_steps_", self.epoch_steps)  # checkpoints before 'auto': an int
        state["silhouette_scores_"] = dict(state.get("silhouette_scores_", {}))
        state.setdefault("head_features_", bool(self.head_features))  # checkpoints before 'auto': a bool
        super()._restore(state)

    def _build_net(self, n_features: int, n_prototypes: int) -> MNPNet:
        """One member's untrained network (the paper's, unless ``hidden_dims``, ``act`` or ``bias`` say)."""
        hidden = None if self.hidden_dims is None else parse_hidden_dims(self.hidden_dims)
        return MNPNet(n_features, self.rep_dim, n_prototypes, alpha=self.alpha, recon_loss=self.recon_loss,
                      recon_in_score=self.recon_in_score, hidden_dims=hidden, act=self.act, bias=self.bias,
                      head_features=getattr(self, "head_features_", self.head_features is True),
                      recon_norm=self.recon_norm)

    def _build_inference_net(self) -> MNPEnsemble:
        return MNPEnsemble([self._build_net(self.n_net_features_, self.n_prototypes_)
                            for _ in range(self.n_ensemble)])
