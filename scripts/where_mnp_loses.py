"""Where does MNP leave the labels' information unused? A diagnostic on development splits.

For each data set (development split of the training data only, as in
``select_defaults.py``), MNP is fitted with the given parameters and its
development AUC-PR is read off each input of its score head separately:
the head's score, the reconstruction error ``e_i`` alone, the negative
largest prototype similarity ``-s_i`` alone, and, for comparison, CatBoost on
the same weak labels and PyOD's IForest (no labels). When ``e_i`` or ``-s_i``
alone beats the head, the head is discarding information it was given; when
CatBoost beats all of them, the information is in the input features but never
reaches the head through the autoencoder's 8-dimensional code.

Usage::

    python scripts/where_mnp_loses.py --data choosing --seeds 42 --out results/defaults/where_mnp_loses.csv
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from select_defaults import dev_split, expand, train_split  # noqa: E402

from deepod_mnp import MNP  # noqa: E402
from deepod_mnp.benchmark.protocol import auc_pr  # noqa: E402
from deepod_mnp.data import load_dataset  # noqa: E402
from deepod_mnp.registry import make_detector  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["choosing"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42])
    ap.add_argument("--params", default="{}", help="MNP parameters as JSON")
    ap.add_argument("--max-rows", type=int, default=40000)
    ap.add_argument("--peers", default="CatBoost,IForest", help="comma-separated; '' for none")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for spec in expand(args.data):
        ds = load_dataset(spec)
        X_train, y_train = train_split(ds, 0.01, raw=False)
        if len(X_train) > args.max_rows:
            from sklearn.model_selection import train_test_split

            keep, _ = train_test_split(np.arange(len(y_train)), train_size=args.max_rows, stratify=y_train,
                                       random_state=7)
            X_train, y_train = X_train[np.sort(keep)], y_train[np.sort(keep)]
        Xf, yf, Xd, yd = dev_split(X_train, y_train, 0.01)
        for seed in args.seeds:
            model = MNP(random_state=seed, **json.loads(args.params)).fit(Xf, yf)
            comp = model.score_components(Xd)
            row = {"data": ds.name, "seed": seed, "n_labeled": int(yf.sum()), "k": model.n_prototypes_,
                   "head score": auc_pr(yd, comp["score"]),
                   "e_i alone": auc_pr(yd, comp["reconstruction_error"]),
                   "-s_i alone": auc_pr(yd, -comp["max_similarity"])}
            for peer in [p for p in args.peers.split(",") if p]:
                det = make_detector(peer, random_state=seed, **({"n_jobs": 1} if peer != "IForest" else {}))
                det.fit(Xf, yf if peer != "IForest" else None)
                row[peer] = auc_pr(yd, det.decision_function(Xd))
            rows.append(row)
            shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            print(json.dumps(shown), flush=True)
            if args.out:
                pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).groupby("data").mean(numeric_only=True).drop(columns="seed")
    print(table.round(3).to_string())
    print(table.mean().round(3).to_string())


if __name__ == "__main__":
    main()
