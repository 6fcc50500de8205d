"""Checkpoints of the project's detectors: parameters, weights and fitted state in one torch file.

The file (written by :func:`save`) is a plain dict that
``torch.load(weights_only=True)`` reads (no pickled classes)::

    {"format": "<model_name>/2", "sha256": "<hex digest of payload>", "payload": <uint8 tensor>}

``payload`` holds the bytes of a second torch file, the *contents*: ``format``
again, ``params`` (``get_params()``), ``state_dict`` (the network's weights on
the CPU), ``threshold_``, ``feature_names_in_`` (the names as they were, or
``[]``) and one entry per attribute of the detector's ``_saved_attributes``:
arrays as tensors, DataFrames as rows with their ``<name>:columns`` and
``<name>:index`` beside them; fitted helpers (the input ``scaler_`` and
``encoder_``) as the plain lists of their ``get_state()``, and ``fit_info_``
(what the model card shows) as plain values. Everything else (``device_``,
``net``, ``labels_``) is rebuilt on load.

:func:`load` refuses, with one ``ValueError`` ("... is not a valid deepod-mnp
<model> checkpoint: <why>"), every file it cannot trust: unreadable or
truncated, another format or model, a checksum that does not match the payload,
missing or mistyped entries, parameters the constraints reject, weights that do
not fit the network or are not finite, a stored threshold that the stored
scores do not give. Pickled objects are refused by ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import io
import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

FORMAT_VERSION = 2


class CheckpointError(ValueError):
    """What :func:`load` raises for a file that is not a valid checkpoint of the class asked for."""


def checkpoint_format(cls: type, version: int = FORMAT_VERSION) -> str:
    """The ``format`` entry of ``cls``'s checkpoints, e.g. ``'MNP/2'``."""
    return f"{cls.model_name}/{version}"


def _encode(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, pd.DataFrame):
        flat = value.reset_index()
        return {name: flat.to_numpy().tolist(), f"{name}:columns": [str(c) for c in value.columns],
                f"{name}:index": [str(n) for n in value.index.names]}
    if isinstance(value, np.ndarray):
        return {name: torch.from_numpy(np.ascontiguousarray(value))}
    if hasattr(value, "get_state"):  # a fitted helper (the input scaler): its state as plain lists
        return {name: value.get_state()}
    if isinstance(value, dict) and all(isinstance(k, numbers.Integral) for k in value):
        return {name: {int(k): float(v) for k, v in value.items()}}  # e.g. silhouette score per k
    return {name: value}  # plain values: str, numbers, None, and dicts and lists of them (fit_info_)


def _decode(name: str, state: dict[str, Any], cls: type) -> Any:
    value = state[name]
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if name == "loss_history_":
        index, columns = cls._history_layout(state.get(f"{name}:index"), state.get(f"{name}:columns"))
        frame = pd.DataFrame(value, columns=[*index, *columns])
        return frame.astype({n: int for n in index}).set_index(index if len(index) > 1 else index[0])
    return value


def _contents(model: Any) -> dict[str, Any]:
    names = getattr(model, "feature_names_in_", None)
    state: dict[str, Any] = {
        "format": checkpoint_format(type(model)),
        "params": model.get_params(),
        "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
        "threshold_": float(model.threshold_),
        "feature_names_in_": [] if names is None else list(names),
    }
    for name in model._saved_attributes:
        state.update(_encode(name, getattr(model, name)))
    return state


def save(model: Any, path: str | Path) -> None:
    """Write ``model`` (fitted) to ``path``: its contents and their sha256."""
    write(_contents(model), path)


