"""Raw material for designing the selecting detector, on development splits only.

For each data set and seed, the protocol's train split (PROTOCOL.md steps 1-4)
is split again into a fitting part (70 %) and a development part (30 %), as
``scripts/select_defaults.py`` does; test and validation splits are never
touched. On the fitting part, with the protocol's weak labels, every candidate
detector is

* fitted on the whole fitting part and scored on the development part (what
  the selector should pick: the development AUC-PR), and
* cross-validated with :class:`deepod_mnp.model_selection.AnomalyFoldSplit`
  (what the selector can see): fitted on each fold's training rows and scored
  on the fold's fitting sample (in-sample unlabeled rows), its evaluation
  sample (unseen unlabeled rows) and its held-out labeled anomalies.

Every score vector is written to ``OUT/<data>_<seed>.npz`` (with a JSON header),
so that selection rules (metric, in- or out-of-sample ranking, blends, the
one-label case) can be compared afterwards without refitting:
``scripts/selection_rules.py`` does that. Usage::

    python scripts/selection_design.py --data choosing main embeddings --seeds 42 43 44 \\
        --out results/selection_design --jobs 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

GROUPS = {
    "choosing": ["adbench_pool/" + n + ".npz" for n in (
        "15_Hepatitis", "21_Lymphography", "14_glass", "37_Stamps", "18_Ionosphere", "4_breastw",
        "17_InternetAds", "25_musk", "1_ALOI", "8_celeba", "10_cover", "11_donors")],
    "main": ["pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
             "backdoor"],
    "embeddings": ["adbench_embeddings/" + n + ".npz" for n in ("CIFAR10_0", "SVHN_0", "20news_3",
                                                                 "MVTec-AD_hazelnut")],
}
# name -> (registry name, parameters); "MNP_head"'s head_features left the package (MNP_head lost to MNP
# in every regime): scripts/removed_options.py keeps it
CANDIDATES = {
    "MNP": ("MNP", {}),
    "MNP_k1": ("MNP", {"n_prototypes": 1}),
    "MNP_log": ("MNP", {"recon_norm": "log"}),
    "MNP_head": ("MNP", {"head_features": True}),
    "CatBoost": ("CatBoost", {}),
    "LightGBM": ("LightGBM", {}),
    "IForest": ("IForest", {}),
    # the cheaper stand-ins SelectByLabels fits in its folds (``--folds-only``)
    "MNP~": ("MNP", {"n_ensemble": 1}),
    "MNP_log~": ("MNP", {"recon_norm": "log", "n_ensemble": 1}),
    "CatBoost~": ("CatBoost", {"iterations": 200}),
}
UNSUPERVISED = {"IForest"}


def expand(specs: list[str]) -> list[str]:
    return [s for spec in specs for s in GROUPS.get(spec, [spec])]


def dev_data(spec: str, ratio: float, max_train: int | None):
    """Fitting part (X, weak y), development part (X, true y) of the protocol's train split."""
    from sklearn.model_selection import train_test_split

    from deepod_mnp.benchmark.protocol import make_split, semi_labels
    from deepod_mnp.data import load_dataset

    ds = load_dataset(spec)
    split = make_split(ds.X, ds.y, ratio)
    X, y = split.X_train, split.y_train_true
    if max_train and len(X) > max_train:
        keep, _ = train_test_split(np.arange(len(y)), train_size=max_train, stratify=y, random_state=7)
        X, y = X[np.sort(keep)], y[np.sort(keep)]
    fit_idx, dev_idx = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=7)
    fit_idx = np.concatenate([fit_idx[y[fit_idx] == 0], fit_idx[y[fit_idx] == 1]])
    return ds.name, X[fit_idx], semi_labels(y[fit_idx], ratio), y[fit_idx], X[dev_idx], y[dev_idx]


def fit_score(name: str, seed: int, X, y, *parts):
    from deepod_mnp.registry import make_detector

    model_name, params = CANDIDATES[name]
    if "head_features" in params:
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # in a worker process too
        from removed_options import MNPWithOptions

        det = MNPWithOptions(random_state=seed, device="cpu", **params)
    else:
        det = make_detector(model_name, random_state=seed, device="cpu", **params)
    t0 = time.perf_counter()
    det.fit(X, None if name in UNSUPERVISED else y)
    fit_s = time.perf_counter() - t0
    return fit_s, [np.asarray(det.decision_function(p), dtype=np.float64) for p in parts]


