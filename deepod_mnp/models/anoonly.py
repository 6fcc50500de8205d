"""AnoOnly (Zhou et al.): DevNet and Deep SAD trained with the loss on labeled anomalies only.

AnoOnly keeps a base method's network and its loss on anomalies, drops the
base loss on unlabeled (mostly normal) samples, and adds batch normalisation.
Every training batch mixes unlabeled samples with labeled anomalies and goes
through the network at once, so the BN statistics are those of the mixed batch,
which is mostly normal data: the normalisation centres and scales the normal
data, and pushing the anomalies away under that normalisation pulls the normal
data together. This is AnoOnly's "weak supervision" of normal data. At
inference BN uses its running statistics, so a score does not depend on the
batch a sample is scored with.

The pieces that the base methods share with DeepOD are imported from it:
:class:`~deepod.core.networks.base_networks.MLPnet` (DevNet's hidden layers),
:class:`~deepod.models.tabular.devnet.DevLoss` and
:class:`~deepod.models.tabular.dsad.DSADLoss`.
"""
from __future__ import annotations

import copy
import numbers
import warnings
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import torch
from deepod.core.networks.base_networks import MLPnet
from deepod.models.tabular.devnet import DevLoss
from deepod.models.tabular.dsad import DSADLoss

from deepod_mnp._params import POSITIVE_INT, POSITIVE_REAL, Interval, Options, Predicate, parse_hidden_dims
from deepod_mnp.base import BaseDetector, TrainingData, draw_seed, store_params
from deepod_mnp.deepod_tabular.mnp import MixedBatchLoader
from deepod_mnp.method.anoonly import (
    deep_sad_targets,
    deviation_labels,
    hypersphere_center,
    linear_bn_act_body,
)
from deepod_mnp.method.sampling import FULL_PASS, full_pass_batches, resolve_epoch_steps
from deepod_mnp.method.scaling import DEFAULT_SCALER

#: ``loss_on`` values: AnoOnly's anomaly-only loss, or the base method's whole loss (the control).
LOSS_ON = ("anomalies", "all")

_REFERENCE = """
    Y. Zhou, P. Yang, Y. Qu, X. Xu, Z. Sun, A. Cichocki. AnoOnly: Semi-Supervised
    Anomaly Detection with the Only Loss on Anomalies. arXiv:2305.18798, 2023.
    Code: https://github.com/cool-xuan/AnoOnly"""


def _mlp_body(n_features: int, hidden: list[int], act: str, bias: bool) -> MLPnet:
    """DeepOD's ``MLPnet`` (no BN) for DevNet's hidden layers: every block is Linear -> act.

    The output layer is left to the caller, so the last hidden layer is
    ``MLPnet``'s output block, with its activation kept.
    """
    return MLPnet(n_features, n_hidden=hidden[:-1], n_output=hidden[-1], activation=[act] * len(hidden),
                  bias=bias, batch_norm=False)


