"""Input scaling learned from the training data, so that a detector does not depend on the units of X.

A neural detector fitted on raw units (money amounts, counts, durations) sees
features whose scales differ by orders of magnitude; MNP on Pendigits
multiplied by 100 and shifted by 50 falls from AUC-PR 0.82 to 0.12. A
:class:`FeatureScaler` fitted on the training rows and applied in ``fit`` and
in scoring makes the detector's input the same whatever affine units each
feature was given.

Methods
-------
``'robust'``
    ``(x - median) / IQR`` per feature; a feature whose interquartile range is
    0 (a rare binary flag, a mostly-constant count) is divided by its range
    instead, so it keeps a bounded spread.
``'standard'``
    ``(x - mean) / std`` (the range when std is 0).
``'minmax'``
    ``(x - min) / (max - min)``, the protocol's own step.
``'quantile'``
    scikit-learn's ``QuantileTransformer(output_distribution='normal')`` on a
    bounded subsample; not affine.
``None``
    the identity.

``tail`` bounds what an affine method outputs for rows far outside the bulk
of the training data: ``'clip'`` clips to ``[-tail_bound, tail_bound]``;
``'log'`` keeps values inside that interval and compresses beyond it
logarithmically, ``sign(v) * (c + log1p(|v| - c))``, so that extreme rows stay
ordered but cannot saturate the network.

Every method is equivariant to a positive per-feature affine change of units:
fitted and applied on ``a * X + b`` (``a > 0``) it gives the same output as on
``X``, up to floating-point rounding.
"""
from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("robust", "standard", "minmax", "quantile")
DEFAULT_SCALER = "minmax"  # the detectors' default ``scaler`` (chosen on development splits, BENCHMARKS.md)
TAILS = ("clip", "log")
QUANTILE_SUBSAMPLE = 100_000
QUANTILE_N = 1000