def write(contents: dict[str, Any], path: str | Path) -> None:
    """Write ``contents`` (with its ``format`` entry) to ``path``: the contents' bytes and their sha256."""
    buffer = io.BytesIO()
    torch.save(contents, buffer)
    payload = buffer.getvalue()
    torch.save({"format": contents["format"], "sha256": hashlib.sha256(payload).hexdigest(),
                "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, Path(path))


def _torch_load(source: Any) -> Any:
    return torch.load(source, map_location="cpu", weights_only=True)


def _read_outer(path: Path, writer: str) -> dict[str, Any]:
    """The file's outer dict, with its ``format`` entry checked to be a string."""
    try:
        outer = _torch_load(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on damaged files
        raise CheckpointError(f"torch.load cannot read it ({type(exc).__name__}: {exc}); the file is "
                              "truncated, damaged or not a torch checkpoint") from exc
    if not isinstance(outer, dict) or not isinstance(outer.get("format"), str):
        raise CheckpointError(f"it holds {type(outer).__name__} without a 'format' entry, not a checkpoint "
                              f"written by {writer}")
    return outer


def stored_model_name(path: str | Path) -> str:
    """The model name of the checkpoint at ``path`` (``'MNP'`` for the format ``'MNP/2'``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        (:class:`CheckpointError`) When the file is not a checkpoint.
    """
    try:
        return _read_outer(Path(path), "save_model")["format"].rpartition("/")[0]
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is not a valid deepod-mnp checkpoint: {exc}") from exc.__cause__


def _read(cls: type, path: Path) -> dict[str, Any]:
    """The checked contents of the file, or :class:`CheckpointError`."""
    outer = _read_outer(path, f"{cls.__name__}.save_model")
    fmt = outer["format"]
    model, _, version = fmt.rpartition("/")
    if model != cls.model_name:
        raise CheckpointError(f"its format is {fmt!r}; {cls.__name__} reads {checkpoint_format(cls)!r}")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"format version {version!r} is not the one this version of deepod-mnp reads "
                              f"({FORMAT_VERSION})")
    if set(outer) != {"format", "sha256", "payload"}:
        raise CheckpointError(f"its entries are {sorted(outer)}, not ['format', 'payload', 'sha256']")
    payload, digest = outer["payload"], outer["sha256"]
    if not (isinstance(payload, torch.Tensor) and payload.dtype == torch.uint8 and payload.dim() == 1
            and isinstance(digest, str)):
        raise CheckpointError("'payload' is not a byte tensor or 'sha256' is not a string")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError("the sha256 of its contents does not match the one stored beside them: the "
                              "file was modified or damaged after it was written")
    try:
        contents = _torch_load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"its contents cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(contents, dict) or contents.get("format") != fmt:
        raise CheckpointError("its contents do not carry the same format entry as the file")
    return contents


def _require(ok: bool, why: str) -> None:
    if not ok:
        raise CheckpointError(why)


def _is_int(value: Any, low: int = 1) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _check_contents(cls: type, state: dict[str, Any]) -> None:
    """Entries present and of the right types, every tensor finite (weights included)."""
    _require(isinstance(state.get("params"), dict), "'params' is missing or not a dict")
    unknown = set(state["params"]) - set(cls().get_params())
    _require(not unknown, f"'params' has parameters {cls.__name__} does not take: {sorted(unknown)}")
    sd = state.get("state_dict")
    _require(isinstance(sd, dict) and bool(sd) and all(isinstance(v, torch.Tensor) for v in sd.values()),
             "'state_dict' is missing, empty or holds something other than tensors")
    for name, value in [*sd.items(), *state.items()]:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            _require(bool(torch.isfinite(value).all()), f"{name!r} holds NaN or infinite values")
    missing = [n for n in cls._saved_attributes if n not in state]
    _require(not missing, f"entries {missing} are missing")
    _require(_is_int(state["n_features_in_"]), "'n_features_in_' is not a positive integer")
    scores = state["decision_scores_"]
    _require(isinstance(scores, torch.Tensor) and scores.dim() == 1 and len(scores) > 0
             and scores.is_floating_point(), "'decision_scores_' is not a non-empty vector of real numbers")
    threshold = state.get("threshold_")
    _require(isinstance(threshold, float) and math.isfinite(threshold), "'threshold_' is not a finite number")
    names = state.get("feature_names_in_", [])
    _require(isinstance(names, list) and (not names or len(names) == state["n_features_in_"]),
             "'feature_names_in_' is not a list of one name per feature")
    _require(isinstance(state["loss_history_"], list), "'loss_history_' is not a list of rows")


def load(cls: type, path: str | Path, device: str | None = None,
         validate_params: Callable[[Any], None] | None = None) -> Any:
    """Read a checkpoint of ``cls`` written by :func:`save`, optionally onto another device.

    ``validate_params(model)`` checks the stored parameters (the class's constraints) and
    raises ``ValueError`` when one is invalid.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        (:class:`CheckpointError`) When the file is not a valid checkpoint of ``cls``; the message says why.
    """
    path = Path(path)
    prefix = f"{path} is not a valid deepod-mnp {cls.model_name} checkpoint"
    try:
        return from_contents(cls, _read(cls, path), device, validate_params)
    except CheckpointError as exc:
        raise CheckpointError(f"{prefix}: {exc}") from exc.__cause__
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"{prefix}: an entry has the wrong type or shape "
                              f"({type(exc).__name__}: {exc})") from exc


def read(cls: type, path: str | Path) -> dict[str, Any]:
    """The checksum-verified contents of a checkpoint of ``cls`` (no check of the entries themselves)."""
    path = Path(path)
    try:
        return _read(cls, path)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is not a valid deepod-mnp {cls.model_name} checkpoint: {exc}") \
            from exc.__cause__


def from_contents(cls: type, state: dict[str, Any], device: str | None = None,
                  validate_params: Callable[[Any], None] | None = None) -> Any:
    """The fitted detector that checkpoint contents of ``cls`` (as :func:`save` writes them) describe.

    Raises :class:`CheckpointError` (without the file's name) when an entry is missing or wrong.
    """
    try:
        _check_contents(cls, state)
        params = dict(state["params"])
        if device is not None:
            params["device"] = device
        model = cls(**params)
        try:
            if validate_params is not None:
                validate_params(model)
        except ValueError as exc:
            raise CheckpointError(f"its parameters are invalid: {exc}") from exc
        fitted = {n: _decode(n, state, cls) for n in cls._saved_attributes}
        if state.get("feature_names_in_"):
            fitted["feature_names_in_"] = np.asarray(state["feature_names_in_"], dtype=object)
        model._restore(fitted)
        try:
            model.net.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"its weights do not fit the network its fitted state describes: "
                                  f"{str(exc).splitlines()[0]} ...") from exc
        model.net.to(model.device_).eval()
        _require(float(model.threshold_) == state["threshold_"],
                 "its stored threshold_ is not the one its stored decision_scores_ give")
        return model
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"an entry has the wrong type or shape ({type(exc).__name__}: {exc})") from exc
