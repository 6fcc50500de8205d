"""A fitted detector as an MLflow model (pyfunc flavour), for ``mlflow models serve`` and MLflow's registry.

:func:`save_mlflow_model` writes an MLflow model directory:

* the detector's checkpoint (``save_model``, checksummed) as the artifact
  ``checkpoint``, loaded once per server process;
* the input schema from ``feature_names_in_``: one ``double`` column per
  feature, ``string`` for the text columns a detector one-hot encodes itself
  (a detector fitted on an array takes a float32 tensor of shape
  ``(-1, n_features_in_)`` instead); the output ``score`` (double,
  ``decision_function``) and ``label`` (long, ``score > threshold_``);
* metadata ``deepod_mnp``: ``threshold``, ``feature_names``, ``max_rows``
  and the model card (:func:`deepod_mnp.model_card` of the checkpoint: the
  detector, its parameters, what it was fitted on, its input encoding and
  scaling, threshold, versions, the checkpoint's sha256).

Then ``mlflow models serve -m DIR --env-manager local -h 127.0.0.1 -p 5000``
serves it over HTTP (``POST /invocations`` with MLflow's JSON, CSV or
Parquet), and :func:`log_mlflow_model` logs it to a tracking server, with
``registered_model_name`` into the registry.

Every request is checked as ``decision_function`` checks its input: MLflow
refuses a missing column or a value of the wrong type, the model a missing
value, NaN, an infinite value, a number beyond float32's range (naming the
rows) and a batch of more than ``max_rows`` rows, each with HTTP 400.
``max_rows`` is checked after MLflow has parsed the body: bound the body's
size in a proxy in front of the server (e.g. nginx's ``client_max_body_size``).

Needs the ``serve`` extra: ``pip install 'deepod-mnp[serve]'`` (mlflow-skinny),
in an environment where deepod-mnp itself is installed (serve with
``--env-manager local``: deepod-mnp is not on PyPI for MLflow to install).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepod_mnp.serving.rows import check_rows, frame_columns, scores_of, text_features

MLFLOW_HINT = ("MLflow packaging and serving need the 'serve' extra: pip install 'deepod-mnp[serve]' "
               "(mlflow-skinny).")
DEFAULT_MAX_ROWS = 100_000
_SHOWN_ROWS = 5

try:  # the model class must be a PythonModel for MLflow; the module still imports without MLflow
    from mlflow.pyfunc import PythonModel as _PythonModel
except ImportError:  # pragma: no cover - exercised only without the extra
    _PythonModel = object


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.pyfunc  # noqa: F401
    except ImportError as exc:
        raise ImportError(MLFLOW_HINT) from exc
    return mlflow


def _bad_request(message: str) -> Exception:
    from mlflow.exceptions import MlflowException

    return MlflowException.invalid_parameter_value(message)  # HTTP 400 from the scoring server


class DetectorModel(_PythonModel):
    """The pyfunc model: loads the checkpoint artifact once, then scores each request's rows.

    Its configuration (``model_config``) holds ``max_rows`` and
    ``torch_threads``; the detector's class is read from the checkpoint.
    """

    def load_context(self, context: Any) -> None:
        from deepod_mnp import load_model

        config = dict(context.model_config or {})
        if config.get("torch_threads"):
            import torch

            torch.set_num_threads(int(config["torch_threads"]))
        self.detector = load_model(context.artifacts["checkpoint"], device="cpu")  # the class from the file
        self.max_rows = int(config.get("max_rows", DEFAULT_MAX_ROWS))
        names = getattr(self.detector, "feature_names_in_", None)
        self.features = None if names is None else [str(c) for c in names]
        self.text = text_features(self.detector)

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """``score`` and ``label`` of each row (a DataFrame); HTTP 400 (``MlflowException``) for a batch
        it refuses."""
        n = len(model_input)
        if n > self.max_rows:
            raise _bad_request(f"the batch has {n:,} rows; this model scores at most {self.max_rows:,} "
                               "per request (max_rows): split it.")
        if self.features is None:
            X = np.asarray(model_input, dtype=np.float64)
            if X.ndim != 2 or X.shape[1] != self.detector.n_features_in_:
                raise _bad_request(f"expected rows of {self.detector.n_features_in_} values, got shape "
                                   f"{X.shape}.")
            frame = pd.DataFrame(X, columns=[str(j) for j in range(X.shape[1])])
            features = list(frame.columns)
        else:
            missing = [c for c in self.features if c not in model_input.columns]
            if missing:
                raise _bad_request(f"the batch lacks the feature column(s) {missing[:10]}.")
            frame, features = model_input, [c for c in self.features if c not in self.text]
        checked = check_rows(frame_columns(frame, features))
        if checked.bad.any():
            rows = np.flatnonzero(checked.bad)
            shown = "; ".join(f"row {i}: {r}" for i, r in zip(rows[:_SHOWN_ROWS], checked.reasons))
            more = f"; and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else ""
            raise _bad_request(f"{len(rows)} of {n} row(s) cannot be scored (rows counted from 0): "
                               f"{shown}{more}.")
        text = frame[self.text].reset_index(drop=True) if self.text else None  # encoded by the model
        scores = scores_of(self.detector, checked.X, features, text)
        return pd.DataFrame({"score": scores, "label": (scores > self.detector.threshold_).astype(np.int64)})


def _card(checkpoint: Path) -> dict[str, Any]:
    """The package's model card of the checkpoint (:func:`deepod_mnp.model_card`), its path as stored in
    the MLflow model."""
    from deepod_mnp import model_card

    card = model_card(checkpoint)
    if card.get("file"):
        card["file"]["path"] = "artifacts/checkpoint.pt"
    return card


def _signature(model: Any) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    names = getattr(model, "feature_names_in_", None)
    text = text_features(model)
    if names is not None:  # text columns that the detector one-hot encodes go in as strings
        inputs = Schema([ColSpec("string" if str(c) in text else "double", str(c)) for c in names])
    else:
        inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, int(model.n_features_in_)))])
    outputs = Schema([ColSpec("double", "score"), ColSpec("long", "label")])
    return ModelSignature(inputs=inputs, outputs=outputs)


_CODE = """\
# The MLflow model's code ("models from code"): the class lives in the installed deepod-mnp.
import mlflow

