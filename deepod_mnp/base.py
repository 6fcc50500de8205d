"""The one skeleton of every detector of deepod-mnp: :class:`BaseDetector`.

It owns what the detectors share: parameter and input validation, device and
seeds, the training loop with its divergence check, chunked (threaded)
scoring, ``decision_function`` and PyOD's detector API (``predict``,
``predict_proba``, ``predict_confidence``, ``fit_predict``), persistence and
the cleanup of a failed fit; its parameters include DeepOD's shared ones. A
detector writes only DeepOD's hooks (``training_prepare``,
``training_forward``, ``inference_prepare``, ``inference_forward``,
``epoch_update``), its network and its loss (see CONTRIBUTING.md,
"Architecture").
"""
from __future__ import annotations

import contextlib
import logging
import numbers
import os
import platform
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from deepod.core.base_model import BaseDeepAD
from scipy.special import erf
from scipy.stats import binom
from sklearn.base import BaseEstimator
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.validation import check_array, check_is_fitted
from tqdm.auto import tqdm

from deepod_mnp import persistence
from deepod_mnp._chunks import score_chunks
from deepod_mnp._params import (
    ACTIVATION,
    BOOLEAN,
    FULL_PASS_STEPS,
    HIDDEN_DIMS,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_REAL,
    NONE,
    POSITIVE_INT,
    POSITIVE_REAL,
    RANDOM_STATE,
    Interval,
    Options,
    Predicate,
    validate_params,
)
from deepod_mnp._validation import check_feature_names, check_scoring_X, check_X, check_y, feature_names
from deepod_mnp.method.scaling import DEFAULT_SCALER, FeatureScaler, make_scaler
from deepod_mnp.preprocessing import TableEncoder, has_text

logger = logging.getLogger(__name__)
_SCALE_BLOCK_ROWS = 8192  # rows scaled at a time (float64 temporaries of 8192 x D)


class DegenerateFitWarning(UserWarning):
    """A fit that ran but cannot rank anything: one distinct training row, or constant training scores."""


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


@dataclass
class TrainingData:
    """What ``fit`` hands to the training hooks explicitly; it lives only while ``fit`` runs.

    Attributes
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The training data on the training device (one copy for all members).
    y : ndarray of shape (n_samples,)
        1 for a labeled anomaly, 0 for an unlabeled sample.
    unlabeled : torch.Tensor
        The rows of ``X`` with ``y == 0``, on the training device.
    rng : numpy.random.Generator
        The source of every random choice of this fit.
    """

    X: torch.Tensor
    y: np.ndarray
    unlabeled: torch.Tensor
    rng: np.random.Generator


