"""Saved models: load any deepod-mnp checkpoint by the detector it holds, and read its model card.

:func:`load_model` reads a file written by ``save_model`` of any of our
detectors (the class is read from the file). :func:`model_card` describes a
fitted detector or a checkpoint: what it was fitted on (rows, columns and
their names, labeled anomalies), how its input is encoded and scaled, its
parameters and threshold, when and how long it trained, the versions it
trained with and, for a file, its size and sha256. ``deepod-mnp info MODEL``
prints it (``--json`` as JSON)::

    import deepod_mnp

    card = deepod_mnp.model_card("fraud.pt")        # or a fitted detector
    print(deepod_mnp.format_card(card))

A detector adds sections of its own with a method ``card_sections()``
returning ``{title: {key: plain value}}`` (MNP lists its members and
prototypes); the card shows them under ``details``.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import textwrap
from pathlib import Path
from typing import Any

from deepod_mnp import persistence
from deepod_mnp.registry import DETECTORS

__all__ = ["load_model", "model_card", "format_card"]

_SHOWN = 8  # list items shown in the readable card (the JSON card has them all)
_WIDTH = 110


def _classes() -> dict[str, type]:
    """Model name of the checkpoint format -> class, for every detector that deepod-mnp saves."""
    classes: dict[str, type] = {}
    for spec in DETECTORS.values():
        if spec.saveable:
            cls = spec.load()
            classes.setdefault(cls.model_name, cls)
    return classes


def load_model(path: str | os.PathLike, device: str | None = None) -> Any:
    """Load a checkpoint written by any deepod-mnp detector's ``save_model``.

    Parameters
    ----------
    path : path-like
        The checkpoint.
    device : str, optional
        Load onto this device (default: the one stored in the parameters).

    Returns
    -------
    detector
        The fitted detector, of the class the file names.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        (``CheckpointError``) When the file is not an intact checkpoint of one of our detectors.
    """
    name = persistence.stored_model_name(path)
    classes = _classes()
    if name not in classes:
        raise persistence.CheckpointError(f"{path} holds a {name!r} model; deepod-mnp loads "
                                          f"{', '.join(sorted(classes))}.")
    return classes[name].load_model(path, device=device)


def _plain(value: Any) -> Any:
    """``value`` as JSON's types: numbers, strings, None, lists and dicts with string keys."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [_plain(v) for v in items] if isinstance(items, list) else _plain(items)
    return repr(value)


