"""Choose MNP's defaults on development splits carved from the *training* data only.

For each data set, the protocol's train split (PROTOCOL.md steps 1-4) is split
again, stratified by the true labels, into a fitting part (70%) and a
development part (30%). Candidates are fitted on the fitting part with the
protocol's weak labels (1% of its anomalies) and ranked by AUC-PR on the
development part. The test and validation splits are never touched, so the
published test figures stay honest.

Usage::

    python scripts/select_defaults.py --data pendigits gamma bank \
        --candidates '[{"epochs": 5}, {"epochs": 10}]' --seeds 42 43 44

``--data choosing`` (or ``confirming``) stands for that half of the
development pool (:mod:`deepod_mnp.benchmark.pool`), ``main`` for the nine
main sets. A candidate is a dict of MNP parameters, with two extra keys:
``"model"`` fits another registered detector instead of MNP (e.g. the peer
``"CatBoost"``), and ``"prescale"`` (``"robust"``, ``"robust+clip"``,
``"robust+log"``, ``"standard"``, ``"quantile"``, ``"none"``) applies a
scaling fitted on the fitting part to both parts before the detector sees
them. The prescalings and MNP's ``head_features`` and ``fixed_dec_target``
lost and left the package; ``scripts/removed_options.py`` keeps them for this
script (``prescaler``, ``MNPWithOptions``). ``--raw`` starts from the unscaled
features (the protocol's split and constant-column drop without its min-max
step); ``--skip-larger N`` leaves out data sets with more than N train rows for
the candidates that set ``"model"``; ``--max-rows N`` subsamples a larger train
split to N rows (stratified) first, so the 200k+ row sets cost what a 40k one
does (MNP's training budget is fixed anyway: 5 epochs of at most 16 batches).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import torch
from removed_options import MNPWithOptions, prescaler
from sklearn.model_selection import train_test_split

from deepod_mnp import MNP
from deepod_mnp.benchmark.pool import CHOOSING, CONFIRMING, POOL_DIR
from deepod_mnp.benchmark.protocol import (
    auc_pr,
    drop_constant_features,
    make_split,
    semi_labels,
    split_indices,
)
from deepod_mnp.data import load_dataset
from deepod_mnp.registry import make_detector

MAIN = ("pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
        "backdoor")
GROUPS = {"choosing": [f"{POOL_DIR}/{n}.npz" for n in CHOOSING],
          "confirming": [f"{POOL_DIR}/{n}.npz" for n in CONFIRMING], "main": list(MAIN)}


def expand(specs: list[str]) -> list[str]:
    """Data specs with the group names of :data:`GROUPS` expanded."""
    return [s for spec in specs for s in GROUPS.get(spec, [spec])]


def train_split(ds, ratio: float, raw: bool) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's train split (X, true labels): min-max scaled, or in raw units with ``raw``."""
    split = make_split(ds.X, ds.y, ratio)
    if not raw:
        return split.X_train, split.y_train_true
    X, _ = drop_constant_features(np.asarray(ds.X, dtype=np.float64))
    train, _, _ = split_indices(ds.y)
    return X[train], split.y_train_true


def dev_split(X: np.ndarray, y: np.ndarray, ratio: float, seed: int = 7):
    """Fit/dev parts of a train split; fit part ordered normals first, then anomalies."""
    fit_idx, dev_idx = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed)
    fit_idx = np.concatenate([fit_idx[y[fit_idx] == 0], fit_idx[y[fit_idx] == 1]])
    return X[fit_idx], semi_labels(y[fit_idx], ratio), X[dev_idx], y[dev_idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["pendigits", "gamma", "bank"])
    ap.add_argument("--candidates", required=True, help="JSON list of MNP parameter dicts")
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    ap.add_argument("--labeled-ratio", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="also write one row per (data, candidate, seed) to this CSV")
    ap.add_argument("--raw", action="store_true", help="unscaled features (no protocol min-max)")
    ap.add_argument("--affine", nargs=2, type=float, metavar=("A", "B"),
                    help="multiply the features by A and add B before anything else (e.g. 100 50)")
    ap.add_argument("--skip-larger", type=int, help="peers ('model') only on sets with <= N train rows")
    ap.add_argument("--max-rows", type=int,
                    help="subsample a larger train split to N rows (stratified, seed 7) before the dev split")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    if args.out and os.path.exists(args.out):  # resume: keep the rows already written, skip their runs
        rows = pd.read_csv(args.out).to_dict("records")
    def key(data, cand, seed, raw, affine) -> tuple:
        return data, cand, int(seed), bool(raw), "null" if pd.isna(affine) else str(affine)

    done = {key(r["data"], r["candidate"], r["seed"], r.get("raw", False), r.get("affine")) for r in rows}
    for spec in expand(args.data):
        ds = load_dataset(spec)
        X_train, y_train = train_split(ds, args.labeled_ratio, args.raw)
        if args.affine:
            X_train = X_train * args.affine[0] + args.affine[1]
        if args.max_rows and len(X_train) > args.max_rows:
            keep, _ = train_test_split(np.arange(len(y_train)), train_size=args.max_rows, stratify=y_train,
                                       random_state=7)
            X_train, y_train = X_train[np.sort(keep)], y_train[np.sort(keep)]
        Xf, yf, Xd, yd = dev_split(X_train, y_train, args.labeled_ratio)
        for cand in json.loads(args.candidates):
            params = dict(cand)
            model_name = params.pop("model", None)
            if model_name and args.skip_larger and len(X_train) > args.skip_larger:
                continue
            scaler = prescaler(params.pop("prescale")) if "prescale" in params else None
            if scaler is not None and not model_name:
                params["scaler"] = None  # the prescaling replaces MNP's own input scaling
            Xf_in, Xd_in = (Xf, Xd) if scaler is None else (scaler.fit_transform(Xf, np.float64),
                                                            scaler.transform(Xd, np.float64))
            for seed in args.seeds:
                if key(ds.name, json.dumps(cand), seed, args.raw, json.dumps(args.affine)) in done:
                    continue
                t0 = time.perf_counter()
                mnp = MNPWithOptions if {"head_features", "fixed_dec_target"} & set(params) else MNP
                model = (make_detector(model_name, random_state=seed, **params) if model_name
                         else mnp(random_state=seed, **params)).fit(Xf_in, yf)
                rows.append({"data": ds.name, "candidate": json.dumps(cand), "seed": seed,
                             "dev_auc_pr": auc_pr(yd, model.decision_function(Xd_in)),
                             "fit_s": time.perf_counter() - t0, "raw": args.raw,
                             "affine": json.dumps(args.affine), "max_rows": args.max_rows})
                if args.out:  # written as it goes, so a long run can be read (and resumed by hand)
                    pd.DataFrame(rows).to_csv(args.out, index=False)
            here = (ds.name, json.dumps(cand))
            last = pd.DataFrame([r for r in rows if (r["data"], r["candidate"]) == here])
            if last.empty:
                continue
            print(f"{ds.name:12s} {json.dumps(cand):60s} dev AUC-PR {last.dev_auc_pr.mean():.3f}"
                  f" ± {last.dev_auc_pr.std():.3f}  fit {last.fit_s.mean():.1f}s", flush=True)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).pivot_table(index="candidate", columns="data", values="dev_auc_pr")
    table["mean"] = table.mean(axis=1)
    print(table.sort_values("mean", ascending=False).round(3).to_string())


if __name__ == "__main__":
    main()
