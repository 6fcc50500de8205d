"""ONNX export of fitted detectors, and scoring with ONNX Runtime alone.

:func:`export_onnx` writes a self-contained ONNX model of a fitted detector's
score: for MNP the fused ensemble of :mod:`deepod_mnp.serving.fused` (every
member, the prototypes, the scoring MLPs and the member mean), for the AnoOnly
detectors their network and score head; in both cases the fitted input scaling
(``scaler_``, min-max: one multiply-add per feature) comes first in the graph.

The graph has one input and one output:

* input ``X``: float32, shape ``(N, D)``, ``N`` dynamic, ``D = n_features_in_``,
  the columns in the order of ``feature_names_in_`` (raw, unscaled features:
  the graph scales them itself). A detector that one-hot encodes text
  columns (a fitted ``encoder_``) cannot be exported: the graph takes numbers
  only, and :func:`export_onnx` says so (``ValueError``);
* output ``score``: float32, shape ``(N,)``, what ``decision_function`` returns
  (higher is more anomalous), to about 1e-6.

The model's metadata (``metadata_props``) holds ``deepod_mnp.model``,
``deepod_mnp.n_features``, ``deepod_mnp.threshold`` (``threshold_``) and
``deepod_mnp.feature_names`` (a JSON list, empty when fitted on an array), so
that :class:`OnnxScorer` (or any ONNX Runtime client) can label and match
columns without torch or DeepOD.

Needs the ``onnx`` extra: ``pip install 'deepod-mnp[onnx]'`` (onnx, onnxscript
for torch's exporter, onnxruntime).
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepod_mnp._chunks import score_rows
from deepod_mnp._validation import check_scoring_X
from deepod_mnp.serving.fused import FusedMNP

INPUT_NAME = "X"
OUTPUT_NAME = "score"
ONNX_HINT = "ONNX export and scoring need the 'onnx' extra: pip install 'deepod-mnp[onnx]'"
META_PREFIX = "deepod_mnp."


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{ONNX_HINT} ({module} is missing).") from exc


class _DetectorScore(nn.Module):
    """A non-MNP detector's score as a module: its ``inference_forward``, after an affine scaling."""

    def __init__(self, model: Any, scaling: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__()
        self.model_net = model.net
        self._model = model
        # what the detector's scoring hot path passes to inference_forward
        get_criterion = getattr(model, "_inference_criterion", None)
        self._criterion = get_criterion() if get_criterion is not None else getattr(model, "criterion", None)
        self.has_scaling = scaling is not None
        if scaling is not None:
            self.register_buffer("in_mul", torch.as_tensor(scaling[0], dtype=torch.float32))
            self.register_buffer("in_add", torch.as_tensor(scaling[1], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_scaling:
            x = x * self.in_mul + self.in_add
        return self._model.inference_forward(x, self.model_net, self._criterion)[1].reshape(-1)


def score_module(model: Any) -> nn.Module:
    """The fitted detector's score as a torch module on the CPU, in eval mode.

    MNP (anything with an ensemble of MNP members) gives a :class:`FusedMNP`;
    another detector with DeepOD's ``inference_forward(x, net, criterion)``
    (the AnoOnly detectors) gives a wrapper of it. Raises ``TypeError`` for
    anything else.
    """
    if not hasattr(model, "n_features_in_"):
        raise ValueError("the detector is not fitted; call fit first.")
    encoder = getattr(model, "encoder_", None)
    if encoder is not None:
        raise ValueError(f"{type(model).__name__} one-hot encodes the text column(s) {encoder.text_} "
                         "itself, and the ONNX graph takes numbers only, so it cannot carry that encoding: "
                         "score with the checkpoint ('deepod-mnp score --model MODEL.pt'), or fit on numeric "
                         "columns to export.")
    if hasattr(model, "best_estimator_"):  # SelectByLabels: its choice, when that is one network of ours
        best = model.best_estimator_
        if not hasattr(best, "inference_forward"):
            raise ValueError(f"{type(model).__name__} chose {model.best_candidate_}, which is no single "
                             "network of deepod-mnp, so it has no ONNX graph: score with the checkpoint "
                             "('deepod-mnp score --model MODEL.pt') or serve it with MLflow.")
        return score_module(best)
    net = getattr(model, "net", None)
    members = getattr(net, "members", None)
    if members is not None and all(hasattr(m, "prototypes") for m in members):
        return FusedMNP.from_model(model)
    if net is None or not hasattr(model, "inference_forward"):
        raise TypeError(f"{type(model).__name__} has no torch network with inference_forward to export.")
    device = getattr(model, "device_", torch.device("cpu"))
    if torch.device(device).type != "cpu":
        raise ValueError(f"{type(model).__name__} lives on {device}; "
                         "load or fit it with device='cpu' to export.")
    net.eval()
    scaler = getattr(model, "scaler_", None)
    return _DetectorScore(model, None if scaler is None else scaler.affine()).eval()


def export_onnx(model: Any, path: str | Path, *, opset: int = 18) -> Path:
    """Write the fitted detector's score function as an ONNX model.

    Parameters
    ----------
    model : fitted MNP, DevNetAnoOnly, DeepSADAnoOnly or SelectByLabels
        The detector (fitted or loaded with ``load_model``); a SelectByLabels
        exports when it chose a single MNP (a blend or a boosted classifier
        has no graph here: ``ValueError``).
    path : path-like
        Output ``.onnx`` file (weights embedded).
    opset : int, default=18
        ONNX opset version.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    Input ``X`` float32 ``(N, D)``, output ``score`` float32 ``(N,)``; see the
    module docstring for the metadata. The parity with ``decision_function``
    is checked in the test suite (to 1e-5).
    """
    onnx = _require("onnx")
    _require("onnxscript")
    path = Path(path)
    module = score_module(model)
    n_features = int(model.n_features_in_)
    example = torch.zeros(4, n_features, dtype=torch.float32)
    batch = torch.export.Dim("N", min=1)
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    old_level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation notice
            program = torch.onnx.export(module, (example,), input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: batch},), opset_version=opset, dynamo=True,
                                        verbose=False)
    finally:
        quiet.setLevel(old_level)
    proto = program.model_proto
    meta = {"model": type(model).__name__, "n_features": str(n_features),
            "threshold": repr(float(getattr(model, "threshold_", float("nan")))),
            "feature_names": json.dumps([str(c) for c in getattr(model, "feature_names_in_", [])]),
            "input": f"{INPUT_NAME}: float32 (N, {n_features})", "output": f"{OUTPUT_NAME}: float32 (N,)"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return path


class OnnxScorer:
    """Scores rows with an exported model through ONNX Runtime only (no torch, no DeepOD needed).

    Parameters
    ----------
    path : path-like
        A model written by :func:`export_onnx`.
    threads : int, optional
        ONNX Runtime intra-op threads of the session (default: ONNX Runtime's
        own choice).
    chunk_rows : int, default=4096
        Rows per ``session.run``: a few thousand keep a chunk's intermediates
        in a core's cache.
    workers : int, default=1
        Python threads running chunks side by side on the one session
        (ONNX Runtime's ``run`` is thread-safe and releases the GIL); use it
        with ``threads=1``.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when the detector was fitted on a DataFrame.
    threshold_ : float
        The detector's ``threshold_`` (``predict`` labels ``score > threshold_`` as 1).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, chunk_rows: int = 4096,
                 workers: int = 1) -> None:
        ort = _require("onnxruntime")
        self.chunk_rows, self.workers = int(chunk_rows), int(workers)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.model_name = meta.get(META_PREFIX + "model", "unknown")
        self.n_features_in_ = int(meta.get(META_PREFIX + "n_features", self.session.get_inputs()[0].shape[1]))
        self.threshold_ = float(meta.get(META_PREFIX + "threshold", "nan"))
        names = json.loads(meta.get(META_PREFIX + "feature_names", "[]"))
        if names:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    def decision_function(self, X: Any) -> np.ndarray:
        """Float64 scores of ``X``, checked as the detector's ``decision_function`` checks it.

        ``X`` (array-like of shape (n, D), cast to float32) must be dense and
        finite within float32's range, with ``n_features_in_`` columns; a
        DataFrame must have the columns of ``feature_names_in_`` in that
        order (a DataFrame without names, or an array, for a model fitted
        with names warns, as scikit-learn does). The errors are the
        detector's (``ValueError``, ``TypeError`` for sparse input).
        """
        arr = check_scoring_X(self, X)
        return score_rows(lambda rows: self.session.run([OUTPUT_NAME], {INPUT_NAME: arr[rows]})[0], len(arr),
                          self.chunk_rows, self.workers)

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels: ``score > threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)