def _file_facts(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def model_card(source: Any) -> dict[str, Any]:
    """The model card of a fitted detector or of a checkpoint file, as plain data (JSON's types).

    Parameters
    ----------
    source : fitted detector or path-like
        A detector (fitted) or a file written by its ``save_model`` (loaded
        on the CPU).

    Returns
    -------
    dict
        ``detector`` and ``module``; ``parameters`` (``get_params()``);
        ``training`` (rows, labeled anomalies, fit seconds, device, torch
        threads, when); ``input`` (the number and names of the columns, the
        encoding of text columns with their categories, the network's input
        width, the scaling); ``threshold`` (``threshold_``, ``contamination``
        and the share of training rows above the threshold); ``versions`` (at
        fit time); ``file`` (path, bytes, sha256; None for a detector); and
        ``details``, the detector's own sections (its ``card_sections()``).
        Values the detector did not record (a subclass that does not
        keep ``fit_info_``) are None.

    Raises
    ------
    ValueError
        When the detector is not fitted or the file is not a valid checkpoint.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        model, file = load_model(path, device="cpu"), _file_facts(path)
    else:
        model, file = source, None
        if not hasattr(model, "n_features_in_"):
            raise ValueError(f"{type(model).__name__} is not fitted: the card describes a fitted detector.")
    info = dict(getattr(model, "fit_info_", None) or {})
    names = getattr(model, "feature_names_in_", None)
    encoder = getattr(model, "encoder_", None)
    labels = getattr(model, "labels_", None)
    params = model.get_params()
    sections = getattr(model, "card_sections", None)
    card = {
        "detector": type(model).__name__,
        "module": type(model).__module__,
        "parameters": params,
        "training": {"rows": info.get("n_samples"), "labeled_anomalies": info.get("n_labeled_anomalies"),
                     "fit_seconds": info.get("fit_seconds"), "device": info.get("device"),
                     "torch_threads": info.get("torch_threads"), "fitted_at": info.get("fitted_at"),
                     "data": info.get("data"), "holdout": info.get("holdout")},
        "input": {"n_columns": int(model.n_features_in_),
                  "columns": None if names is None else list(names),
                  "encoding": None if encoder is None else encoder.summary(),
                  "n_network_features": int(getattr(model, "n_net_features_", model.n_features_in_)),
                  "scaling": params.get("scaler") if getattr(model, "scaler_", None) is not None else None},
        "threshold": {"threshold": getattr(model, "threshold_", None),
                      "contamination": params.get("contamination"),
                      "training_rows_above": None if labels is None else float(labels.mean())},
        "versions": info.get("versions"),
        "file": file,
        "details": sections() if callable(sections) else {},
    }
    return _plain(card)


# ----------------------------------------------------------------- rendering
def _items(values: list, shown: int = _SHOWN) -> str:
    text = ", ".join(map(str, values[:shown]))
    return text + (f", ... ({len(values):,} in all)" if len(values) > shown else "")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return _items(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "not recorded" if value is None else str(value)


def format_card(card: dict[str, Any]) -> str:
    """The readable text of a :func:`model_card` (long lists shortened; the JSON card has everything)."""
    train, inp, thr = card["training"], card["input"], card["threshold"]
    lines = [f"{card['detector']} ({card['module']})"]
    if card["file"]:
        f = card["file"]
        lines.append(f"  file         {f['path']} ({f['bytes']:,} bytes), sha256 {f['sha256']}")
    if train["rows"] is not None:
        threads = train["torch_threads"]
        lines.append(f"  fitted       {train['fitted_at']}, {train['fit_seconds']:.1f} s on "
                     f"{train['device']} ({threads} torch thread{'s' if threads != 1 else ''})")
        lines.append(f"  training     {train['rows']:,} rows, {train['labeled_anomalies']:,} labeled "
                     "anomalies" + (f", from {train['data']}" if train.get("data") else ""))
        held = train.get("holdout")
        if held:
            lines.append(f"  held out     {held['rows']:,} rows ({held['labeled_anomalies']:,} labeled "
                         f"anomalies): AUC-PR {held['auc_pr']:.4f}, AUC-ROC {held['auc_roc']:.4f}, "
                         f"against {held['truth']}")
    else:
        lines.append("  training     not recorded (the detector keeps no fit_info_)")
    columns = inp["columns"]
    lines.append(f"  input        {inp['n_columns']} columns" + (f": {_items(columns)}" if columns else
                                                                   " (fitted on an array: no names)"))
    encoding = inp["encoding"]
    if encoding:
        lines.append(f"  encoding     {len(encoding['text_columns'])} text column(s) one-hot encoded "
                     f"(unseen categories {encoding['unseen_categories']}; a missing value is the "
                     f"category {encoding['missing_values_in_text']}):")
        lines += [f"                 {c} ({len(cats)}): {_items(cats)}"
                  for c, cats in encoding["text_columns"].items()]
    lines.append(f"  network      {inp['n_network_features']} input features; scaling: "
                 f"{inp['scaling'] or 'none'}")
    if thr["threshold"] is not None:
        above = thr["training_rows_above"]
        lines.append(f"  threshold    {thr['threshold']:.6g}: predict() flags a score above it; "
                     f"contamination={thr['contamination']} puts it at the top "
                     f"{thr['contamination']:.1%} of the training scores"
                     + (f" ({above:.1%} of the training rows are above)" if above is not None else ""))
    params = ", ".join(f"{k}={v!r}" for k, v in card["parameters"].items())
    lines.append(textwrap.fill(params, width=_WIDTH, initial_indent="  parameters   ",
                               subsequent_indent=" " * 15))
    versions = card["versions"]
    lines.append("  versions     " + (", ".join(f"{k} {v}" for k, v in versions.items()) if versions
                                     else "not recorded"))
    for title, section in card["details"].items():
        lines.append(f"  {title}")
        lines += [f"    {key:<22} {_value(value)}" for key, value in section.items()]
    return "\n".join(lines)


def card_json(card: dict[str, Any]) -> str:
    """The card as indented JSON text."""
    return json.dumps(card, indent=2, ensure_ascii=False)