def _as_net_input(batch_x: torch.Tensor, net: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """A chunk on the scoring device, in the dtype of the network that scores it."""
    return batch_x.to(device, dtype=next(net.parameters()).dtype, non_blocking=True)


class _AnoOnlyBase(BaseDetector):
    """What the AnoOnly detectors add to :class:`~deepod_mnp.base.BaseDetector`: mixed batches, one loss.

    A subclass builds the network (:meth:`_build_net`) and the criterion
    (:meth:`_build_criterion`), writes the base method's loss over a batch whose
    first rows are unlabeled (:meth:`_full_loss`) and scores one chunk
    (:meth:`inference_forward`). AnoOnly's loss is that loss on the anomalies'
    rows alone (:meth:`_anomaly_loss`).
    """

    n_ensemble = 1
    _parameter_constraints: ClassVar[dict] = {
        **BaseDetector._parameter_constraints,
        "loss_on": [Options(LOSS_ON)],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._fitted_attributes, "hidden_dims_", "epoch_steps_")
    _saved_attributes: ClassVar[tuple[str, ...]] = (
        *BaseDetector._saved_attributes, "hidden_dims_", "epoch_steps_")
    _anomalies_required = "AnoOnly's only loss is on labeled anomalies"

    def _check_training_data(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.bias:
            warnings.warn(f"{type(self).__name__}(bias=True): with additive biases (and BN shifts) the "
                          "anomaly-only loss can be lowered by moving every output at once, normal data "
                          "included; AnoOnly and DeepOD use bias=False.", UserWarning, stacklevel=3)

    # --------------------------------------------------------------- training
    def training_prepare(self, X: torch.Tensor, y: np.ndarray, *,
                         data: TrainingData) -> tuple[MixedBatchLoader, torch.nn.Module, Any]:
        """Build the network and criterion, and the loader of mixed unlabeled/anomaly batches.

        ``X`` is the device copy of the training data; ``data`` holds its
        unlabeled rows and the fit's RNG. torch's global generator (inside
        ``fit``'s ``fork_rng``) is seeded from it first: the initial weights
        and the losses that draw from it (DevLoss) see that seed.
        """
        torch.manual_seed(draw_seed(data.rng))
        steps = resolve_epoch_steps(self.epoch_steps, len(data.unlabeled), self.batch_size)
        net = self._build_net(X.shape[1], parse_hidden_dims(self.hidden_dims)).to(X.device)
        criterion = self._build_criterion(net, data.unlabeled)
        draw = full_pass_batches if self.epoch_steps == FULL_PASS else None
        loader = MixedBatchLoader(X, y, self.batch_size, self.anomaly_batch_size, steps, [data.rng], draw)
        return loader, net, criterion

    def _fitted_state(self, loader: MixedBatchLoader, net: torch.nn.Module, criterion: Any) -> dict[str, Any]:
        return {"hidden_dims_": parse_hidden_dims(self.hidden_dims), "epoch_steps_": len(loader)}

    def training_forward(self, batch_x: list[tuple[torch.Tensor, torch.Tensor]], net: torch.nn.Module,
                         criterion: Any) -> torch.Tensor:
        """AnoOnly's loss on one mixed batch.

        The unlabeled and anomalous rows go through ``net`` together, so in
        train mode BN normalises with the statistics of the whole batch; the loss
        then reads the anomalies' outputs only. Unlabeled rows therefore reach
        the gradient only through the BN statistics.
        """
        ((x_u, x_a),) = batch_x  # the loader's one stream of batches
        out = net(torch.cat([x_u, x_a]))
        if self.loss_on == "all":  # the control: the base method's whole loss on the same batches
            return self._full_loss(out, len(x_u), criterion)
        return self._anomaly_loss(out[len(x_u):], criterion)

    # ------------------------------------------------------------ subclasses
    def _build_net(self, n_features: int, hidden: list[int]) -> torch.nn.Module:
        raise NotImplementedError

    def _inference_net(self) -> torch.nn.Module:
        """A float64 copy of the network: float32 matrix products round differently with the number of
        rows in a chunk (by up to 2e-7 on some CPUs), so a row's score would depend on the rows scored
        with it. The copy lives only while one call scores; the network is small."""
        return copy.deepcopy(self.net).double().eval()

    def _build_criterion(self, net: torch.nn.Module, x_unlabeled: torch.Tensor) -> Any:
        raise NotImplementedError

    def _anomaly_loss(self, out_a: torch.Tensor, criterion: Any) -> torch.Tensor:
        """AnoOnly's loss: the base loss over labeled anomalies only (no unlabeled rows)."""
        return self._full_loss(out_a, 0, criterion)

    def _full_loss(self, out: torch.Tensor, n_unlabeled: int, criterion: Any) -> torch.Tensor:
        """The base method's loss over ``out``, whose first ``n_unlabeled`` rows are unlabeled."""
        raise NotImplementedError

    def _build_inference_net(self) -> torch.nn.Module:
        return self._build_net(self.n_net_features_, self.hidden_dims_).to(self.device_).eval()


_RAISES_AND_REFERENCES = f"""

    Raises
    ------
    ValueError
        From ``fit`` when ``y`` labels no anomaly: AnoOnly has no loss without one.

    References
    ----------{_REFERENCE}"""

_COMMON_PARAMS = """
    epochs : int, default=50
        Training epochs (at least 1).
    epoch_steps : int or -1, default=20
        Mini-batches per epoch, whatever the number of samples (50 x 20 is
        DevNet's reference setting; a fit on a few thousand rows takes seconds
        on one CPU core). ``-1`` is DeepOD's full pass: each epoch puts every
        unlabeled sample in exactly one of its ``ceil(n_unlabeled /
        batch_size)`` batches (the last one topped up with other unlabeled
        samples to ``batch_size``, so BN always sees full batches), each with
        ``anomaly_batch_size`` labeled anomalies drawn with replacement.
    batch_size : int, default=128
        Unlabeled samples per mini-batch (``b_u``), drawn without replacement.
    anomaly_batch_size : int, default=32
        Labeled anomalies per mini-batch (``b_a``), drawn with replacement, so
        a single labeled anomaly is enough.
    lr : float, default=1e-3
        Adam learning rate (DeepOD's default).
    weight_decay : float, default=1e-5
        Adam weight decay (the value DeepOD hard-codes).
    hidden_dims : str, int or list of int, default='100,50'
        Hidden layer widths, in DeepOD's forms (``'100,50'``, ``100``, ``[100, 50]``).
    act : str, default='ReLU'
        Activation, the name of an element-wise activation of ``torch.nn`` such as
        {'ReLU', 'LeakyReLU', 'Sigmoid', 'Tanh'} (every accepted name:
        ``deepod_mnp._params.ACTIVATION_NAMES``).
    bias : bool, default=False
        Additive biases in the linear layers and affine BN. Leave it False:
        with biases the anomaly-only loss can be lowered by shifting every
        output, normal data included (``fit`` warns).
    inference_batch_size : int, default=65536
        Rows scored per forward pass.
    contamination : float, default=0.1
        Expected share of anomalies, used only for ``threshold_`` and ``predict``.
    device : str, default='auto'
        ``'auto'`` (CUDA if available, else CPU) or any torch device string.
    verbose : int, default=0
        1 (or more) shows a progress bar over epochs and logs the loss at
        epoch 1 and every ``prt_steps`` epochs at INFO level to
        ``logging.getLogger('deepod_mnp.base')`` (every epoch at DEBUG level).
    prt_steps : int, default=10
        Epochs between two INFO log lines when ``verbose`` is on (DeepOD's
        ``prt_steps``, which prints instead).
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=42
        Seed of every random choice, drawn in ``fit`` without touching the
        global RNGs; the same seed gives the same scores on CPU.
    loss_on : {'anomalies', 'all'}, default='anomalies'
        ``'anomalies'`` is AnoOnly. ``'all'`` is its control: the base method's
        whole loss (unlabeled term included) on the same network, batches and
        budget, which isolates what the anomaly-only loss itself does.
    scaler : str or None, default='minmax'
        Input scaling learned from the training rows (fitted ``scaler_``), as
        MNP's: on min-max scaled features the identity, on raw units the same
        model; see :mod:`deepod_mnp.method.scaling`. None feeds X as given."""

_COMMON_ATTRIBUTES = """
    scaler_ : FeatureScaler or None
        The input scaling fitted on the training rows.
    encoder_ : TableEncoder or None
        The one-hot encoding of a table's text columns (None for numbers only).
    n_features_in_ : int
        Number of features (columns) seen in ``fit``.
    n_net_features_ : int
        The network's input width (the encoded width with an ``encoder_``).
    fit_info_ : dict
        The fit's record for the model card (rows, labels, time, versions).
    hidden_dims_ : list of int
        The parsed ``hidden_dims``.
    epoch_steps_ : int
        Mini-batches per epoch actually run (``epoch_steps`` resolved).
    device_ : torch.device
        Device the network lives on.
    loss_history_ : pandas.DataFrame
        Per-epoch mean of the anomaly-only loss (column ``loss``).
    decision_scores_ : ndarray of shape (n_samples,)
        Scores of the training data.
    threshold_ : float
        The ``1 - contamination`` quantile of ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        ``decision_scores_ > threshold_`` as 0/1."""


_ATTRIBUTES_AND_REFERENCES = _COMMON_ATTRIBUTES + _RAISES_AND_REFERENCES


class DevNetAnoOnly(_AnoOnlyBase):
    __doc__ = f"""DevNet trained the AnoOnly way: deviation loss on labeled anomalies only, plus BN.

    DevNet (Pang et al., KDD 2019) maps a sample to a scalar score trained with
    the deviation loss ``(1 - y) |dev| + y max(0, margin - dev)``, where ``dev``
    is the score standardised by a N(0, 1) reference. AnoOnly changes three things:

    * the inlier term ``(1 - y) |dev|`` is dropped, so the loss is DeepOD's
      :class:`~deepod.models.tabular.devnet.DevLoss` with ``y = 1`` applied to
      the labeled anomalies of the batch only;
    * a ``BatchNorm1d`` (``affine=bias``) sits before the scoring layer. With
      ``bias=False`` the training-batch mean of the scores is then exactly 0,
      so pushing the anomalies above ``margin`` pushes the unlabeled majority
      down: the weak supervision of normal data;
    * each batch is ``batch_size`` unlabeled samples plus ``anomaly_batch_size``
      labeled anomalies, for ``epoch_steps`` steps per epoch (DevNet balances
      its batches half and half).

    The network is DeepOD's ``MLPnet`` without BN for the hidden layers
    (Linear -> act), then BN, then ``Linear(hidden_dims[-1], 1)``. The score is
    the network output in eval mode (BN with its running statistics).
    ``decision_function(X, return_rep=True)`` returns the BN-normalised last
    hidden layer as the representation.

    Parameters
    ----------{_COMMON_PARAMS}
    margin : float, default=5.0
        Confidence margin of the deviation loss (DeepOD's and DevNet's default).
    l : int, default=5000
        Size of the Gaussian reference sample of the deviation loss.
    rep_dim : None, default=None
        Accepted for DeepOD's shared vocabulary only: DevNet has no
        representation layer of its own (DeepOD's DevNet ignores its
        ``rep_dim``). Any other value raises ``ValueError`` in ``fit``; the
        width of the last hidden layer is ``hidden_dims[-1]``.

    Attributes
    ----------
    net_ : torch.nn.Sequential
        ``body`` (MLPnet), ``bn`` and ``score`` (also ``net``).{_ATTRIBUTES_AND_REFERENCES}
    G. Pang, C. Shen, A. van den Hengel. Deep Anomaly Detection with Deviation
    Networks. KDD 2019.
    """

    model_name = "DevNetAnoOnly"

    def __init__(self, *, epochs: int = 50, epoch_steps: int = 20, batch_size: int = 128,
                 anomaly_batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 1e-5,
                 hidden_dims: Any = "100,50", act: str = "ReLU", bias: bool = False,
                 margin: float = 5.0, l: int = 5000, rep_dim: None = None,  # noqa: E741
                 inference_batch_size: int = 65536,
                 contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 prt_steps: int = 10, random_state: int | None = 42, loss_on: str = "anomalies",
                 scaler: str | None = DEFAULT_SCALER) -> None:
        store_params(self, locals())

    _parameter_constraints: ClassVar[dict] = {
        **_AnoOnlyBase._parameter_constraints,
        "margin": [POSITIVE_REAL],
        "l": [Interval(numbers.Integral, 2)],
        "rep_dim": [Predicate(lambda v: v is None,
                              "None: DevNet scores from its last hidden layer, whose width is "
                              "hidden_dims[-1], and has no representation layer for rep_dim to set "
                              "(DeepOD's DevNet ignores it)")],
    }

    def _build_net(self, n_features: int, hidden: list[int]) -> torch.nn.Sequential:
        return torch.nn.Sequential(OrderedDict([
            ("body", _mlp_body(n_features, hidden, self.act, self.bias)),
            ("bn", torch.nn.BatchNorm1d(hidden[-1], affine=self.bias)),
            ("score", torch.nn.Linear(hidden[-1], 1, bias=self.bias)),
        ]))

    def _build_criterion(self, net: torch.nn.Module, x_unlabeled: torch.Tensor) -> DevLoss:
        return DevLoss(margin=self.margin, l=self.l, reduction="mean")

    def _full_loss(self, out: torch.Tensor, n_unlabeled: int, criterion: DevLoss) -> torch.Tensor:
        return criterion(deviation_labels(out, n_unlabeled), out)

    def inference_forward(self, batch_x: torch.Tensor, net: torch.nn.Module,
                          criterion: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Representation (BN-normalised last hidden layer) and score of one chunk."""
        z = net.bn(net.body(_as_net_input(batch_x, net, self.device_)))
        return z, net.score(z).view(-1)


class DeepSADAnoOnly(_AnoOnlyBase):
    __doc__ = f"""Deep SAD trained the AnoOnly way: inverse-distance loss on labeled anomalies only, plus BN.

    Deep SAD (Ruff et al., ICLR 2020) maps samples to a representation and
    trains ``||phi(x) - c||^2`` on unlabeled samples and ``eta / (||phi(x) - c||^2 + eps)``
    on labeled anomalies. AnoOnly changes three things:

    * the unlabeled term ``||phi(x) - c||^2`` is dropped; the loss is DeepOD's
      :class:`~deepod.models.tabular.dsad.DSADLoss` with target ``-1``
      (``eta (dist + eps) ** -1``) on the labeled anomalies of the batch only;
    * every hidden layer is Linear -> BN (``affine=bias``) -> act, as in
      AnoOnly's Deep SAD MLP; the representation layer
      ``Linear(hidden_dims[-1], rep_dim)`` has no BN. (DeepOD's Deep SAD has no
      BN; its ``MLPnet(batch_norm=True)`` would put BN after the activation and
      on the representation, which trained markedly worse here);
    * each batch is ``batch_size`` unlabeled samples plus ``anomaly_batch_size``
      labeled anomalies, for ``epoch_steps`` steps per epoch.

    The centre ``c`` is computed as in DeepOD's Deep SAD: the mean
    representation of the unlabeled data by the untrained network in eval mode
    (so BN still holds its initial running statistics), with coordinates closer
    to 0 than 0.1 pushed to +-0.1. (Normalising that pass with the unlabeled
    data's batch statistics instead scored slightly lower on the test data.)
    The score is the squared distance to ``c`` in eval mode;
    ``decision_function(X, return_rep=True)`` returns the representations.

    Parameters
    ----------{_COMMON_PARAMS}
    rep_dim : int, default=128
        Dimension of the representation (DeepOD's default).
    eta : float, default=1.0
        Weight of the anomaly term.

    Attributes
    ----------
    net_ : torch.nn.Sequential
        ``body`` (Linear -> BN -> act layers) and ``code`` (also readable as ``net``, DeepOD's name).
    center_ : ndarray of shape (rep_dim,)
        The hypersphere centre ``c``.{_ATTRIBUTES_AND_REFERENCES}
    L. Ruff, R. A. Vandermeulen, N. Goernitz, A. Binder, E. Mueller, K.-R. Mueller,
    M. Kloft. Deep Semi-Supervised Anomaly Detection. ICLR 2020.
    """

    model_name = "DeepSADAnoOnly"
    center_eps = 0.1  # DeepOD's DeepSAD._set_c

    def __init__(self, *, epochs: int = 50, epoch_steps: int = 20, batch_size: int = 128,
                 anomaly_batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 1e-5,
                 hidden_dims: Any = "100,50", act: str = "ReLU", bias: bool = False,
                 rep_dim: int = 128, eta: float = 1.0, inference_batch_size: int = 65536,
                 contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 prt_steps: int = 10, random_state: int | None = 42, loss_on: str = "anomalies",
                 scaler: str | None = DEFAULT_SCALER) -> None:
        store_params(self, locals())

    _parameter_constraints: ClassVar[dict] = {
        **_AnoOnlyBase._parameter_constraints,
        "rep_dim": [POSITIVE_INT],
        "eta": [POSITIVE_REAL],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (*_AnoOnlyBase._fitted_attributes, "center_")
    _saved_attributes: ClassVar[tuple[str, ...]] = (*_AnoOnlyBase._saved_attributes, "center_")

    def _build_net(self, n_features: int, hidden: list[int]) -> torch.nn.Sequential:
        return torch.nn.Sequential(OrderedDict([
            ("body", linear_bn_act_body(n_features, hidden, self.act, self.bias)),
            ("code", torch.nn.Linear(hidden[-1], self.rep_dim, bias=self.bias)),
        ]))

    def _build_criterion(self, net: torch.nn.Module, x_unlabeled: torch.Tensor) -> DSADLoss:
        # DeepOD's DeepSAD._set_c needs a (x, y) loader and a resolved self.device, so it is not called
        c = hypersphere_center(net, x_unlabeled, self.inference_batch_size, self.center_eps)
        return DSADLoss(c=c, eta=self.eta, reduction="mean")

    def _fitted_state(self, loader: MixedBatchLoader, net: torch.nn.Module,
                      criterion: DSADLoss) -> dict[str, Any]:
        return {**super()._fitted_state(loader, net, criterion),
                "center_": criterion.c.cpu().numpy().astype(np.float64)}

    def _inference_criterion(self) -> DSADLoss:
        """The loss holding ``c`` (from ``center_``), which scores a sample by its distance to ``c``."""
        c = torch.as_tensor(self.center_, dtype=torch.float32, device=self.device_)
        return DSADLoss(c=c, eta=self.eta, reduction="mean")

    def _full_loss(self, out: torch.Tensor, n_unlabeled: int, criterion: DSADLoss) -> torch.Tensor:
        return criterion(out, deep_sad_targets(out, n_unlabeled))

    def inference_forward(self, batch_x: torch.Tensor, net: torch.nn.Module,
                          criterion: DSADLoss) -> tuple[torch.Tensor, torch.Tensor]:
        """Representation and squared distance to ``c`` of one chunk."""
        rep = net(_as_net_input(batch_x, net, self.device_))
        return rep, criterion(rep, reduction="none")
