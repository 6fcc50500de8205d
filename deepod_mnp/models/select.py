"""SelectByLabels: the detector that the user's own labeled anomalies choose.

No single detector is best on every table: MNP wins on some, a boosted
classifier that treats unlabeled rows as normal wins on others, by a lot, and
on most of the development pool the blend of the two beats either
(BENCHMARKS.md, "Choosing a detector"). The few labeled anomalies a user has
can tell more, inside ``fit``: with five or more, the candidates and their
blends are cross-validated with
:class:`deepod_mnp.model_selection.AnomalyFoldSplit` (folds over the labeled
anomalies; a fixed, bounded sample of unlabeled rows to fit on and another to
rank among) and scored by how high the held-out anomalies rank among unlabeled
rows no fold has seen. With fewer, the labels decide whether an isolation
forest joins the blend. The choice is then refitted on every row.
"""
from __future__ import annotations

import logging
import numbers
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from deepod_mnp._params import NONE, RANDOM_STATE, Interval, Predicate, validate_params
from deepod_mnp._validation import check_y
from deepod_mnp.base import BaseDetector, draw_seed, resolve_device, store_params
from deepod_mnp.model_selection import AnomalyFoldSplit
from deepod_mnp.preprocessing import TableEncoder

logger = logging.getLogger(__name__)

#: The candidates by default: name -> (registry name, parameters). Chosen on the development pool
#: (BENCHMARKS.md, "Choosing a detector"): MNP with ``recon_norm='log'`` blended better with the boosted
#: classifier than MNP's paper defaults did, and IForest ranks anomalies that no label resembles.
DEFAULT_CANDIDATES: dict[str, tuple[str, dict]] = {
    "MNP-log": ("MNP", {"recon_norm": "log"}),
    "CatBoost": ("CatBoost", {}),
    "IForest": ("IForest", {}),
}
#: The blends that cross-validation compares beside each candidate alone (names joined by ``+``).
DEFAULT_BLENDS: tuple[str, ...] = ("CatBoost+MNP-log", "CatBoost+MNP-log+IForest")
#: What is kept unless another option ranks the held-out anomalies better by more than ``margin``.
DEFAULT_OPTION = "CatBoost+MNP-log"
#: Registry names of candidates that ignore the labels (they can be scored on a single labeled anomaly).
UNSUPERVISED: frozenset[str] = frozenset({"IForest", "DeepIsolationForest", "DeepSVDD"})
#: Cheaper stand-ins fitted in the folds, by registry name (the refit uses the candidate as given):
#: one MNP member instead of three, 200 boosting rounds instead of 1,000. They rank held-out anomalies
#: as the full candidates do (BENCHMARKS.md) at a third of the cost or less.
FOLD_PARAMS: dict[str, dict] = {"MNP": {"n_ensemble": 1}, "CatBoost": {"iterations": 200}}
#: Fewer labeled anomalies than this: no cross-validation (its held-out AUC is too noisy with one
#: anomaly per fold: on the development splits it lost to the default with 2-4 labels and gained from 5).
MIN_CV_LABELS = 5
#: With fewer labels: an unsupervised candidate joins the default option when it ranks the labeled
#: anomalies above this share of unseen unlabeled rows (their held-out AUC; it needs no labels to fit).
FEW_LABELS_GATE = 0.9

#: Set by the selector for every candidate, so not a candidate's own parameter.
SELECTOR_PARAMS = ("device", "random_state")


@dataclass(frozen=True)
class Candidate:
    """One candidate: its name, the registered detector and its parameters."""

    name: str
    detector: str
    params: dict

    @property
    def unsupervised(self) -> bool:
        return self.detector in UNSUPERVISED

    def available(self) -> bool:
        """Whether the library behind it is installed (the boosted peers need the ``boost`` extra)."""
        from deepod_mnp.registry import DETECTORS

        cls = DETECTORS[self.detector].load()
        return bool(getattr(cls, "available", lambda: True)())

    def make(self, seed: int, device: Any, *, in_fold: bool = False) -> Any:
        from deepod_mnp.registry import make_detector

        params = {**self.params, **(FOLD_PARAMS.get(self.detector, {}) if in_fold else {})}
        return make_detector(self.detector, random_state=seed, device=device, **params)