def store_params(estimator: Any, params: dict[str, Any]) -> None:
    """What every ``__init__`` does: store each argument under its name: ``store_params(self, locals())``."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def draw_seed(rng: np.random.Generator) -> int:
    """A seed for another generator (torch's), drawn from the fit's."""
    return int(rng.integers(2**31 - 1))


def _versions(model: Any) -> dict[str, str]:
    """Versions of the detector's own package, DeepOD and the numeric stack, and Python (for the card)."""
    out = {}
    own = type(model).__module__.partition(".")[0]
    for dist in dict.fromkeys([own, "deepod", "torch", "numpy", "scikit-learn", "pandas"]):
        try:
            meta = metadata.metadata(dist)
        except metadata.PackageNotFoundError:
            continue
        out[str(meta["Name"])] = str(meta["Version"])
    out["python"] = platform.python_version()
    return out


def _warn_if_degenerate_data(model: Any, X: np.ndarray) -> None:
    """``DegenerateFitWarning`` when every training row is the same (all features constant)."""
    if len(X) > 1 and not np.any(X != X[0]):
        warnings.warn(f"{type(model).__name__} is fitted on {len(X)} copies of one row (every feature is "
                      "constant): nothing distinguishes the samples, so every score will be the same.",
                      DegenerateFitWarning, stacklevel=3)


class BaseDetector(BaseDeepAD, BaseEstimator):
    """Fitting, training, scoring and persistence shared by every detector of the project.

    A subclass declares its parameters (keyword-only ``__init__`` that only
    stores them, and ``_parameter_constraints`` extending this class's), its
    fitted attributes (``_fitted_attributes``) and DeepOD's hooks. ``fit``
    draws every seed from ``random_state`` inside ``torch.random.fork_rng``
    (the global RNGs are left alone) and passes the random generator and the
    device copy of the data to the hooks as arguments (:class:`TrainingData`).

    A DataFrame with text columns is encoded by the fitted ``encoder_`` (a
    :class:`~deepod_mnp.preprocessing.TableEncoder`: one-hot, unseen
    categories as zeros) before the input scaling, in ``fit`` and in every
    scoring call, so the raw table goes in; ``n_features_in_`` and
    ``feature_names_in_`` are then its columns, and the network reads the
    encoded ``n_net_features_``.

    Fitted attributes are exactly :attr:`_fitted_attributes` (plus
    ``feature_names_in_`` when ``X`` was a DataFrame); nothing else stays on
    the object after ``fit`` or a scoring call, and a fit that raises leaves
    the detector unfitted. DeepOD's ``BaseDeepAD.__init__`` is not called, so
    none of its working attributes (``train_loader``, ``test_loader``,
    ``criterion``, ``n_samples``, ...) exist.
    """

    data_type = "tabular"

    #: Parameter name -> allowed forms, checked by :func:`deepod_mnp._params.validate_params`.
    _parameter_constraints: ClassVar[dict] = {
        "epochs": [POSITIVE_INT],  # 0 would score with an untrained network
        "batch_size": [POSITIVE_INT],
        "anomaly_batch_size": [POSITIVE_INT],
        "lr": [POSITIVE_REAL],
        "weight_decay": [NON_NEGATIVE_REAL],
        "inference_batch_size": [POSITIVE_INT],
        "contamination": [Interval(numbers.Real, 0, 0.5, low_inclusive=False)],
        # DeepOD's shared vocabulary: every DeepOD tabular detector takes these (README, "PyOD and DeepOD")
        "epoch_steps": [POSITIVE_INT, FULL_PASS_STEPS],
        "prt_steps": [POSITIVE_INT],
        "verbose": [NON_NEGATIVE_INT, BOOLEAN],
        "hidden_dims": [HIDDEN_DIMS],
        "act": [ACTIVATION],
        "bias": [BOOLEAN],
        "random_state": RANDOM_STATE,
        "device": [Predicate(lambda v: isinstance(v, (str, torch.device)), "a torch device string such as "
                                                                         "'auto', 'cpu' or 'cuda:0'")],
        "scaler": [Options((DEFAULT_SCALER,)), NONE],  # min-max scaling learned in fit, or X as given
    }
    #: The fitted state after ``fit`` (``feature_names_in_`` besides, for DataFrames).
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        "net_", "n_features_in_", "encoder_", "scaler_", "device_", "loss_history_", "decision_scores_",
        "threshold_", "labels_", "fit_info_")
    #: Fitted attributes that :meth:`save_model` writes besides the weights (the rest are rebuilt).
    _saved_attributes: ClassVar[tuple[str, ...]] = (
        "n_features_in_", "encoder_", "scaler_", "decision_scores_", "loss_history_", "fit_info_")
    #: Why the detector cannot train without a labeled anomaly, or None (it warns instead).
    _anomalies_required: ClassVar[str | None] = None
    #: The terms a detector that trains without labeled anomalies drops (named in its warning).
    _no_anomaly_terms: ClassVar[str] = "the loss on anomalies"

    # ------------------------------------------------------------------ checks
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    @property
    def net(self) -> torch.nn.Module:
        """The trained network ``net_`` under DeepOD's name (a fitted attribute ends in ``_``)."""
        try:
            return self.__dict__["net_"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no network before fit") from None

    @net.setter
    def net(self, value: torch.nn.Module) -> None:
        self.__dict__["net_"] = value

    @property
    def n_net_features_(self) -> int:
        """Width of the network's input: ``n_features_in_``, or the encoded width with an ``encoder_``."""
        encoder = getattr(self, "encoder_", None)
        return self.n_features_in_ if encoder is None else int(encoder.n_features_out_)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: an outlier detector of finite dense 2-D data, weakly supervised by ``y``."""
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        tags.target_tags.required = self._anomalies_required is not None
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def _clear_fitted(self, keep: set[str] | None = None) -> None:
        """Drop the fitted state (and, with ``keep``, every attribute not in it): unfitted again."""
        fitted = {*self._fitted_attributes, "feature_names_in_"}
        for name in [k for k in vars(self) if k in fitted or (keep is not None and k not in keep)]:
            delattr(self, name)

    def _check_y(self, y: Any, n_samples: int) -> np.ndarray:
        """Weak labels as int64 0/1; the rules on anomalies and unlabeled rows every detector shares."""
        name = type(self).__name__
        if y is None and self._anomalies_required:
            raise ValueError(f"{name} needs y with at least one labeled anomaly (1): "
                             f"{self._anomalies_required}.")
        y = np.zeros(n_samples, dtype=np.int64) if y is None else check_y(y, n_samples)
        if not np.any(y == 1):
            if self._anomalies_required:
                raise ValueError(f"y labels no anomaly; {name} needs at least one labeled anomaly (1), "
                                 f"since {self._anomalies_required}.")
            warnings.warn(f"y labels no anomaly: {name} trains without the labeled-anomaly terms "
                          f"({self._no_anomaly_terms}).", UserWarning, stacklevel=3)
        if not np.any(y == 0):
            raise ValueError(f"y labels every sample as an anomaly; {name} needs unlabeled samples (0).")
        return y

    def _check_training_data(self, X: np.ndarray, y: np.ndarray) -> None:
        """Checks of the parameters against the data (none by default)."""

    # --------------------------------------------------------------- training
    def fit(self, X: Any, y: Any = None) -> BaseDetector:
        """Fit the detector on unlabeled samples and labeled anomalies.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (NumPy array or pandas DataFrame), at least 2 rows. A
            DataFrame whose column names are all strings sets
            ``feature_names_in_``, which scoring then checks as scikit-learn does.
            Its text columns (object, string or category dtype) are one-hot
            encoded by the fitted ``encoder_``
            (:mod:`deepod_mnp.preprocessing`); every other column must be real.
        y : array-like of shape (n_samples,), optional
            1 for a labeled anomaly, 0 for an unlabeled sample.

        Returns
        -------
        self
            The fitted detector. ``fit_info_`` records what the model card
            shows: rows, labeled anomalies, fit time, device, torch threads and
            versions.

        Raises
        ------
        ValueError
            Invalid parameters (each checked against ``_parameter_constraints``), X or y.
        RuntimeError
            Training, pretraining or the fitted network diverged (non-finite); the
            message names the stage. The detector is left unfitted.

        Warns
        -----
        DegenerateFitWarning
            The training rows are all the same, or the training scores are.

        Notes
        -----
        Training runs with one torch thread, torch's count restored afterwards:
        these small networks train several times faster on one thread than
        on all cores (see :meth:`_fit_threads`, which also says how to choose
        another count).
        """
        self._clear_fitted()
        before = set(vars(self))  # the parameters (and whatever a subclass set before fit)
        validate_params(self)
        start = time.perf_counter()
        names = feature_names(X)  # scikit-learn's rule: all-string column names, else none
        encoder = TableEncoder() if has_text(X) else None
        if encoder is not None:
            X = encoder.fit_transform(X)  # the text columns one-hot encoded (numeric ones as they are)
        scaler = make_scaler(self.scaler)
        X = self._scaled(X, scaler, fit=True)  # validated (at least 2 rows), scaled, float32
        y = self._check_y(y, len(X))
        self._check_training_data(X, y)
        _warn_if_degenerate_data(self, X)
        device = resolve_device(self.device)
        try:
            with self._fit_threads():
                threads = torch.get_num_threads()
                # the network and the detector's own fitted state, as the hooks return them; the training
                # scores are computed with them, every other fitted attribute follows
                self._set_fitted({"device_": device, **self._fit(X, y, device)})
                scores = self._training_scores(X)
            self._check_finite_stage("training", "scores of the training data",
                                     bool(np.isfinite(scores).all()))
            self._warn_if_constant_scores(scores)
            self._set_fitted({
                "decision_scores_": scores, **self._threshold(scores), "scaler_": scaler, "encoder_": encoder,
                # a table's columns, before encoding
                "n_features_in_": X.shape[1] if encoder is None else len(encoder.feature_names_in_),
                **({} if names is None else {"feature_names_in_": names}),
                "fit_info_": {
                    "n_samples": int(len(X)), "n_net_features": int(X.shape[1]),
                    "n_labeled_anomalies": int(np.sum(y == 1)),
                    "fit_seconds": round(time.perf_counter() - start, 3), "device": str(device),
                    "torch_threads": int(threads),
                    "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "versions": _versions(self)}})
        except BaseException:
            self._clear_fitted(keep=before)  # nothing of a failed fit stays, the device copy of X included
            raise
        return self

    def _set_fitted(self, state: dict[str, Any]) -> None:
        """Assign fitted attributes (only ``fit`` and ``load_model`` do; hooks return, never set, them)."""
        for name, value in state.items():
            setattr(self, name, value)

    @contextlib.contextmanager
    def _fit_threads(self) -> Iterator[None]:
        """torch's intra-op thread count while ``fit`` trains: one, unless ``DEEPOD_MNP_FIT_THREADS`` says.

        The networks are small, so one thread trains fastest: on a busy
        2-core machine MNP fitted Pendigits (6,870 rows) in 3.4-4.0 s with one
        thread against 20-42 s with torch's default of two, and Magic Gamma
        (19,020 rows) in 4.6-5.4 s against 35-53 s (medians of three fits in
        two runs; ``scripts/fit_threads.py``, ``results/fit_threads/``). The
        environment variable ``DEEPOD_MNP_FIT_THREADS`` sets
        another count (``N``) or leaves torch's own (``torch``). torch's
        count is restored when ``fit`` returns or raises.
        """
        wanted = os.environ.get("DEEPOD_MNP_FIT_THREADS", "1").strip()
        old = torch.get_num_threads()
        if wanted.lower() == "torch":
            yield
            return
        if not (wanted.isdigit() and int(wanted) > 0):
            raise ValueError(f"DEEPOD_MNP_FIT_THREADS must be a positive integer or 'torch', got {wanted!r}.")
        torch.set_num_threads(int(wanted))
        try:
            yield
        finally:
            torch.set_num_threads(old)

    def _scaled(self, X: Any, scaler: FeatureScaler | None, *, fit: bool = False) -> np.ndarray:
        """Validated X with the input scaling applied (fitted first when ``fit``), as float32.

        Validation is :func:`~deepod_mnp._validation.check_X` in ``fit`` (at least
        two rows; ``fit`` encodes text columns before) and
        :func:`~deepod_mnp._validation.check_scoring_X` when scoring, or, for a
        detector with an ``encoder_``, scikit-learn's feature-name check of the
        table and the encoding; without a scaler its result is returned as is.
        With one, X is scaled in float64 before the cast to float32, so raw
        units of any magnitude keep their precision.
        """
        encoder = None if fit else getattr(self, "encoder_", None)
        if fit:
            checked = check_X(X, min_samples=2)
        elif encoder is not None:
            if not isinstance(X, pd.DataFrame):
                raise ValueError(f"{type(self).__name__} was fitted on a table with text column(s) "
                                 f"{encoder.text_} and encodes them by name: X must be a pandas DataFrame "
                                 f"with the columns of fit, got {type(X).__name__}.")
            check_feature_names(self, X)  # the columns of fit, in their order (scikit-learn's rule)
            X = encoder.transform(X)
            checked = check_X(X)
        else:
            checked = check_scoring_X(self, X)
        if scaler is None:
            return checked
        if fit:
            scaler.fit(check_array(X, dtype=np.float64, ensure_2d=True, order="C", input_name="X"))
        # The input's own values (not the float32 copy), scaled in row blocks: the float64
        # temporaries stay bounded whatever the number of rows.
        src = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
        if src.dtype.kind not in "fiu" or src.shape != checked.shape:
            src = checked
        out = np.empty(checked.shape, dtype=np.float32)
        for start in range(0, len(out), _SCALE_BLOCK_ROWS):
            stop = start + _SCALE_BLOCK_ROWS
            out[start:stop] = scaler.transform(src[start:stop], np.float32)
        return out

    def _fit(self, X: np.ndarray, y: np.ndarray, device: torch.device) -> dict[str, Any]:
        """Prepare and train the network with DeepOD's hooks; the fitted state they give.

        ``training_prepare`` gets the device copy of X and the fit's generator
        (:class:`TrainingData`) inside ``torch.random.fork_rng``, so a hook that
        seeds torch's global generator (AnoOnly's initial weights) leaves the
        caller's alone. Returns ``net_`` (in eval mode), ``loss_history_`` and
        :meth:`_fitted_state` of what ``training_prepare`` returned.
        """
        rng = np.random.default_rng(self.random_state)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # restored after
            X_t = torch.from_numpy(X).to(device)
            data = TrainingData(X_t, y, X_t[torch.from_numpy(np.flatnonzero(y == 0)).to(device)], rng)
            loader, net, criterion = self.training_prepare(X_t, y, data=data)
            history = self._loss_history(self._training(loader, net, criterion))
            state = {"net_": net.eval(), "loss_history_": history,
                     **self._fitted_state(loader, net, criterion)}
            del data, X_t, loader
        self._check_finite_stage("training", "weights",
                                 all(bool(torch.isfinite(p).all()) for p in net.state_dict().values()))
        return state

    def _fitted_state(self, loader: Any, net: torch.nn.Module, criterion: Any) -> dict[str, Any]:
        """The detector's own fitted attributes, read from what ``training_prepare`` returned (none here)."""
        return {}

    def _loss_history(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``loss_history_`` from :meth:`_training`'s rows, one per epoch (as they are by default)."""
        return rows

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        """``decision_scores_``: the scores of the (scaled) training rows."""
        return self._score(X)

    def _warn_if_constant_scores(self, scores: np.ndarray) -> None:
        """``DegenerateFitWarning`` when every training sample has the same score."""
        if np.ptp(scores) <= 1e-7 * max(1.0, float(np.abs(scores).max())):
            warnings.warn(f"{type(self).__name__} scores every training sample the same "
                          f"({scores[0]:.6g}): the fit ranks nothing. Check the input data "
                          "(constant or duplicated rows) and the training budget.",
                          DegenerateFitWarning, stacklevel=3)

    def _optimizer(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimizer of :meth:`_training`: Adam with ``lr`` and ``weight_decay``."""
        return torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _training(self, loader: Any, net: torch.nn.Module, criterion: Any) -> pd.DataFrame:
        """:meth:`_optimizer` over ``epochs`` passes of ``loader``; one row of ``epoch_update`` per epoch.

        The steps are those of DeepOD's ``BaseDeepAD._training`` (``training_forward``,
        backward, step), with a progress bar, logging instead of print and a
        divergence check after each epoch; the loader yields exactly the steps
        of an epoch (DeepOD's loop allows one more than ``epoch_steps``).
        """
        optimizer = self._optimizer(net)
        rows = []
        net.train()
        for epoch in tqdm(range(1, self.epochs + 1), desc=f"{type(self).__name__} epochs",
                          disable=not self.verbose, leave=False):
            total = torch.zeros((), device=next(net.parameters()).device)
            for batch in loader:
                loss = self.training_forward(batch, net, criterion)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            rows.append(self.epoch_update(criterion=criterion, epoch=epoch,
                                          epoch_loss=float(total) / len(loader)))
            if self.verbose and (epoch == 1 or epoch % self.prt_steps == 0):  # DeepOD's prt_steps
                logger.info("%s epoch %d: %s", type(self).__name__, epoch, rows[-1])
            else:
                logger.debug("%s epoch %d: %s", type(self).__name__, epoch, rows[-1])
        net.eval()
        return pd.DataFrame(rows).rename_axis("epoch")

    def epoch_update(self, criterion: Any = None, epoch: int = 0,
                     epoch_loss: float = float("nan")) -> dict[str, float]:
        """The epoch's row of ``loss_history_`` (by default its mean loss); raises if it diverged."""
        self._check_finite({"loss": epoch_loss}, epoch)
        return {"loss": epoch_loss}

    def _check_finite(self, losses: dict[str, float], epoch: int) -> None:
        """The divergence check: a non-finite mean loss ends the fit with ``RuntimeError``."""
        if not np.all(np.isfinite(list(losses.values()))):
            shown = losses["loss"] if list(losses) == ["loss"] else losses
            raise RuntimeError(f"{type(self).__name__} training diverged: non-finite loss {shown} at epoch "
                               f"{epoch}. Try a smaller lr or check the input scaling.")

    def _check_finite_stage(self, stage: str, what: str, finite: bool) -> None:
        """The divergence check of a stage that is not an epoch: ``RuntimeError`` unless ``finite``."""
        if not finite:
            raise RuntimeError(f"{type(self).__name__} {stage} diverged: non-finite {what}. "
                               f"Try a smaller lr (lr={self.lr!r}) or check the input scaling.")

    def _threshold(self, scores: np.ndarray) -> dict[str, Any]:
        """``threshold_`` and ``labels_`` of the training scores (DeepOD's rule)."""
        threshold = np.percentile(scores, 100 * (1 - self.contamination))
        return {"threshold_": threshold, "labels_": (scores > threshold).astype("int").ravel()}

    # -------------------------------------------------------------- inference
    def inference_prepare(self, X: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Large contiguous chunks of X (no per-row collation, no side effects)."""
        return torch.from_numpy(X).split(self.inference_batch_size)

    def _inference_net(self) -> torch.nn.Module:
        """The network that scores (the fitted one, in eval mode; a detector may score with a copy)."""
        return self.net.eval()

    def _inference_criterion(self) -> Any:
        """The criterion ``inference_forward`` receives (None unless scoring needs one)."""
        return None

    def _score(self, X: np.ndarray, return_rep: bool = False):
        """Scores (and with ``return_rep`` the representations) of the chunks of :meth:`inference_prepare`.

        The chunks go through :func:`deepod_mnp._chunks.score_chunks`, the one
        chunk loop: each chunk's scores are written into one array as it is
        scored, and without ``return_rep`` its representations are dropped, so
        scoring holds only the scores besides one chunk per worker. On a CPU
        with several torch threads the chunks are scored by as many Python
        threads of one torch thread each: many small operations run faster
        side by side than split across threads one by one (BENCHMARKS.md,
        "Speed and scale"). torch's thread count is 1 while they run and is
        restored afterwards.
        """
        net, criterion = self._inference_net(), self._inference_criterion()
        chunks = list(self.inference_prepare(X))
        reps: list[np.ndarray | None] = [None] * len(chunks)

        def forward(i: int) -> np.ndarray:
            with torch.inference_mode():  # grad mode is per thread
                z, chunk_scores = self.inference_forward(chunks[i], net, criterion)
                if return_rep:
                    reps[i] = z.cpu().numpy()
                return chunk_scores.cpu().numpy()

        sizes = [len(chunk) for chunk in chunks]
        n_threads = torch.get_num_threads()
        workers = min(n_threads, len(chunks)) if self.device_.type == "cpu" else 1
        if workers > 1:
            torch.set_num_threads(1)
            try:
                scores = score_chunks(forward, sizes, workers)
            finally:
                torch.set_num_threads(n_threads)
        else:
            scores = score_chunks(forward, sizes)
        return (scores, np.concatenate(reps)) if return_rep else scores

    def _check_scoring_X(self, X: Any) -> np.ndarray:
        """Validated X with the fitted input scaling applied: what the network sees."""
        check_is_fitted(self)
        return self._scaled(X, getattr(self, "scaler_", None))

    def decision_function(self, X: Any, return_rep: bool = False):
        """Anomaly scores of X; higher is more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score. Each score depends on its own row only. A DataFrame
            must have the columns of ``fit`` in the same order when ``fit`` saw names
            (``ValueError`` otherwise; names on one side only warn).
        return_rep : bool, default=False
            Also return each sample's representation, as DeepOD's detectors do.
            Without it no representation is kept: scoring holds the scores and one
            chunk per worker.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        representations : ndarray of shape (n_samples, n_rep)
            Only with ``return_rep=True``.
        """
        return self._score(self._check_scoring_X(X), return_rep)

    # ------------------------------------------------------ PyOD's detector API
    def predict(self, X: Any, return_confidence: bool = False):
        """0/1 labels: 1 where the score exceeds ``threshold_`` (PyOD's and DeepOD's ``predict``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to label.
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence`'s confidence in each label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            1 for an outlier, 0 for an inlier.
        confidence : ndarray of shape (n_samples,)
            Only with ``return_confidence=True``.
        """
        scores = self.decision_function(X)
        labels = self._labels(scores)
        return (labels, self._confidence(scores)) if return_confidence else labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` (and the weak labels ``y``), then return ``labels_``, as PyOD's ``fit_predict`` does.

        The labels are 0/1 (PyOD's convention), not scikit-learn's -1/1.
        """
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any, method: str = "linear", return_confidence: bool = False):
        """Outlier probabilities ``[[P(inlier), P(outlier)], ...]`` from the scores, as PyOD computes them.

        Both conversions are scaled by the training scores ``decision_scores_``:

        * ``'linear'``: min-max scaling of the score by the training scores'
          range, clipped to [0, 1];
        * ``'unify'``: ``erf((s - mu) / (sigma * sqrt(2)))`` clipped to [0, 1],
          with ``mu``, ``sigma`` the mean and standard deviation of the
          training scores (Kriegel et al., SDM 2011); when the training
          scores are all equal (``sigma = 0``) its limit: 1 above them, 0
          at or below. Neither returns NaN.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.
        method : {'linear', 'unify'}, default='linear'
            The conversion.
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 1 is the outlier probability, column 0 one minus it.
        confidence : ndarray of shape (n_samples,)
            Only with ``return_confidence=True``.
        """
        if method not in ("linear", "unify"):
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}.")
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            outlier = MinMaxScaler().fit(train.reshape(-1, 1)).transform(scores.reshape(-1, 1)).ravel()
        else:
            sigma = np.std(train)
            # constant training scores: erf's limit as sigma -> 0 (1 above their value, 0 at or below)
            outlier = (erf((scores - np.mean(train)) / (sigma * np.sqrt(2))) if sigma > 0
                       else (scores > np.mean(train)).astype(np.float64))
        proba = np.empty((len(scores), 2))
        proba[:, 1] = outlier.clip(0, 1)
        proba[:, 0] = 1 - proba[:, 1]
        return (proba, self._confidence(scores)) if return_confidence else proba

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in each label of :meth:`predict`, by ExCeeD (Perini et al., ECML PKDD 2020).

        A sample's outlier probability is the Bayesian estimate
        ``(1 + n_below) / (2 + n)`` from the ``n_below`` of the ``n`` training
        scores at or below its score; the confidence is the probability that
        the sample would keep its label were the training set drawn again:
        ``1 - binom.cdf(n - int(n * contamination), n, p)`` for a predicted
        outlier and one minus that for a predicted inlier. It equals PyOD's
        ``predict_confidence`` (computed here in one vectorised pass).

        Returns
        -------
        confidence : ndarray of shape (n_samples,)
            In [0, 1].
        """
        return self._confidence(self.decision_function(X))

    def _labels(self, scores: np.ndarray) -> np.ndarray:
        return (scores > self.threshold_).astype("int").ravel()

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        """ExCeeD's confidence of the labels of ``scores`` (see :meth:`predict_confidence`)."""
        n = len(self.decision_scores_)
        n_below = np.searchsorted(np.sort(self.decision_scores_), scores, side="right")
        confidence = 1 - binom.cdf(n - int(n * self.contamination), n, (1 + n_below) / (2 + n))
        inlier = self._labels(scores) == 0
        confidence[inlier] = 1 - confidence[inlier]
        return confidence

    def card_sections(self) -> dict[str, dict[str, Any]]:
        """The detector's own sections of its model card (``deepod-mnp info``): none by default.

        The card lists what every detector has (parameters, training rows
        and columns, encoding, threshold, versions); a detector with more to
        say (an ensemble's members, a selecting detector's candidates and
        their results) returns ``{title: {key: value}}`` of plain values here.
        """
        return {}

    # ------------------------------------------------------------ persistence
    def save_model(self, path: str | Path) -> None:
        """Save parameters, weights and fitted state to ``path`` (a torch checkpoint)."""
        check_is_fitted(self)
        persistence.save(self, path)

    @classmethod
    def load_model(cls, path: str | Path, device: str | None = None) -> BaseDetector:
        """Load a detector written by :meth:`save_model`, optionally onto another device.

        Raises ``ValueError`` ("... is not a valid deepod-mnp <model> checkpoint: <why>") for any
        file that is not an intact checkpoint of this class (see :mod:`deepod_mnp.persistence`).
        """
        return persistence.load(cls, path, device, validate_params=validate_params)

    def _restore(self, state: dict[str, Any]) -> None:
        """Rebuild the fitted state from :func:`deepod_mnp.persistence.load`'s decoded attributes."""
        scaler, encoder = state["scaler_"], state["encoder_"]
        state["scaler_"] = None if scaler is None else FeatureScaler.from_state(scaler)
        state["encoder_"] = None if encoder is None else TableEncoder.from_state(encoder)
        if state["encoder_"] is not None:
            names = [str(c) for c in state.get("feature_names_in_", [])]
            if names != list(state["encoder_"].feature_names_in_):
                raise ValueError("the encoder's columns are not the feature_names_in_ stored beside it")
        state["fit_info_"] = dict(state["fit_info_"])
        self._set_fitted({"device_": resolve_device(self.device), **state})
        with torch.random.fork_rng(devices=[]):  # the initial weights (overwritten) must not draw globally
            net = self._build_inference_net()
        self._set_fitted({"net_": net, **self._threshold(self.decision_scores_)})

    @classmethod
    def _history_layout(cls, index: list[str] | None, columns: list[str] | None) -> tuple[list, list]:
        """Index names and columns of a saved ``loss_history_`` (those written beside it by default)."""
        return index or ["epoch"], columns or ["loss"]

    def _build_inference_net(self) -> torch.nn.Module:
        """An untrained network of the fitted shape, for :meth:`load_model` to fill."""
        raise NotImplementedError
