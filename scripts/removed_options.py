"""Options that left deepod-mnp's runtime, kept here for the experiments that measured them.

Each lost where it was measured, so the package no longer offers it
(BENCHMARKS.md, "How the defaults were chosen", "Input scaling", "The score
head"); the published tables that compare them stay reproducible with these
copies, made from the package's code before the options were removed:

* :func:`prescaler`: the input scalings that lost to min-max on the
  development splits (``'robust'`` (median / IQR), ``'standard'``,
  ``'quantile'``, and the tails ``'+clip'`` and ``'+log'`` of the affine
  ones), applied before the detector, as ``scripts/select_defaults.py``'s
  ``"prescale"`` candidates do;
* :class:`MNPWithOptions`: MNP with ``head_features`` (the scaled input also
  fed to the scoring MLP: True, False or ``'auto'``, from
  :data:`HEAD_FEATURES_MIN_LABELED` labeled anomalies on) and
  ``fixed_dec_target`` (DEC's fixed target in Eq. 8, no gradient through it):
  ``scripts/select_defaults.py``, ``scripts/selection_design.py``
  ("MNP_head") and ``scripts/pool_bench.sh``'s ``mnp_head_auto`` and
  ``mnp_log_auto`` phases.

``python scripts/removed_options.py bench ARGS...`` is ``deepod-mnp bench
ARGS...`` with the registry's MNP replaced by :class:`MNPWithOptions`, so
``--params '{"MNP": {"head_features": "auto"}}'`` runs as it did (in this
process: ``--n-jobs 1``). With its options at their defaults
:class:`MNPWithOptions` is MNP, score for score.
"""
from __future__ import annotations

import inspect
import sys
from typing import Any, ClassVar

import numpy as np
import torch

from deepod_mnp import MNP
from deepod_mnp._params import BOOLEAN
from deepod_mnp.models.mnp import MemberNet

HEAD_FEATURES_MIN_LABELED = 5  # head_features='auto': the input reaches the head from this many labels on


