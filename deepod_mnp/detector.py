"""MNP: reconstruction-based multi-normal prototypes learning as a DeepOD detector."""
from __future__ import annotations

import logging
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from deepod.core.base_model import BaseDeepAD
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from deepod_mnp import _validation as val
from deepod_mnp import scaling
from deepod_mnp.dwa import dwa_weights
from deepod_mnp.losses import RECON_LOSSES, MNPLoss
from deepod_mnp.networks import MNPEnsemble, MNPNet
from deepod_mnp.prototypes import KMEANS_MAX_SAMPLES, choose_prototypes, pretrain_autoencoder
from deepod_mnp.sampling import MixedBatchLoader, resolve_epoch_steps

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "MNP/1"


def resolve_device(device: str | torch.device) -> torch.device:
    """``'auto'`` is CUDA when available, else CPU; any other torch device string is checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; "
                         "use 'auto', 'cpu' or 'cuda[:i]'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available; use 'auto' or 'cpu'.")
    return dev


class MNP(BaseDeepAD, BaseEstimator):
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
        Training epochs after pretraining. Short training is deliberate: without
        validation labels to early-stop on, longer training overfits the few
        labeled anomalies (see BENCHMARKS.md, "How the defaults were chosen").
    epoch_steps : int or 'auto', default='auto'
        Mini-batches per epoch, of training and of each pretraining stage.
        ``'auto'`` makes an epoch one pass over the unlabeled samples, clipped
        to 8..16 batches: small data sets train briefly, and from
        ``16 * batch_size`` unlabeled samples up an epoch costs the same
        whatever N is. The development splits chose it over a fixed 64 and
        over the earlier cap of 64 (see BENCHMARKS.md, "How the defaults were
        chosen").
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
    head_features : bool, default=False
        Beyond the paper: also feed the (scaled) input features to the scoring
        MLP, so that the head can learn what separates the labeled anomalies
        in the input itself, not only through the autoencoder's latent code.
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
        the identity (the paper's model), on raw units it gives the same
        model. ``'robust'`` (median / IQR), ``'standard'`` and ``'quantile'``
        are the alternatives, an affine one optionally with a tail rule for
        rows far outside the training bulk (``'robust+clip'``,
        ``'robust+log'``); see :mod:`deepod_mnp.scaling`. The development
        splits chose ``'minmax'`` (BENCHMARKS.md, "Input scaling"). None feeds
        X as given.
    inference_batch_size : int, default=8192
        Rows scored per forward pass. Chunks this size stay in the CPU's cache;
        on a CPU with several torch threads they are scored in parallel.
    contamination : float, default=0.1
        Expected share of anomalies, used only for ``threshold_`` and ``predict``.
    device : str, default='auto'
        ``'auto'`` (CUDA if available, else CPU) or any torch device string.
    verbose : int, default=0
        1 shows a progress bar over epochs; logging goes to ``logging.getLogger('deepod_mnp')``.
    random_state : int or None, default=42
        Seed of every random choice; the same seed gives the same scores on CPU.

    Attributes
    ----------
    net : MNPEnsemble
        The trained members (DeepOD's name for the network).
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
    n_features_in_ : int
        Number of features seen in ``fit``.
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
    data_type = "tabular"

    def __init__(self, *, epochs: int = 5, epoch_steps: int | str = "auto", batch_size: int = 128,
                 anomaly_batch_size: int = 32, lr: float = 5e-3, weight_decay: float = 5e-4,
                 rep_dim: int = 8, n_prototypes: int | str = "auto", alpha: float = 1.0,
                 beta: float = 1.0, margin: float = 0.02, dwa_temperature: float = 2.0,
                 recon_loss: str = "smooth_l1", score_loss: str = "smooth_l1",
                 normalize_weights: bool = True, fixed_dec_target: bool = False,
                 pretrain_epochs: int = 2,
                 pretrain_noise: float = 0.05, use_recon_loss: bool = True,
                 use_prototype_loss: bool = True, use_weights: bool = True,
                 recon_in_score: bool = True, head_features: bool = False, n_ensemble: int = 3,
                 scaler: str | None = scaling.DEFAULT_SCALER,
                 inference_batch_size: int = 8192,
                 contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 random_state: int | None = 42) -> None:
        self.epochs = epochs
        self.epoch_steps = epoch_steps
        self.batch_size = batch_size
        self.anomaly_batch_size = anomaly_batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.rep_dim = rep_dim
        self.n_prototypes = n_prototypes
        self.alpha = alpha
        self.beta = beta
        self.margin = margin
        self.dwa_temperature = dwa_temperature
        self.recon_loss = recon_loss
        self.score_loss = score_loss
        self.normalize_weights = normalize_weights
        self.fixed_dec_target = fixed_dec_target
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_noise = pretrain_noise
        self.use_recon_loss = use_recon_loss
        self.use_prototype_loss = use_prototype_loss
        self.use_weights = use_weights
        self.recon_in_score = recon_in_score
        self.head_features = head_features
        self.n_ensemble = n_ensemble
        self.scaler = scaler
        self.inference_batch_size = inference_batch_size
        self.contamination = contamination
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        for name in ("epochs", "pretrain_epochs"):
            val.check_interval(getattr(self, name), name, 0, integer=True)
        for name in ("epoch_steps", "n_prototypes"):  # a positive integer or 'auto'
            value = getattr(self, name)
            if isinstance(value, str) and value != "auto":
                raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}.")
            if value != "auto":
                val.check_interval(value, name, 1, integer=True)
        for name in ("batch_size", "anomaly_batch_size", "rep_dim", "n_ensemble", "inference_batch_size"):
            val.check_interval(getattr(self, name), name, 1, integer=True)
        for name in ("lr", "alpha", "dwa_temperature"):
            val.check_interval(getattr(self, name), name, 0, low_inclusive=False)
        for name in ("weight_decay", "margin", "pretrain_noise", "beta"):
            val.check_interval(getattr(self, name), name, 0)
        val.check_interval(self.contamination, "contamination", 0, 0.5, low_inclusive=False)
        for name in ("recon_loss", "score_loss"):
            if getattr(self, name) not in RECON_LOSSES:
                raise ValueError(f"{name} must be one of {RECON_LOSSES}, got {getattr(self, name)!r}.")
        scaling.parse_spec(self.scaler)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    # --------------------------------------------------------------- training
    def fit(self, X: Any, y: Any = None) -> MNP:
        """Fit the detector on unlabeled samples and a few labeled anomalies.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (NumPy array or pandas DataFrame, any real dtype).
        y : array-like of shape (n_samples,), optional
            1 for a labeled anomaly, 0 for an unlabeled sample. Without any
            labeled anomaly MNP warns and trains without the anomaly terms.

        Returns
        -------
        self : MNP
            The fitted detector.
        """
        self._check_params()
        for name in ("n_features_in_", "feature_names_in_"):  # a failed (re)fit leaves no fitted state
            self.__dict__.pop(name, None)
        columns = getattr(X, "columns", None)
        self.scaler_ = scaling.make_scaler(self.scaler)
        X = scaling.check_scaled(X, self.scaler_, fit=True)
        y = np.zeros(len(X), dtype=np.int64) if y is None else val.check_y(y, len(X))
        if not np.any(y == 1):
            warnings.warn("y labels no anomaly: MNP trains without the labeled-anomaly terms "
                          "(Eq. 4, the anomaly side of Eq. 9 and 12).", UserWarning, stacklevel=2)
        n_unlabeled = int(np.sum(y == 0))
        if n_unlabeled == 0:
            raise ValueError("y labels every sample as an anomaly; MNP needs unlabeled samples.")
        n_clustered = min(n_unlabeled, KMEANS_MAX_SAMPLES)
        if self.n_prototypes != "auto" and self.n_prototypes > n_clustered:
            raise ValueError(f"n_prototypes={self.n_prototypes} exceeds the {n_clustered} unlabeled samples "
                             "that k-means clusters; use fewer prototypes or 'auto'.")
        self.device_ = resolve_device(self.device)
        self.epoch_steps_ = resolve_epoch_steps(self.epoch_steps, n_unlabeled, self.batch_size)
        self.n_samples, self.n_features = X.shape
        seed = self.random_state
        self._rng = np.random.default_rng(seed)
        fork_devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(int(self._rng.integers(2**31 - 1)))
            self._generator = torch.Generator().manual_seed(int(self._rng.integers(2**31 - 1)))
            self._k_request, self.silhouette_scores_ = self.n_prototypes, {}
            # device copies shared by all members (made once, dropped after training)
            self._X_t = torch.from_numpy(X).to(self.device_)
            self._unlabeled = self._X_t[torch.from_numpy(np.flatnonzero(y == 0)).to(self.device_)]
            members, histories = [], []
            for _ in range(self.n_ensemble):
                self.train_loader, self.net, self.criterion = self.training_prepare(X, y)
                self._training()
                members.append(self.net)
                histories.append(self.loss_history_)
            del self._X_t, self._unlabeled, self.train_loader
        self.net = MNPEnsemble(members).eval()
        self.loss_history_ = pd.concat(histories, keys=range(len(histories)), names=["member", "epoch"])
        self.decision_scores_ = self._score(X)
        self._process_decision_scores()
        self.n_features_in_ = self.n_features
        if columns is not None:
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        return self

    def training_prepare(self, X: np.ndarray, y: np.ndarray) -> tuple[MixedBatchLoader, MNPNet, MNPLoss]:
        """Pretrain one member's autoencoder, initialise its prototypes, build the loader and loss.

        Uses the device copies of ``X`` and of its unlabeled rows that :meth:`fit`
        makes once for all members.
        """
        X_t, unlabeled = self._X_t, self._unlabeled
        net = MNPNet(self.n_features, self.rep_dim, alpha=self.alpha, recon_loss=self.recon_loss,
                     recon_in_score=self.recon_in_score,
                     head_features=bool(self.head_features)).to(self.device_)
        pretrain_autoencoder(net.ae, unlabeled, epochs=self.pretrain_epochs, steps=self.epoch_steps_,
                             batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                             noise=self.pretrain_noise, rng=self._rng, generator=self._generator)
        sub = self._rng.choice(len(unlabeled), min(len(unlabeled), KMEANS_MAX_SAMPLES), replace=False)
        with torch.no_grad():
            Z = net.ae.encoder(unlabeled[torch.from_numpy(sub).to(self.device_)]).cpu().numpy()
        centers, k, silhouettes = choose_prototypes(
            Z, self._k_request, random_state=int(self._rng.integers(2**31 - 1)))
        if silhouettes:  # only the first member searches; the others reuse its k
            self.silhouette_scores_ = silhouettes
        self.n_prototypes_ = self._k_request = k
        net.prototypes = torch.nn.Parameter(torch.from_numpy(centers).to(self.device_))
        loader = MixedBatchLoader(X_t, y, batch_size=self.batch_size,
                                  anomaly_batch_size=self.anomaly_batch_size,
                                  steps_per_epoch=self.epoch_steps_, rng=self._rng)
        criterion = MNPLoss(margin=self.margin, beta=self.beta, score_loss=self.score_loss,
                            normalize_weights=self.normalize_weights,
                            fixed_dec_target=self.fixed_dec_target, use_weights=self.use_weights,
                            use_recon_loss=self.use_recon_loss,
                            use_prototype_loss=self.use_prototype_loss)
        return loader, net, criterion

    def training_forward(self, batch_x: tuple[torch.Tensor, torch.Tensor], net: MNPNet,
                         criterion: MNPLoss) -> torch.Tensor:
        """Eq. 13 on one mixed batch; records the three losses for :meth:`epoch_update`."""
        x_u, x_a = batch_x
        out = net(torch.cat([x_u, x_a]))
        n_u = len(x_u)
        out_u = type(out)(*(t[:n_u] for t in out))
        out_a = type(out)(*(t[n_u:] for t in out)) if len(x_a) else None
        parts = criterion(out_u, out_a)
        self._epoch_loss_sum += parts.detach()
        self._epoch_batches += 1
        return (self._loss_weights * parts).sum()  # Eq. 13

    def epoch_update(self) -> None:
        """Store the epoch's mean losses and set the DWA weights of the next epoch."""
        means = (self._epoch_loss_sum / max(self._epoch_batches, 1)).cpu().numpy()
        if not np.all(np.isfinite(means)):
            raise RuntimeError(
                f"MNP training diverged: non-finite loss {dict(zip(MNPLoss.names, means.tolist()))} "
                f"at epoch {len(self._loss_means) + 1}. Try a smaller lr or check the input scaling.")
        self._history_rows.append([*means.tolist(), *self._loss_weights.cpu().tolist()])
        self._loss_means.append(means.tolist())
        self._loss_weights = torch.as_tensor(dwa_weights(self._loss_means, self.dwa_temperature),
                                             dtype=torch.float32, device=self.device_)
        self._epoch_loss_sum.zero_()
        self._epoch_batches = 0

    def _training(self) -> None:
        # DeepOD's _training hard-codes Adam(weight_decay=1e-5) and prints; the paper uses 5e-4.
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self._loss_weights = torch.ones(MNPLoss.n_losses, device=self.device_)
        self._epoch_loss_sum = torch.zeros(MNPLoss.n_losses, device=self.device_)
        self._epoch_batches = 0
        self._loss_means: list[list[float]] = []
        self._history_rows: list[list[float]] = []
        self.net.train()
        for _ in tqdm(range(self.epochs), desc="MNP epochs", disable=not self.verbose, leave=False):
            for batch in self.train_loader:
                loss = self.training_forward(batch, self.net, self.criterion)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            self.epoch_update()
        cols = [f"loss_{n}" for n in MNPLoss.names] + [f"weight_{n}" for n in MNPLoss.names]
        self.loss_history_ = pd.DataFrame(self._history_rows, columns=cols).rename_axis("epoch")
        self.net.eval()

    # -------------------------------------------------------------- inference
    def inference_prepare(self, X: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Large contiguous chunks of X (no per-row collation)."""
        return torch.from_numpy(X).split(self.inference_batch_size)

    def _inference(self) -> tuple[np.ndarray, np.ndarray]:
        """Latent codes and scores of the chunks of ``test_loader``.

        On a CPU with several torch threads the chunks are scored by as many
        Python threads of one torch thread each: the ensemble's many small
        operations run faster side by side than split across threads one by one
        (BENCHMARKS.md, "Speed and scale"). torch's thread count is 1 while they
        run and is restored afterwards.
        """
        self.net.eval()
        chunks = list(self.test_loader)
        n_threads = torch.get_num_threads()
        n_workers = min(n_threads, len(chunks)) if self.device_.type == "cpu" else 1

        def forward(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.inference_mode():  # grad mode is per thread
                return self.inference_forward(chunk, self.net, self.criterion)

        if n_workers > 1:
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(n_workers) as pool:
                    outs = list(pool.map(forward, chunks))
            finally:
                torch.set_num_threads(n_threads)
        else:
            outs = [forward(chunk) for chunk in chunks]
        z, scores = (torch.cat(parts).cpu().numpy() for parts in zip(*outs))
        return z, scores

    def inference_forward(self, batch_x: torch.Tensor, net: MNPNet,
                          criterion: MNPLoss) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent codes and anomaly scores (Eq. 11) of one chunk."""
        out = net(batch_x.to(self.device_, non_blocking=True))
        return out.z, out.score

    def _score(self, X: np.ndarray, return_rep: bool = False):
        self.test_loader = self.inference_prepare(X)
        z, scores = self._inference()
        scores = scores.astype(np.float64)
        return (scores, z) if return_rep else scores

    def decision_function(self, X: Any, return_rep: bool = False):
        """Anomaly scores of X; higher is more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.
        return_rep : bool, default=False
            Also return the latent codes, as DeepOD's detectors do.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        representations : ndarray of shape (n_samples, n_ensemble * rep_dim)
            The members' latent codes side by side; only with ``return_rep=True``.
        """
        check_is_fitted(self)
        return self._score(self._check_scaled(X), return_rep)

    def _check_scaled(self, X: Any) -> np.ndarray:
        """Validated X with the fitted input scaling applied (what the network sees)."""
        return scaling.check_scaled(X, getattr(self, "scaler_", None), n_features=self.n_features_in_)

    def predict(self, X: Any, return_confidence: bool = False):
        """0/1 labels from ``threshold_``, optionally with DeepOD's confidence."""
        check_is_fitted(self)
        return super().predict(X, return_confidence=return_confidence)

    @property
    def prototypes_(self) -> np.ndarray:
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
        check_is_fitted(self)
        X = self._check_scaled(X)
        parts = []
        self.net.eval()
        with torch.no_grad():
            for chunk in self.inference_prepare(X):
                outs = [member(chunk.to(self.device_)) for member in self.net.members]
                s_max = torch.stack([o.similarity.max(dim=1).values for o in outs])
                nearest = torch.cat([o.similarity for o in outs], dim=1).argmax(dim=1)
                parts.append(torch.stack([
                    torch.stack([o.score for o in outs]).mean(dim=0),
                    torch.stack([o.recon_error for o in outs]).mean(dim=0),
                    s_max.mean(dim=0), nearest.float(),
                    torch.sigmoid(self.beta * s_max).mean(dim=0)], dim=1).cpu())
        arr = torch.cat(parts).numpy().astype(np.float64)
        df = pd.DataFrame(arr, columns=["score", "reconstruction_error", "max_similarity",
                                        "nearest_prototype", "normality_weight"])
        return df.astype({"nearest_prototype": np.int64})

    # ---------------------------------------------------------- persistence
    def save_model(self, path: str | Path) -> None:
        """Save parameters, weights and fitted state to ``path`` (a torch checkpoint)."""
        check_is_fitted(self)
        state = {
            "format": CHECKPOINT_FORMAT,
            "params": self.get_params(),
            "state_dict": {k: v.cpu() for k, v in self.net.state_dict().items()},
            "n_features_in_": self.n_features_in_,
            "scaler_": None if self.scaler_ is None else self.scaler_.get_state(),
            "n_prototypes_": self.n_prototypes_,
            "epoch_steps_": self.epoch_steps_,
            "silhouette_scores_": {int(k): float(v) for k, v in self.silhouette_scores_.items()},
            "decision_scores_": torch.from_numpy(self.decision_scores_),
            "threshold_": float(self.threshold_),
            "feature_names_in_": [str(c) for c in getattr(self, "feature_names_in_", [])],
            "loss_history_": self.loss_history_.reset_index().to_numpy().tolist(),
        }
        torch.save(state, Path(path))

    @classmethod
    def load_model(cls, path: str | Path, device: str | None = None) -> MNP:
        """Load a detector written by :meth:`save_model`, optionally onto another device."""
        try:
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
            raise ValueError(f"{path} is not an MNP checkpoint (torch.load failed: {exc})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an MNP checkpoint written by MNP.save_model.")
        params = dict(state["params"])
        params.setdefault("scaler", None)  # checkpoints from before input scaling fed X as given
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model.device_ = resolve_device(model.device)
        model.n_features = model.n_features_in_ = state["n_features_in_"]
        model.n_prototypes_ = state["n_prototypes_"]
        scaler_state = state.get("scaler_")
        model.scaler_ = None if scaler_state is None else scaling.FeatureScaler.from_state(scaler_state)
        model.epoch_steps_ = state.get("epoch_steps_", params["epoch_steps"])  # older checkpoints: an int
        model.silhouette_scores_ = state["silhouette_scores_"]
        model.net = MNPEnsemble([
            MNPNet(model.n_features_in_, model.rep_dim, model.n_prototypes_, alpha=model.alpha,
                   recon_loss=model.recon_loss, recon_in_score=model.recon_in_score,
                   head_features=bool(params.get("head_features", False)))
            for _ in range(model.n_ensemble)])
        model.net.load_state_dict(state["state_dict"])
        model.net.to(model.device_).eval()
        model.criterion = None
        if state.get("feature_names_in_"):
            model.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        model.decision_scores_ = state["decision_scores_"].numpy()
        model.n_samples = len(model.decision_scores_)
        model._process_decision_scores()
        cols = [f"loss_{n}" for n in MNPLoss.names] + [f"weight_{n}" for n in MNPLoss.names]
        history = pd.DataFrame(state["loss_history_"], columns=["member", "epoch", *cols])
        model.loss_history_ = history.astype({"member": int, "epoch": int}).set_index(["member", "epoch"])
        return model