def _safe_scale(scale: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    scale = np.where(scale > 0, scale, fallback)
    return np.where(scale > 0, scale, 1.0)


class FeatureScaler:
    """Per-feature scaling fitted on training rows (see the module docstring).

    Parameters
    ----------
    method : {'robust', 'standard', 'minmax', 'quantile'} or None, default='robust'
        How each feature is centred and scaled.
    tail : {'clip', 'log'} or None, default=None
        What happens beyond ``tail_bound`` after an affine method.
    tail_bound : float, default=5.0
        Where ``tail`` starts.
    random_state : int, default=0
        Seed of the quantile method's subsample.

    Attributes
    ----------
    center_, scale_ : ndarray of shape (n_features,)
        The affine map ``(x - center_) / scale_`` (affine methods).
    quantiles_ : ndarray of shape (n_quantiles, n_features)
        The fitted quantiles (method ``'quantile'``).
    """

    def __init__(self, method: str | None = "robust", *, tail: str | None = None, tail_bound: float = 5.0,
                 random_state: int = 0) -> None:
        self.method = method
        self.tail = tail
        self.tail_bound = tail_bound
        self.random_state = random_state

    def _check(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise ValueError(f"scaler={self.method!r}; choose one of {METHODS} or None.")
        if self.tail is not None and self.tail not in TAILS:
            raise ValueError(f"FeatureScaler: tail={self.tail!r}; choose one of {TAILS} or None.")
        if self.tail is not None and self.method == "quantile":
            raise ValueError("FeatureScaler: tail applies to the affine methods, not to 'quantile'.")
        if not (isinstance(self.tail_bound, (int, float)) and np.isfinite(self.tail_bound)
                and self.tail_bound > 0):
            raise ValueError(f"FeatureScaler: tail_bound must be a positive number, got {self.tail_bound!r}.")

    @property
    def is_affine(self) -> bool:
        """Whether the map is ``(x - center_) / scale_`` alone (foldable into a linear layer)."""
        return self.method != "quantile" and self.tail is None

    def fit(self, X: np.ndarray) -> FeatureScaler:
        """Learn the per-feature statistics of ``X`` (2-D, finite)."""
        self._check()
        X = np.asarray(X, dtype=np.float64)
        n_features = X.shape[1]
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = hi - lo
        if self.method is None:
            self.center_, self.scale_ = np.zeros(n_features), np.ones(n_features)
        elif self.method == "robust":
            q25, median, q75 = np.percentile(X, [25, 50, 75], axis=0)
            self.center_, self.scale_ = median, _safe_scale(q75 - q25, span)
        elif self.method == "standard":
            self.center_, self.scale_ = X.mean(axis=0), _safe_scale(X.std(axis=0), span)
        elif self.method == "minmax":
            self.center_, self.scale_ = lo, _safe_scale(span, span)
        else:
            rng = np.random.default_rng(self.random_state)
            sub = X if len(X) <= QUANTILE_SUBSAMPLE else \
                X[rng.choice(len(X), QUANTILE_SUBSAMPLE, replace=False)]
            n_q = min(QUANTILE_N, len(sub))
            self.quantiles_ = np.percentile(sub, np.linspace(0, 100, n_q), axis=0)
            self.center_, self.scale_ = np.zeros(n_features), np.ones(n_features)
        self.n_features_in_ = n_features
        return self

    def transform(self, X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """Scale ``X`` with the fitted statistics, as ``dtype`` (the detectors ask for float32)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the scaler was fitted on {self.n_features_in_}.")
        if self.method == "quantile":
            return self._quantile(X).astype(dtype)
        out = (X - self.center_) / self.scale_
        c = float(self.tail_bound)
        if self.tail == "clip":
            out = np.clip(out, -c, c)
        elif self.tail == "log":
            mag = np.abs(out)
            out = np.where(mag > c, np.sign(out) * (c + np.log1p(np.maximum(mag - c, 0.0))), out)
        return out.astype(dtype)

    def fit_transform(self, X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        return self.fit(X).transform(X, dtype)

    def _quantile(self, X: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        refs = np.linspace(0, 1, len(self.quantiles_))
        out = np.empty_like(X)
        for j in range(X.shape[1]):
            q = self.quantiles_[:, j]
            # mean of the forward and backward interpolation (as scikit-learn does): ties map to the middle
            fwd = np.interp(X[:, j], q, refs)
            bwd = -np.interp(-X[:, j], -q[::-1], -refs[::-1])
            out[:, j] = 0.5 * (fwd + bwd)
        eps = 1e-7
        return norm.ppf(np.clip(out, eps, 1 - eps))

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict[str, Any]:
        """Plain lists and scalars that :meth:`from_state` turns back into this fitted scaler."""
        state = {"method": self.method, "tail": self.tail, "tail_bound": float(self.tail_bound),
                 "random_state": int(self.random_state), "n_features_in_": int(self.n_features_in_),
                 "center_": self.center_.tolist(), "scale_": self.scale_.tolist()}
        if self.method == "quantile":
            state["quantiles_"] = self.quantiles_.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureScaler:
        scaler = cls(state["method"], tail=state["tail"], tail_bound=state["tail_bound"],
                     random_state=state["random_state"])
        scaler.n_features_in_ = int(state["n_features_in_"])
        scaler.center_ = np.asarray(state["center_"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale_"], dtype=np.float64)
        if "quantiles_" in state:
            scaler.quantiles_ = np.asarray(state["quantiles_"], dtype=np.float64)
        return scaler

    def __repr__(self) -> str:
        return f"FeatureScaler({self.method!r}, tail={self.tail!r}, tail_bound={self.tail_bound!r})"


def parse_spec(spec: str | None) -> tuple[str | None, str | None]:
    """``'robust+clip'`` -> ``('robust', 'clip')``; ``None`` / ``'none'`` -> ``(None, None)``; checked."""
    if spec is None or spec == "none":
        return None, None
    if not isinstance(spec, str):
        raise ValueError(f"scaler must be a string such as 'robust' or 'robust+clip', or None; got {spec!r}.")
    method, _, tail = spec.partition("+")
    scaler = FeatureScaler(method, tail=tail or None)
    try:
        scaler._check()
    except ValueError as exc:
        raise ValueError(f"scaler={spec!r} is not valid: {exc} Use METHOD or METHOD+TAIL with METHOD in "
                         f"{METHODS} and TAIL in {TAILS}, or None.") from exc
    return method, tail or None


def make_scaler(spec: str | None, random_state: int = 0) -> FeatureScaler | None:
    """An unfitted :class:`FeatureScaler` for a detector's ``scaler`` parameter (None for None)."""
    method, tail = parse_spec(spec)
    return None if method is None else FeatureScaler(method, tail=tail, random_state=random_state)


def is_valid_spec(spec: Any) -> bool:
    """Whether ``spec`` is a valid ``scaler`` parameter (for the parameter constraints)."""
    try:
        parse_spec(spec)
    except ValueError:
        return False
    return True