from deepod_mnp.serving.mlflow_model import DetectorModel

mlflow.models.set_model(DetectorModel())
"""


def _save_kwargs(model: Any, tmp: Path, max_rows: int, torch_threads: int | None,
                 input_example: Any) -> dict[str, Any]:
    from deepod_mnp import __version__

    mlflow = _mlflow()
    checkpoint, code = tmp / "checkpoint.pt", tmp / "deepod_mnp_model.py"
    code.write_text(_CODE, encoding="utf-8")
    if not hasattr(model, "save_model") or not hasattr(model, "threshold_"):
        raise TypeError(f"{type(model).__name__} is not a fitted deepod-mnp detector.")
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}.")
    model.save_model(checkpoint)
    card = _card(checkpoint)
    names = [str(c) for c in getattr(model, "feature_names_in_", [])]
    return dict(
        python_model=str(code), artifacts={"checkpoint": str(checkpoint)}, signature=_signature(model),
        input_example=input_example,
        model_config={"max_rows": int(max_rows), "torch_threads": torch_threads},
        metadata={"deepod_mnp": {"threshold": float(model.threshold_), "feature_names": names,
                                 "max_rows": int(max_rows), "model_card": card}},
        # deepod-mnp is not on PyPI: serve with --env-manager local where it is installed
        pip_requirements=[f"deepod-mnp=={__version__}", f"mlflow-skinny=={mlflow.__version__}"])


def _quietly(save: Any, **kwargs: Any) -> Any:
    """MLflow's ``save_model``/``log_model`` without its advice to add an input example (optional here)."""
    import warnings

    with warnings.catch_warnings():
        if kwargs.get("input_example") is None:
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        return save(**kwargs)


def save_mlflow_model(model: Any, path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS,
                      torch_threads: int | None = 1, input_example: Any = None) -> Path:
    """Write the fitted detector as an MLflow pyfunc model directory at ``path``.

    Parameters
    ----------
    model : fitted MNP, DevNetAnoOnly or DeepSADAnoOnly
    path : path-like
        A directory that does not exist yet (MLflow's rule).
    max_rows : int, default=100000
        Rows per request; a larger batch gets HTTP 400.
    torch_threads : int or None, default=1
        torch threads of the serving process (concurrent requests run side by
        side on one thread each); None leaves torch's default.
    input_example : DataFrame or ndarray, optional
        A few rows stored with the model (MLflow scores them once when saving).

    Returns
    -------
    pathlib.Path
        ``path``; serve it with ``mlflow models serve -m PATH --env-manager local``.
    """
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = _save_kwargs(model, Path(tmp), max_rows, torch_threads, input_example)
        _quietly(mlflow.pyfunc.save_model, path=str(path), **kwargs)
    return Path(path)


def log_mlflow_model(model: Any, name: str = "model", *, registered_model_name: str | None = None,
                     max_rows: int = DEFAULT_MAX_ROWS, torch_threads: int | None = 1,
                     input_example: Any = None) -> Any:
    """Log the fitted detector to the active MLflow run (or a new one) and optionally register it.

    ``registered_model_name`` adds it to the model registry of the tracking
    server under that name (a new version each time). Returns MLflow's
    ``ModelInfo`` (``model_uri`` is what ``mlflow models serve -m`` takes).
    The other parameters are :func:`save_mlflow_model`'s.
    """
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = _save_kwargs(model, Path(tmp), max_rows, torch_threads, input_example)
        return _quietly(mlflow.pyfunc.log_model, name=name, registered_model_name=registered_model_name,
                        **kwargs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    """End the server's process group (the ``mlflow`` command and the uvicorn it started)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:  # uvicorn may outlive the mlflow command by a moment
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextlib.contextmanager
def local_server(model_dir: str | Path, *, port: int | None = None, workers: int = 1,
                 startup_timeout: float = 120.0, log: str | Path | None = None) -> Iterator[str]:
    """``mlflow models serve`` of ``model_dir`` on 127.0.0.1 for the ``with`` block; yields its base URL.

    The server runs in its own process group with ``--env-manager local``
    (this interpreter's environment) and is stopped (SIGTERM, then SIGKILL)
    when the block ends, whatever happens in it. Raises ``RuntimeError``
    with the end of the server's log when it does not answer ``/ping``
    within ``startup_timeout`` seconds.

    Parameters
    ----------
    model_dir : path-like
        A directory written by :func:`save_mlflow_model`.
    port : int, optional
        Default: a free port.
    workers : int, default=1
        uvicorn worker processes.
    startup_timeout : float, default=120
        Seconds to wait for the server to answer.
    log : path-like, optional
        Where the server's output goes (default: a temporary file, removed after).
    """
    _mlflow()
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    with contextlib.ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "server.log"
        out = stack.enter_context(open(log, "wb"))
        # MLflow starts `uvicorn` by name: this interpreter's scripts come first on PATH
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**os.environ, "PATH": path}
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        stack.callback(_stop, proc)
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                out.flush()
                tail = Path(log).read_text(encoding="utf-8", errors="replace")[-2000:]
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "did not answer"
                raise RuntimeError(f"mlflow models serve {state} within {startup_timeout:.0f} s: {tail}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        yield url
