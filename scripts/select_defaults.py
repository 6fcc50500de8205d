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
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, make_split, semi_labels
from deepod_mnp.data import load_dataset


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.data:
        ds = load_dataset(spec)
        split = make_split(ds.X, ds.y, args.labeled_ratio)
        Xf, yf, Xd, yd = dev_split(split.X_train, split.y_train_true, args.labeled_ratio)
        for cand in json.loads(args.candidates):
            params = dict(cand)
            for seed in args.seeds:
                t0 = time.perf_counter()
                model = MNP(random_state=seed, **params).fit(Xf, yf)
                rows.append({"data": ds.name, "candidate": json.dumps(cand), "seed": seed,
                             "dev_auc_pr": auc_pr(yd, model.decision_function(Xd)),
                             "fit_s": time.perf_counter() - t0})
            last = pd.DataFrame(rows[-len(args.seeds):])
            print(f"{ds.name:12s} {json.dumps(cand):60s} dev AUC-PR {last.dev_auc_pr.mean():.3f}"
                  f" ± {last.dev_auc_pr.std():.3f}  fit {last.fit_s.mean():.1f}s", flush=True)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).pivot_table(index="candidate", columns="data", values="dev_auc_pr")
    table["mean"] = table.mean(axis=1)
    print(table.sort_values("mean", ascending=False).round(3).to_string())


if __name__ == "__main__":
    main()