def parse_candidates(candidates: Any) -> list[Candidate]:
    """``candidates`` (None: :data:`DEFAULT_CANDIDATES`) as a list of :class:`Candidate`.

    ``candidates`` maps a name to a registry name or to ``(registry name, params)``,
    e.g. ``{"MNP": "MNP", "MNP-k1": ("MNP", {"n_prototypes": 1}), "LightGBM": "LightGBM"}``.
    """
    from deepod_mnp.registry import canonical_name

    items = DEFAULT_CANDIDATES if candidates is None else candidates
    out = []
    for name, spec in items.items():
        detector, params = (spec, {}) if isinstance(spec, str) else spec
        if canonical_name(detector) == "SelectByLabels":
            raise ValueError("a candidate cannot be SelectByLabels itself")
        out.append(Candidate(str(name), canonical_name(detector), dict(params)))
    return out


def _valid_candidates(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    try:
        parsed = parse_candidates(value)
    except (ValueError, TypeError):
        return False
    return all(isinstance(c.params, dict) and all(isinstance(k, str) for k in c.params) and "+" not in c.name
               and not set(c.params) & set(SELECTOR_PARAMS) for c in parsed)


def _valid_blends(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(b, str) and "+" in b for b in value)


class ScoreBlend:
    """The mean of fitted detectors' standardised scores (each by its training scores' mean and std).

    Each member's score of a row depends on that row only, so the blend scores
    row by row like any detector. Members are fitted before the blend is built.

    Parameters
    ----------
    members : list
        Fitted detectors with ``decision_function`` and ``decision_scores_``.
    """

    def __init__(self, members: list) -> None:
        self.members = members
        train = [np.asarray(m.decision_scores_, dtype=np.float64) for m in members]
        self.center_ = np.array([t.mean() for t in train])
        self.scale_ = np.array([t.std() if t.std() > 0 else 1.0 for t in train])

    def decision_function(self, X: Any) -> np.ndarray:
        parts = [(np.asarray(m.decision_function(X), dtype=np.float64) - c) / s
                 for m, c, s in zip(self.members, self.center_, self.scale_)]
        return np.mean(parts, axis=0)

    @property
    def decision_scores_(self) -> np.ndarray:
        parts = [(np.asarray(m.decision_scores_, dtype=np.float64) - c) / s
                 for m, c, s in zip(self.members, self.center_, self.scale_)]
        return np.mean(parts, axis=0)


class SelectByLabels(BaseDetector):
    """Cross-validate candidate detectors and blends on the labeled anomalies; refit the choice on everything.

    With at least :data:`MIN_CV_LABELS` (5) labeled anomalies, every
    candidate is fitted on the folds of
    :class:`~deepod_mnp.model_selection.AnomalyFoldSplit` (as a cheaper
    stand-in, :data:`FOLD_PARAMS`) and each option, a candidate alone or a
    blend (:class:`ScoreBlend`), is scored by its mean held-out AUC: how often
    a held-out labeled anomaly outranks an unseen unlabeled row. The
    ``default`` option is kept unless another beats it by more than
    ``margin``. With 1 to 4 labeled anomalies a fold holds out one or two, too
    few to rank options by: the default option is kept, joined by each
    unsupervised candidate (IForest) that ranks the labeled anomalies above
    :data:`FEW_LABELS_GATE` of unseen unlabeled rows (it needs no label to be
    fitted, so every labeled anomaly tests it). With none, the first
    unsupervised candidate is fitted, with a warning. These rules were chosen
    on development splits of the development pool's choosing half and of the
    nine main sets, and confirmed on the other half (BENCHMARKS.md, "Choosing
    a detector"). Only the labels passed to ``fit`` are used.

    Parameters
    ----------
    candidates : dict or None, default=None
        Name -> registry name (``deepod_mnp.DETECTORS``) or ``(registry name,
        params)``. None is :data:`DEFAULT_CANDIDATES`: MNP with
        ``recon_norm='log'``, the CatBoost classifier on the weak labels (the
        ``boost`` extra) and PyOD's IForest. ``device`` and ``random_state``
        are the selector's, passed to every candidate, and refused in ``params``.
    blends : list of str or None, default=None
        Blends compared besides each candidate alone, as candidate names
        joined by ``+`` (``"CatBoost+MNP-log"``). None is
        :data:`DEFAULT_BLENDS` with the default candidates, else no blend.
    default : str or None, default=None
        The option kept unless another ranks the held-out anomalies better by
        more than ``margin`` (a candidate name or a blend). None is
        :data:`DEFAULT_OPTION` with the default candidates, else the first
        blend or, without blends, the first candidate.
    margin : float, default=0.01
        How much higher another option's mean held-out AUC must be to replace
        the default.
    n_splits : int, default=3
        Folds over the labeled anomalies (fewer when fewer anomalies are labeled).
    max_fit : int, default=4096
        Unlabeled rows each fold fits on (a fixed sample, the same for every fold and candidate).
    max_eval : int, default=4096
        Unlabeled rows each fold ranks the held-out anomalies among (another fixed sample).
    contamination : float, default=0.1
        Expected share of anomalies, used only for ``threshold_`` and ``predict``.
    device : str, default='auto'
        Device of the candidates that take one (MNP: CUDA if available, else CPU).
    verbose : int, default=0
        1 shows a progress bar over the fold fits and logs the choice in one line at INFO level
        (``logging.getLogger('deepod_mnp.models.select')``).
    random_state : int, RandomState, Generator or None, default=42
        Seed of the folds and of every candidate.

    Attributes
    ----------
    best_estimator_ : detector or ScoreBlend
        The chosen option, refitted on every row.
    best_candidate_ : str
        Its name (a candidate, or candidates joined by ``+``).
    cv_results_ : dict of lists
        One entry per option, in the spirit of scikit-learn's
        ``GridSearchCV.cv_results_``: ``candidate``, ``split<i>_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score`` and
        ``mean_fit_time`` (a blend's is the sum of its members'). With fewer
        than :data:`MIN_CV_LABELS` labels, the unsupervised candidates' held-out
        AUC on the labeled anomalies (``split0_test_score``); with none, empty.
    selection_rule_ : str
        ``'cross-validation'``, ``'few labels'`` or ``'no label'``.
    n_features_in_ : int
    decision_scores_ : ndarray of shape (n_samples,)
    threshold_ : float
    labels_ : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from deepod_mnp import SelectByLabels
    >>> clf = SelectByLabels().fit(X, y)            # doctest: +SKIP
    >>> clf.best_candidate_                          # doctest: +SKIP
    'CatBoost+MNP-log'
    """

    model_name = "SelectByLabels"
    _parameter_constraints: ClassVar[dict] = {
        "candidates": [NONE, Predicate(_valid_candidates, "a non-empty dict of name -> registry name or "
                                                          "(registry name, params), names without '+', "
                                                          "params without device or random_state "
                                                          "(the selector's)")],
        "blends": [NONE, Predicate(_valid_blends, "a list of candidate names joined by '+'")],
        "default": [NONE, Predicate(lambda v: isinstance(v, str), "a candidate or blend name")],
        "margin": [Interval(numbers.Real, 0)],
        "n_splits": [Interval(numbers.Integral, 2)],
        "max_fit": [Interval(numbers.Integral, 2)],
        "max_eval": [Interval(numbers.Integral, 2)],
        "contamination": BaseDetector._parameter_constraints["contamination"],
        "device": BaseDetector._parameter_constraints["device"],
        "verbose": BaseDetector._parameter_constraints["verbose"],
        "random_state": RANDOM_STATE,
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        "n_features_in_", "encoder_", "scaler_", "device_", "decision_scores_", "threshold_", "labels_",
        "fit_info_", "best_estimator_", "best_candidate_", "cv_results_", "selection_rule_")

    def __init__(self, *, candidates: dict | None = None, blends: list | None = None,
                 default: str | None = None, margin: float = 0.01, n_splits: int = 3, max_fit: int = 4096,
                 max_eval: int = 4096, contamination: float = 0.1, device: str = "auto", verbose: int = 0,
                 random_state: Any = 42) -> None:
        store_params(self, locals())

    #: No input scaling of its own: each candidate scales its input as it does alone.
    scaler = None

    # ------------------------------------------------------------------ checks
    def _options(self) -> tuple[list[Candidate], list[str], str]:
        """The candidates, every option's name (candidates alone, then blends) and the default option.

        A candidate whose library is not installed is left out, with a warning, and so is every
        blend with it; a default that held it keeps its other members.
        """
        candidates = parse_candidates(self.candidates)
        names = [c.name for c in candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidates has repeated names: {names}.")
        built_in = self.candidates is None and self.blends is None
        blends = list(DEFAULT_BLENDS if built_in else self.blends or [])
        for blend in blends:
            parts = blend.split("+")
            if len(set(parts)) != len(parts) or not set(parts) <= set(names):
                raise ValueError(f"blends: {blend!r} must join distinct candidate names of {names}.")
        options = names + [b for b in blends if b not in names]
        default = (self.default if self.default is not None else DEFAULT_OPTION if built_in
                   else blends[0] if blends else names[0])
        if default not in options:
            raise ValueError(f"default={default!r} is neither a candidate nor a blend: {options}.")
        missing = {c.name for c in candidates if not c.available()}
        if not missing:
            return candidates, options, default
        if missing == set(names):
            raise ValueError(f"no candidate of {type(self).__name__} is installed: {sorted(missing)} need "
                             "pip install 'deepod-mnp[boost]'.")
        warnings.warn(f"{type(self).__name__} leaves out {', '.join(sorted(missing))}, whose library is not "
                      "installed (pip install 'deepod-mnp[boost]'), and chooses among the rest.",
                      UserWarning, stacklevel=4)
        options = [o for o in options if not set(o.split("+")) & missing]
        default = "+".join(p for p in default.split("+") if p not in missing) or options[0]
        if default not in options:
            options.append(default)
        return [c for c in candidates if c.name not in missing], options, default

    def _check_training_data(self, X: np.ndarray, y: np.ndarray) -> None:
        self._options()  # names, blends and default agree (a ValueError before any fit)

    def _check_y(self, y: Any, n_samples: int) -> np.ndarray:
        """Weak labels as 0/1; no labeled anomaly is allowed (the no-label rule applies, with a warning)."""
        y = check_y(y, n_samples) if y is not None else np.zeros(n_samples, dtype=np.int64)
        if not np.any(y == 0):
            raise ValueError(f"y labels every sample as an anomaly; {type(self).__name__} needs unlabeled "
                             "samples (0).")
        if not np.any(y == 1):
            unsupervised = [c for c in parse_candidates(self.candidates) if c.unsupervised]
            if not unsupervised:
                raise ValueError(f"y labels no anomaly and no candidate of {type(self).__name__} works "
                                 "without labels; add an unsupervised one (IForest) or label the anomalies "
                                 "you know.")
            warnings.warn(f"y labels no anomaly: {type(self).__name__} cannot rank its candidates and fits "
                          f"{unsupervised[0].name}, which needs no labels.", UserWarning, stacklevel=3)
        return y

    # --------------------------------------------------------------- training
    def _fit_candidate(self, candidate: Candidate, seed: int, X: np.ndarray, y: np.ndarray,
                       in_fold: bool = False) -> Any:
        model = candidate.make(seed, self.device, in_fold=in_fold)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. a peer's threads note
            return model.fit(X, None if candidate.unsupervised else y)

    def _cross_validate(self, X: np.ndarray, y: np.ndarray, candidates: list[Candidate], options: list[str],
                        rng: np.random.Generator) -> dict[str, list]:
        """Every option's held-out AUC on every fold (blends from their members' fold scores)."""
        splitter = AnomalyFoldSplit(self.n_splits, max_fit=self.max_fit, max_eval=self.max_eval,
                                    random_state=draw_seed(rng))
        folds = list(splitter.split(X, y))
        seeds = rng.integers(2**31 - 1, size=(len(candidates), len(folds)))
        scores: dict[str, list[np.ndarray]] = {}
        fit_time: dict[str, float] = {}
        bar = tqdm(total=len(candidates) * len(folds), desc=f"{type(self).__name__} folds",
                   disable=not self.verbose, leave=False)
        for c, candidate in enumerate(candidates):
            times, scores[candidate.name] = [], []
            for i, (train, test) in enumerate(folds):
                t0 = time.perf_counter()
                model = self._fit_candidate(candidate, int(seeds[c, i]), X[train], y[train], in_fold=True)
                times.append(time.perf_counter() - t0)
                test_scores = np.asarray(model.decision_function(X[test]), dtype=np.float64)
                train_scores = np.asarray(model.decision_scores_, dtype=np.float64)
                scores[candidate.name].append(_standardised(test_scores, train_scores))
                bar.update()
            fit_time[candidate.name] = float(np.mean(times))
        bar.close()
        results: dict[str, list] = {"candidate": list(options)}
        table = np.array([[_auc(y[test], np.mean([scores[p][i] for p in option.split("+")], axis=0))
                           for i, (_, test) in enumerate(folds)] for option in options])
        for i in range(len(folds)):
            results[f"split{i}_test_score"] = table[:, i].tolist()
        results["mean_test_score"] = table.mean(axis=1).tolist()
        results["std_test_score"] = table.std(axis=1).tolist()
        order = np.argsort(-table.mean(axis=1), kind="stable")
        results["rank_test_score"] = (np.argsort(order, kind="stable") + 1).tolist()
        results["mean_fit_time"] = [sum(fit_time[p] for p in o.split("+")) for o in options]
        return results

    def _few_labels(self, X: np.ndarray, y: np.ndarray, candidates: list[Candidate],
                    rng: np.random.Generator) -> tuple[dict[str, list], list[str]]:
        """The unsupervised candidates' held-out AUC on the labeled anomalies, and those passing the gate."""
        unsupervised = [c for c in candidates if c.unsupervised]
        if not unsupervised:
            return {}, []
        unlabeled = np.flatnonzero(y == 0)
        order = unlabeled[rng.permutation(len(unlabeled))]
        n_eval = max(1, min(len(order) // 2, self.max_eval))
        eval_rows, fit_rows = order[:n_eval], order[n_eval:n_eval + self.max_fit]
        test = np.r_[eval_rows, np.flatnonzero(y == 1)]
        results: dict[str, list] = {"candidate": [], "split0_test_score": [], "mean_fit_time": []}
        passed = []
        for candidate in unsupervised:
            t0 = time.perf_counter()
            model = self._fit_candidate(candidate, draw_seed(rng), X[fit_rows], y[fit_rows],
                                        in_fold=True)
            auc = _auc(y[test], np.asarray(model.decision_function(X[test]), dtype=np.float64))
            results["candidate"].append(candidate.name)
            results["split0_test_score"].append(auc)
            results["mean_fit_time"].append(time.perf_counter() - t0)
            if auc >= FEW_LABELS_GATE:
                passed.append(candidate.name)
        return results, passed

    def _fit(self, X: np.ndarray, y: np.ndarray, device: Any) -> dict[str, Any]:
        """Choose by the rule the number of labels calls for and refit the choice; the fitted state."""
        rng = np.random.default_rng(self.random_state)
        candidates, options, default = self._options()
        by_name = {c.name: c for c in candidates}
        n_labeled = int(np.sum(y == 1))
        results: dict[str, list] = {}
        if n_labeled == 0:
            chosen, rule = next(c.name for c in candidates if c.unsupervised), "no label"
        elif n_labeled < MIN_CV_LABELS:
            results, passed = self._few_labels(X, y, candidates, rng)
            parts = default.split("+")
            chosen, rule = "+".join(parts + [p for p in passed if p not in parts]), "few labels"
        else:
            results = self._cross_validate(X, y, candidates, options, rng)
            means = dict(zip(options, results["mean_test_score"]))
            best = max(options, key=lambda o: (means[o], -options.index(o)))
            chosen = best if means[best] > means[default] + self.margin else default
            rule = "cross-validation"
        seed = draw_seed(rng)
        members = [self._fit_candidate(by_name[name], seed, X, y) for name in chosen.split("+")]
        message = f"{type(self).__name__} chose {chosen} ({rule}, {n_labeled} labeled anomalies)"
        if "mean_test_score" in results:
            message += "; mean held-out AUC: " + ", ".join(
                f"{n} {s:.3f}" for n, s in zip(results["candidate"], results["mean_test_score"]))
        elif results:
            message += "; held-out AUC of the labeled anomalies: " + ", ".join(
                f"{n} {s:.3f}" for n, s in zip(results["candidate"], results["split0_test_score"]))
        (logger.info if self.verbose else logger.debug)(message)
        return {"best_estimator_": members[0] if len(members) == 1 else ScoreBlend(members),
                "best_candidate_": chosen, "cv_results_": results, "selection_rule_": rule}

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        """The chosen option's own training scores."""
        return np.asarray(self.best_estimator_.decision_scores_, dtype=np.float64)

    def card_sections(self) -> dict[str, dict[str, Any]]:
        """The choice and every option's fold results, for the model card (``deepod-mnp info``)."""
        check_is_fitted(self)
        section: dict[str, Any] = {"chosen": self.best_candidate_, "rule": self.selection_rule_}
        res = self.cv_results_
        for i, name in enumerate(res.get("candidate", [])):
            score = res["mean_test_score"][i] if "mean_test_score" in res else res["split0_test_score"][i]
            section[name] = f"held-out AUC {score:.3f}, fit {res['mean_fit_time'][i]:.2f} s a fold"
        return {"selection": section}

    # DeepOD's hooks: the selector trains no network of its own; each candidate runs its own hooks.
    def training_prepare(self, X: Any, y: Any) -> Any:
        raise NotImplementedError("SelectByLabels fits its candidates; it has no network to prepare.")

    def training_forward(self, batch_x: Any, net: Any, criterion: Any) -> Any:
        raise NotImplementedError("SelectByLabels fits its candidates; it has no network to train.")

    def inference_forward(self, batch_x: Any, net: Any, criterion: Any) -> Any:
        raise NotImplementedError("SelectByLabels scores with its chosen candidate (best_estimator_).")

    # ------------------------------------------------------------ persistence
    def _members(self) -> list:
        best = self.best_estimator_
        return list(best.members) if isinstance(best, ScoreBlend) else [best]

    def save_model(self, path: str | Path) -> None:
        """Save the parameters, the choice, its cross-validation results and the fitted candidate(s).

        The file is a checksummed torch checkpoint (:mod:`deepod_mnp.persistence`) that
        ``torch.load(weights_only=True)`` reads: MNP as its own checkpoint contents,
        CatBoost in its ``cbm`` format, LightGBM as its model text, IForest through
        ``skops`` (only an IForest's own types are trusted when it is loaded).
        """
        import torch

        from deepod_mnp import persistence

        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        persistence.write({
            "format": persistence.checkpoint_format(type(self)), "params": self.get_params(),
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": [] if names is None else list(names),
            "decision_scores_": torch.from_numpy(np.asarray(self.decision_scores_, dtype=np.float64)),
            "threshold_": float(self.threshold_), "best_candidate_": self.best_candidate_,
            "encoder_": None if self.encoder_ is None else self.encoder_.get_state(),
            "fit_info_": dict(self.fit_info_),
            "selection_rule_": self.selection_rule_, "cv_results_": self.cv_results_,
            "members": [_member_state(m) for m in self._members()],
        }, path)

    @classmethod
    def load_model(cls, path: str | Path, device: str | None = None) -> SelectByLabels:
        """Load a selector written by :meth:`save_model`, optionally with its MNP on another device.

        Raises ``ValueError`` (:class:`~deepod_mnp.persistence.CheckpointError`) for any file that is
        not an intact checkpoint of this class.
        """
        from deepod_mnp import persistence

        state = persistence.read(cls, path)
        try:
            params = dict(state["params"])
            if device is not None:
                params["device"] = device
            model = cls(**params)
            validate_params(model)
            members = [_member_from_state(m, device) for m in state["members"]]
            if not members:
                raise persistence.CheckpointError("it holds no fitted candidate")
            encoder = None if state["encoder_"] is None else TableEncoder.from_state(state["encoder_"])
            if encoder is not None and list(encoder.feature_names_in_) != state["feature_names_in_"]:
                raise persistence.CheckpointError("the encoder's columns are not the feature_names_in_ "
                                                  "stored beside it")
            scores = state["decision_scores_"].numpy()
            names = state["feature_names_in_"]
            model._set_fitted({
                "best_estimator_": members[0] if len(members) == 1 else ScoreBlend(members),
                "device_": resolve_device(model.device), "scaler_": None, "encoder_": encoder,
                "n_features_in_": int(state["n_features_in_"]),
                **({"feature_names_in_": np.asarray(names, dtype=object)} if names else {}),
                "fit_info_": dict(state["fit_info_"]), "decision_scores_": scores, **model._threshold(scores),
                **{name: state[name] for name in ("best_candidate_", "selection_rule_", "cv_results_")}})
            if float(model.threshold_) != state["threshold_"]:
                raise persistence.CheckpointError("its stored threshold_ is not the one its stored "
                                                  "decision_scores_ give")
            return model
        except persistence.CheckpointError as exc:
            raise persistence.CheckpointError(
                f"{path} is not a valid deepod-mnp {cls.model_name} checkpoint: {exc}") from exc.__cause__
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            raise persistence.CheckpointError(
                f"{path} is not a valid deepod-mnp {cls.model_name} checkpoint: an entry has the wrong type "
                f"or shape ({type(exc).__name__}: {exc})") from exc

    # -------------------------------------------------------------- inference
    def _score(self, X: np.ndarray, return_rep: bool = False):
        best = self.best_estimator_
        if not return_rep:
            return np.asarray(best.decision_function(X), dtype=np.float64)
        if not isinstance(best, BaseDetector):
            raise ValueError(f"return_rep=True: {type(self).__name__} chose {self.best_candidate_}, which "
                             "has no representation; only a single detector of this package (MNP) has one.")
        return best.decision_function(X, return_rep=True)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def _standardised(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``scores`` centred and scaled by the mean and standard deviation of ``reference`` (a model's
    training scores), as :class:`ScoreBlend` standardises each member."""
    std = reference.std()
    return (scores - reference.mean()) / (std if std > 0 else 1.0)


# ---------------------------------------------------------------- persistence
#: Types a saved IForest may hold besides NumPy's and scikit-learn's trusted ones (skops' allowlist).
_IFOREST_TYPES = ["pyod.models.iforest.IForest", "sklearn.tree._tree.Tree"]


def _member_state(member: Any) -> dict[str, Any]:
    """A fitted candidate as plain, ``weights_only``-safe values (no pickled objects)."""
    import torch

    from deepod_mnp import persistence

    def as_bytes(data: bytes) -> torch.Tensor:
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    if isinstance(member, BaseDetector):
        return {"kind": "deepod_mnp", "contents": persistence._contents(member)}
    name = type(member).__name__
    if name == "CatBoostPeer":
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.cbm"
            member.estimator_.save_model(str(path), format="cbm")
            data = path.read_bytes()
        return {"kind": "catboost", "params": member.get_params(), "model": as_bytes(data),
                "n_features_in_": int(member.n_features_in_),
                "decision_scores_": torch.from_numpy(np.asarray(member.decision_scores_, dtype=np.float64))}
    if name == "LightGBMPeer":
        return {"kind": "lightgbm", "params": member.get_params(),
                "model": member.estimator_.booster_.model_to_string(),
                "n_features_in_": int(member.n_features_in_),
                "decision_scores_": torch.from_numpy(np.asarray(member.decision_scores_, dtype=np.float64))}
    if name == "IForest":
        import skops.io

        return {"kind": "iforest", "model": as_bytes(skops.io.dumps(member))}
    raise ValueError(f"SelectByLabels cannot save a chosen {name}: only MNP (and the package's other "
                     f"detectors), CatBoost, LightGBM and IForest candidates can be saved.")


def _member_from_state(state: dict[str, Any], device: str | None) -> Any:
    """The fitted candidate that :func:`_member_state` wrote."""
    from deepod_mnp import persistence
    from deepod_mnp.registry import DETECTORS

    kind = state["kind"]
    if kind == "deepod_mnp":
        contents = state["contents"]
        name = contents["format"].rpartition("/")[0]
        if name not in DETECTORS or name == SelectByLabels.model_name:
            raise persistence.CheckpointError(f"a member's format {contents['format']!r} names no candidate")
        return persistence.from_contents(DETECTORS[name].load(), contents, device,
                                         validate_params=validate_params)
    if kind in ("catboost", "lightgbm"):
        import importlib

        peer = DETECTORS["CatBoost" if kind == "catboost" else "LightGBM"].load()(**state["params"])
        if not peer.available():
            raise persistence.CheckpointError(f"it holds a {kind} model and {kind} is not installed "
                                              "(pip install 'deepod-mnp[boost]')")
        data = state["model"]
        if kind == "catboost":
            catboost = importlib.import_module("catboost")
            peer.estimator_ = catboost.CatBoostClassifier().load_model(blob=data.numpy().tobytes())
        else:
            peer.estimator_ = importlib.import_module("lightgbm").Booster(model_str=data)
        peer.n_features_in_ = int(state["n_features_in_"])
        peer.decision_scores_ = state["decision_scores_"].numpy()
        return peer
    if kind == "iforest":
        import skops.io

        data = state["model"].numpy().tobytes()
        untrusted = skops.io.get_untrusted_types(data=data)
        if not set(untrusted) <= set(_IFOREST_TYPES):
            raise persistence.CheckpointError(f"a member holds types that are not an IForest's: {untrusted}")
        return skops.io.loads(data, trusted=untrusted)
    raise persistence.CheckpointError(f"a member of unknown kind {kind!r}")