# ------------------------------------------------------------------ input scaling
def _safe_scale(scale: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    scale = np.where(scale > 0, scale, fallback)
    return np.where(scale > 0, scale, 1.0)


class PrescaleScaler:
    """``method`` in {'robust', 'standard', 'quantile', None} and ``tail`` in {'clip', 'log', None}
    beyond ``tail_bound`` (affine methods only): fitted on training rows, applied to any."""

    def __init__(self, method: str | None, tail: str | None = None, tail_bound: float = 5.0) -> None:
        if method not in ("robust", "standard", "quantile", None) or tail not in ("clip", "log", None) \
                or (tail is not None and method == "quantile"):
            raise ValueError(f"no prescaling {method!r} with tail {tail!r}")
        self.method, self.tail, self.tail_bound = method, tail, tail_bound

    def fit(self, X: np.ndarray) -> PrescaleScaler:
        X = np.asarray(X, dtype=np.float64)
        span = X.max(axis=0) - X.min(axis=0)
        self.center_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        if self.method == "robust":
            q25, median, q75 = np.percentile(X, [25, 50, 75], axis=0)
            self.center_, self.scale_ = median, _safe_scale(q75 - q25, span)
        elif self.method == "standard":
            self.center_, self.scale_ = X.mean(axis=0), _safe_scale(X.std(axis=0), span)
        elif self.method == "quantile":  # on at most 100,000 rows (seed 0), 1,000 quantiles
            keep = np.random.default_rng(0).choice(len(X), min(len(X), 100_000), replace=False)
            sub = X if len(X) <= 100_000 else X[keep]
            self.quantiles_ = np.percentile(sub, np.linspace(0, 100, min(1000, len(sub))), axis=0)
        return self

    def transform(self, X: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.method == "quantile":
            from scipy.stats import norm

            refs = np.linspace(0, 1, len(self.quantiles_))
            out = np.empty_like(X)
            for j in range(X.shape[1]):
                q = self.quantiles_[:, j]
                # the mean of the forward and backward interpolation (scikit-learn's): ties map to the middle
                out[:, j] = 0.5 * (np.interp(X[:, j], q, refs) - np.interp(-X[:, j], -q[::-1], -refs[::-1]))
            return norm.ppf(np.clip(out, 1e-7, 1 - 1e-7)).astype(dtype)
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


def prescaler(spec: str) -> PrescaleScaler:
    """``'robust+clip'`` -> ``PrescaleScaler('robust', tail='clip')``; ``'none'`` -> the identity."""
    method, _, tail = spec.partition("+")
    return PrescaleScaler(None if method == "none" else method, tail=tail or None)


# ---------------------------------------------------------------------- MNP options
class HeadFeaturesMember(MemberNet):
    """A member whose scoring MLP also reads the (scaled) input ``x`` after ``cat(e_i, z_i, s_i)``."""

    def __init__(self, n_features: int, dims: list[int], **kwargs: Any) -> None:
        super().__init__(n_features, dims, **kwargs)
        first = self.scorer[0]
        self.scorer[0] = torch.nn.Linear(first.in_features + n_features, first.out_features,
                                         bias=first.bias is not None)

    def score_input(self, x: torch.Tensor, e: torch.Tensor, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.cat([super().score_input(x, e, z, s), x], dim=1)


class MNPWithOptions(MNP):
    """:class:`deepod_mnp.MNP` with ``head_features`` and ``fixed_dec_target`` (see the module docstring)."""

    _parameter_constraints: ClassVar[dict] = {
        **MNP._parameter_constraints, "head_features": [BOOLEAN, "auto"], "fixed_dec_target": [BOOLEAN]}
    _fitted_attributes: ClassVar[tuple[str, ...]] = (*MNP._fitted_attributes, "head_features_")

    def __init__(self, *, head_features: bool | str = False, fixed_dec_target: bool = False,
                 **params: Any) -> None:
        super().__init__(**params)
        self.head_features, self.fixed_dec_target = head_features, fixed_dec_target

    def training_prepare(self, X: torch.Tensor, y: np.ndarray, *, data: Any) -> tuple:
        self.head_features_ = bool(int(np.sum(y == 1)) >= HEAD_FEATURES_MIN_LABELED
                                   if self.head_features == "auto" else self.head_features)
        return super().training_prepare(X, y, data=data)

    def _fitted_state(self, loader: Any, net: Any, criterion: Any) -> dict[str, Any]:
        return {**super()._fitted_state(loader, net, criterion), "head_features_": self.head_features_}

    def _build_member(self, n_features: int) -> MemberNet:
        if not self.head_features_:
            return super()._build_member(n_features)
        return HeadFeaturesMember(n_features, self._member_dims(n_features), act=self.act, bias=self.bias,
                                  alpha=self.alpha, recon_in_score=self.recon_in_score,
                                  recon_norm=self.recon_norm)

    def _build_criterion(self, device: torch.device) -> Any:
        criterion = super()._build_criterion(device)
        if self.fixed_dec_target:  # DEC's own target: a constant of the gradient step
            target = criterion.target
            criterion.target = lambda q: target(q).detach()
        return criterion


# scikit-learn reads the parameters from the signature: MNP's and the two options
MNPWithOptions.__init__.__signature__ = inspect.Signature([
    *list(inspect.signature(MNP.__init__).parameters.values()),
    inspect.Parameter("head_features", inspect.Parameter.KEYWORD_ONLY, default=False),
    inspect.Parameter("fixed_dec_target", inspect.Parameter.KEYWORD_ONLY, default=False)])


def main(argv: list[str]) -> int:
    """``deepod-mnp bench`` with :class:`MNPWithOptions` as the registry's MNP, in this process."""
    from deepod_mnp import cli, registry

    if not argv or argv[0] != "bench" or any(a == "--n-jobs" and b != "1" for a, b in zip(argv, argv[1:])):
        print("usage: python scripts/removed_options.py bench ARGS... (with --n-jobs 1)", file=sys.stderr)
        return 2
    registry.DETECTORS["MNP"] = registry.DetectorSpec("MNP", __name__, "MNPWithOptions")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
