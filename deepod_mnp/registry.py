"""The one table of detector names: the benchmark's catalogue, our detectors and what DeepOD gets.

:data:`DETECTORS` names every detector deepod-mnp runs side by side; the
package's exports (``deepod_mnp.MNP``, ...) and the names registered into
DeepOD's modules (:mod:`deepod_mnp.deepod_plugin`, those marked ``deepod``)
are read from it. It imports nothing at import time: classes are loaded by
module path on first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DetectorSpec:
    """How to build one detector with its library defaults.

    Attributes
    ----------
    name : str
        Registry name (``--models`` of the CLI).
    module, attr : str
        Where the class lives.
    supervision : {'weak', 'unsupervised'}
        Whether ``fit`` uses the labeled anomalies.
    has_device : bool
        Whether the class takes DeepOD's ``device`` and ``verbose`` parameters.
    defaults : dict
        Parameters that differ from the class's own defaults (none for peers;
        ``loss_on='all'`` for the AnoOnly controls ``DevNetBN`` and ``DeepSADBN``).
    deepod : bool
        Whether ``import deepod_mnp`` registers the class in ``deepod.models``
        and ``deepod.models.tabular`` (DeepOD-style detectors of our own).
    """

    name: str
    module: str
    attr: str
    supervision: str = "weak"
    has_device: bool = True
    defaults: dict = field(default_factory=dict)
    deepod: bool = False

    def load(self) -> type:
        """The detector's class (its module imported on first use)."""
        return getattr(importlib.import_module(self.module), self.attr)

    @property
    def saveable(self) -> bool:
        """Whether its ``save_model`` writes deepod-mnp's checksummed checkpoint (our own detectors).

        The peers (DeepOD's, PyOD's, the boosted classifiers) have no file
        format that loads without running pickled code, so ``deepod-mnp fit``
        does not save them.
        """
        return self.module.startswith("deepod_mnp.models.")

    @property
    def ours(self) -> bool:
        """Whether it is one of the package's detector classes under its own name (not a peer, not
        another configuration of a class such as ``DevNetBN``)."""
        return self.saveable and self.name == self.attr and not self.defaults


_TAB = "deepod.models.tabular"
DETECTORS: dict[str, DetectorSpec] = {spec.name: spec for spec in [
    DetectorSpec("MNP", "deepod_mnp.models.mnp", "MNP", deepod=True),
    # chooses among MNP, the boosted classifier and IForest with the labels passed to fit
    DetectorSpec("SelectByLabels", "deepod_mnp.models.select", "SelectByLabels"),
    DetectorSpec("DevNetAnoOnly", "deepod_mnp.models.anoonly", "DevNetAnoOnly", deepod=True),
    DetectorSpec("DeepSADAnoOnly", "deepod_mnp.models.anoonly", "DeepSADAnoOnly", deepod=True),
    # AnoOnly's controls: the same network, batches and budget with the base method's whole loss
    DetectorSpec("DevNetBN", "deepod_mnp.models.anoonly", "DevNetAnoOnly", defaults={"loss_on": "all"}),
    DetectorSpec("DeepSADBN", "deepod_mnp.models.anoonly", "DeepSADAnoOnly", defaults={"loss_on": "all"}),
    DetectorSpec("DevNet", _TAB, "DevNet"),
    DetectorSpec("RoSAS", _TAB, "RoSAS"),
    DetectorSpec("PReNet", _TAB, "PReNet"),
    DetectorSpec("DeepSAD", _TAB, "DeepSAD"),
    DetectorSpec("FeaWAD", _TAB, "FeaWAD"),
    DetectorSpec("DeepIsolationForest", _TAB, "DeepIsolationForest", "unsupervised"),
    DetectorSpec("DeepSVDD", _TAB, "DeepSVDD", "unsupervised"),
    DetectorSpec("IForest", "pyod.models.iforest", "IForest", "unsupervised", has_device=False),
    # classifiers on the weak labels (unlabeled = normal); extra 'boost'; see deepod_mnp/benchmark/peers.py
    DetectorSpec("CatBoost", "deepod_mnp.benchmark.peers", "CatBoostPeer", has_device=False),
    DetectorSpec("LightGBM", "deepod_mnp.benchmark.peers", "LightGBMPeer", has_device=False),
    DetectorSpec("XGBoost", "deepod_mnp.benchmark.peers", "XGBoostPeer", has_device=False),
    DetectorSpec("XGBOD", "deepod_mnp.benchmark.peers", "XGBODPeer", has_device=False),
]}


#: Our detector classes by name (``deepod_mnp.MNP``, ...), in the catalogue's order.
OURS: tuple[str, ...] = tuple(name for name, spec in DETECTORS.items() if spec.ours)


def canonical_name(name: str) -> str:
    """The registered spelling of a detector name, looked up case-insensitively.

    Raises
    ------
    ValueError
        When no detector of :data:`DETECTORS` has that name; the message lists them.
    """
    lookup = {k.lower(): k for k in DETECTORS}
    if not isinstance(name, str) or name.lower() not in lookup:
        raise ValueError(f"Unknown detector {name!r}; choose from {sorted(DETECTORS)}.")
    return lookup[name.lower()]


def make_detector(name: str, *, random_state: int = 42, device: str = "auto", **params: Any) -> Any:
    """Build a registered detector with its library defaults.

    Parameters
    ----------
    name : str
        A key of :data:`DETECTORS` (case-insensitive).
    random_state : int
        Seed passed to the detector.
    device : str
        ``'auto'`` picks CUDA when available; DeepOD's own default is ``'cuda'``,
        which fails on a CPU-only machine.
    **params
        Overrides of the detector's parameters.

    Returns
    -------
    detector
        An unfitted detector with ``fit(X, y)`` and ``decision_function(X)``.
    """
    spec = DETECTORS[canonical_name(name)]
    kwargs: dict[str, Any] = {**spec.defaults, "random_state": random_state}
    if spec.has_device:
        if device == "auto" and spec.module not in ("deepod_mnp.models.mnp", "deepod_mnp.models.select"):
            import torch  # here, not at module level: the CLI's --help must not load torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        kwargs.update(device=device, verbose=0)
    kwargs.update(params)
    return spec.load()(**kwargs)
