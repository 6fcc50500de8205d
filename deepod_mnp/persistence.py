"""Checkpoints of the project's detectors: parameters, weights and fitted state in one torch file.

The file is a plain dict that ``torch.load(weights_only=True)`` reads (no
pickled classes): ``format`` (``'<model_name>/1'``), ``params``
(``get_params()``), ``state_dict`` (the network's weights on the CPU) and one
entry per attribute of the detector's ``_saved_attributes``: arrays as
tensors, DataFrames as rows with their ``<name>:columns`` and
``<name>:index`` beside them. Everything else (``device_``, ``net``,
``threshold_``, ``labels_``) is rebuilt on load. MNP's checkpoints of
format ``MNP/1`` written before this module existed have the same layout
(their loss history without the column entries) and load unchanged.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

FORMAT_VERSION = 1


def checkpoint_format(cls: type) -> str:
    """The ``format`` entry of ``cls``'s checkpoints, e.g. ``'MNP/1'``."""
    return f"{cls.model_name}/{FORMAT_VERSION}"


def _an(name: str) -> str:
    return "an" if name[:1].upper() in "AEFHILMNORSX" else "a"


def _encode(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, pd.DataFrame):
        flat = value.reset_index()
        return {name: flat.to_numpy().tolist(), f"{name}:columns": [str(c) for c in value.columns],
                f"{name}:index": [str(n) for n in value.index.names]}
    if isinstance(value, np.ndarray):
        return {name: torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, dict):
        return {name: {int(k): float(v) for k, v in value.items()}}
    return {name: value}


def _decode(name: str, state: dict[str, Any], cls: type) -> Any:
    value = state[name]
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if name == "loss_history_":
        index, columns = cls._history_layout(state.get(f"{name}:index"), state.get(f"{name}:columns"))
        frame = pd.DataFrame(value, columns=[*index, *columns])
        return frame.astype({n: int for n in index}).set_index(index if len(index) > 1 else index[0])
    return value


def save(model: Any, path: str | Path) -> None:
    """Write ``model`` (fitted) to ``path``."""
    state: dict[str, Any] = {
        "format": checkpoint_format(type(model)),
        "params": model.get_params(),
        "state_dict": {k: v.cpu() for k, v in model.net.state_dict().items()},
        "threshold_": float(model.threshold_),
        "feature_names_in_": [str(c) for c in getattr(model, "feature_names_in_", [])],
    }
    for name in model._saved_attributes:
        state.update(_encode(name, getattr(model, name)))
    torch.save(state, Path(path))


def load(cls: type, path: str | Path, device: str | None = None) -> Any:
    """Read a checkpoint of ``cls`` written by :func:`save`, optionally onto another device."""
    name = cls.model_name
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path} is not {_an(name)} {name} checkpoint (torch.load failed: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != checkpoint_format(cls):
        raise ValueError(f"{path} is not {_an(name)} {name} checkpoint written by {name}.save_model.")
    params = dict(state["params"])
    if device is not None:
        params["device"] = device
    model = cls(**params)
    fitted = {n: _decode(n, state, cls) for n in cls._saved_attributes if n in state}
    if state.get("feature_names_in_"):
        fitted["feature_names_in_"] = np.asarray(state["feature_names_in_"], dtype=object)
    model._restore(fitted)
    model.net.load_state_dict(state["state_dict"])
    model.net.to(model.device_).eval()
    return model
