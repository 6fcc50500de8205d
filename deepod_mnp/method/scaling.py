"""The input scaling a detector learns in ``fit``, so that it does not depend on the units of X.

A neural detector fitted on raw units (money amounts, counts, durations) sees
features whose scales differ by orders of magnitude; MNP on Pendigits
multiplied by 100 and shifted by 50 falls from AUC-PR 0.82 to 0.12. A
:class:`FeatureScaler` fitted on the training rows and applied in ``fit`` and
in scoring maps each feature to ``(x - min) / (max - min)`` of the training
rows: the protocol's own min-max step, learned inside the model. It is
equivariant to a positive per-feature affine change of units (fitted and
applied on ``a * X + b``, ``a > 0``, it gives the same output as on ``X``, up
to floating-point rounding), and on features that are already min-max scaled
it is the identity, bit for bit.

A detector's ``scaler`` is ``'minmax'`` (the default) or None (X as given: for
features a pipeline has already scaled, or a scaling the detector should not
undo). The other scalings tried (median/IQR, standardisation, quantiles, and
clipped or log-compressed tails) lost on average on the development splits
(BENCHMARKS.md, "Input scaling") and are not offered.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: A detector's default ``scaler``; the other value is None.
DEFAULT_SCALER = "minmax"


class FeatureScaler:
    """Per-feature min-max scaling fitted on training rows: ``(x - center_) / scale_``.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Each feature's training minimum.
    scale_ : ndarray of shape (n_features,)
        Each feature's training range (1 for a constant feature).
    n_features_in_ : int
    """

    def fit(self, X: np.ndarray) -> FeatureScaler:
        """Learn each feature's minimum and range from ``X`` (2-D, finite)."""
        X = np.asarray(X, dtype=np.float64)
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = hi - lo
        self.center_, self.scale_ = lo, np.where(span > 0, span, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """Scale ``X`` with the fitted statistics, as ``dtype`` (the detectors ask for float32)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the scaler was fitted on {self.n_features_in_}.")
        return ((X - self.center_) / self.scale_).astype(dtype)

    def fit_transform(self, X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        return self.fit(X).transform(X, dtype)

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mul, add)`` with ``transform(X) == X * mul + add`` up to rounding: the scaling as one
        multiply-add per feature, which the fused scorer and the ONNX graph fold in front of the network."""
        return 1.0 / self.scale_, -self.center_ / self.scale_

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict[str, Any]:
        """Plain lists and scalars that :meth:`from_state` turns back into this fitted scaler."""
        return {"n_features_in_": int(self.n_features_in_), "center_": self.center_.tolist(),
                "scale_": self.scale_.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureScaler:
        scaler = cls()
        scaler.n_features_in_ = int(state["n_features_in_"])
        scaler.center_ = np.asarray(state["center_"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale_"], dtype=np.float64)
        return scaler

    def __repr__(self) -> str:
        return "FeatureScaler()"


def make_scaler(spec: str | None) -> FeatureScaler | None:
    """An unfitted :class:`FeatureScaler` for a detector's ``scaler`` parameter (None for None)."""
    return None if spec is None else FeatureScaler()