def run_one(spec: str, seed: int, ratio: float, max_train: int | None, out: str, names: list[str],
            folds_only: bool = False) -> str:
    import torch

    torch.set_num_threads(1)
    from deepod_mnp.model_selection import AnomalyFoldSplit

    name, Xf, yf, yf_true, Xd, yd = dev_data(spec, ratio, max_train)
    path = Path(out) / f"{name}_{seed}.npz"
    if path.exists():
        return f"{path} exists"
    arrays: dict[str, np.ndarray] = {"yf": yf, "yf_true": yf_true, "yd": yd}
    header: dict = {"data": name, "seed": seed, "ratio": ratio, "n_fit": len(yf), "n_dev": len(yd),
                    "n_labeled": int(yf.sum()), "fit_s": {}, "fold_fit_s": {}, "errors": {}}
    n_pos = int(yf.sum())
    splitter = AnomalyFoldSplit(n_splits=3, random_state=seed) if n_pos >= 2 else None
    if splitter is not None:
        groups, fit_rows, eval_rows = splitter._layout(yf)
    else:  # one label: the unsupervised candidates can still rank it among unseen unlabeled rows
        rng = np.random.RandomState(seed)
        unl = np.flatnonzero(yf == 0)[rng.permutation(int((yf == 0).sum()))]
        n_eval = min(max(1, len(unl) // 2), 4096)
        fit_rows, eval_rows = np.sort(unl[n_eval:n_eval + 4096]), np.sort(unl[:n_eval])
        groups = [np.flatnonzero(yf == 1)]
    arrays["fit_rows"], arrays["eval_rows"] = fit_rows, eval_rows
    for g, held in enumerate(groups):
        arrays[f"held_{g}"] = held
    if folds_only and splitter is None:
        return f"{name} seed {seed}: one label, no folds"
    for cand in names:
        if not folds_only:
            try:
                fit_s, (train_s, dev_s) = fit_score(cand, seed, Xf, yf, Xf, Xd)
                header["fit_s"][cand] = fit_s
                arrays[f"{cand}:train"], arrays[f"{cand}:dev"] = train_s, dev_s
            except Exception as exc:  # noqa: BLE001 - record and go on
                header["errors"][cand] = f"{type(exc).__name__}: {exc}"
                continue
        if splitter is None and cand not in UNSUPERVISED:
            continue
        times = []
        for g, held in enumerate(groups):
            kept = np.concatenate([h for j, h in enumerate(groups) if j != g]) if splitter else held[:0]
            train = np.sort(np.concatenate([fit_rows, kept]))
            try:
                fs, (s_fit, s_eval, s_held) = fit_score(cand, seed * 100 + g, Xf[train], yf[train],
                                                        Xf[fit_rows], Xf[eval_rows], Xf[held])
            except Exception as exc:  # noqa: BLE001
                header["errors"][f"{cand}:fold{g}"] = f"{type(exc).__name__}: {exc}"
                break
            times.append(fs)
            arrays[f"{cand}:fold{g}:fit"], arrays[f"{cand}:fold{g}:eval"] = s_fit, s_eval
            arrays[f"{cand}:fold{g}:held"] = s_held
        header["fold_fit_s"][cand] = times
    if not folds_only:  # MNP without any label (as it trained before it refused to): score, error, similarity
        try:
            from deepod_mnp import MNP

            class UnlabeledMNP(MNP):
                _anomalies_required = None

            det = UnlabeledMNP(random_state=seed, device="cpu").fit(Xf, np.zeros_like(yf))
            comp = det.score_components(Xd)
            arrays["MNP_nolabel:dev"] = comp["score"].to_numpy()
            arrays["MNP_nolabel_recon:dev"] = comp["reconstruction_error"].to_numpy()
            arrays["MNP_nolabel_sim:dev"] = -comp["max_similarity"].to_numpy()
        except Exception as exc:  # noqa: BLE001
            header["errors"]["MNP_nolabel"] = f"{type(exc).__name__}: {exc}"
    arrays["header"] = np.array(json.dumps(header))
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    fits = header["fit_s"] or {k: sum(v) for k, v in header["fold_fit_s"].items()}
    return f"{name} seed {seed}: {n_pos} labels, fit {json.dumps({k: round(v, 1) for k, v in fits.items()})}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["choosing", "main", "embeddings"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    ap.add_argument("--ratio", type=float, default=0.01)
    ap.add_argument("--max-train", type=int, default=50_000,
                    help="subsample a larger train split to this many rows (stratified) first")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--folds-only", action="store_true",
                    help="only the cross-validation fits (for the folds' cheaper stand-ins); no full fits")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    from joblib import Parallel, delayed

    tasks = [(spec, seed) for spec in expand(args.data) for seed in args.seeds]

    def safe(spec: str, seed: int) -> str:
        try:
            return run_one(spec, seed, args.ratio, args.max_train, args.out, args.candidates, args.folds_only)
        except Exception:  # noqa: BLE001
            return f"{spec} seed {seed} FAILED\n{traceback.format_exc()}"

    for line in Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(safe)(spec, seed) for spec, seed in tasks):
        print(line, flush=True)


if __name__ == "__main__":
    main()
