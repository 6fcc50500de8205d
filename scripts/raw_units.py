"""Raw units: fit and score on the features as stored, without the protocol's min-max step.

Same split, weak labels, seeds and job records as ``deepod-mnp bench`` (one
JSON per (data set, model, seed) under ``OUT/jobs``, resumable), but the
detector sees the ``.npz`` features after the constant-column drop only: what
a user's own table looks like. ``--affine A B`` multiplies the raw features by
``A`` and adds ``B`` first (Pendigits x 100 + 50: whether the units matter).
Compare with the min-max records of the same jobs::

    python scripts/raw_units.py --data pool --models MNP --runs 3 --out results/pool_raw
    python scripts/raw_units.py --report results/pool_raw --against results/pool
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd

from deepod_mnp.benchmark.pool import POOL, POOL_DIR
from deepod_mnp.benchmark.protocol import drop_constant_features, make_split, split_indices
from deepod_mnp.benchmark.report import load_records, results_frame
from deepod_mnp.benchmark.runner import Job, _write_json, job_path, run_job
from deepod_mnp.data import load_dataset

MAIN = ("pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
        "backdoor")


def raw_data(ds, ratio: float, affine: tuple[float, float] | None) -> dict[str, np.ndarray]:
    split = make_split(ds.X, ds.y, ratio)
    X, _ = drop_constant_features(np.asarray(ds.X, dtype=np.float64))
    if affine:
        X = X * affine[0] + affine[1]
    train, test, _ = split_indices(ds.y)
    return {"X_train": X[train], "y_train_semi": split.y_train_semi,
            "X_test": X[test], "y_test": split.y_test}


def report(raw_dir: str, against: str, model: str = "MNP") -> pd.DataFrame:
    """Per data set: mean AUC-PR on raw features, on min-max features, and the difference."""
    raw = results_frame(load_records(raw_dir))
    ref = results_frame(load_records(against))
    keys = ["dataset", "seed"]
    raw = raw[(raw.model == model) & (raw.status == "ok")].astype({"dataset": str})
    ref = ref[(ref.model == model) & (ref.status == "ok")].astype({"dataset": str})
    both = raw[keys + ["auc_pr"]].merge(ref[keys + ["auc_pr"]], on=keys, suffixes=("_raw", "_minmax"))
    table = both.groupby("dataset")[["auc_pr_raw", "auc_pr_minmax"]].mean()
    table["diff"] = table["auc_pr_raw"] - table["auc_pr_minmax"]
    table["n_seeds"] = both.groupby("dataset").size()
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["pool"], help="specs; 'pool' and 'main' expand")
    ap.add_argument("--models", default="MNP")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--labeled-ratio", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--params", default="{}", help="per-model overrides as JSON")
    ap.add_argument("--affine", nargs=2, type=float, metavar=("A", "B"))
    ap.add_argument("--out")
    ap.add_argument("--report", help="print the raw vs min-max table of this output directory")
    ap.add_argument("--against", help="the min-max records (a bench output directory)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.report:
        table = report(args.report, args.against)
        print(table.round(3).to_string())
        print(f"max |diff| {table['diff'].abs().max():.3f}; sets within 0.02: "
              f"{int((table['diff'].abs() <= 0.02).sum())} of {len(table)}")
        return
    groups = {"pool": [f"{POOL_DIR}/{n}.npz" for n in POOL], "main": list(MAIN)}
    specs = [s for spec in args.data for s in groups.get(spec, [spec])]
    params = json.loads(args.params)
    affine = tuple(args.affine) if args.affine else None
    for spec in specs:
        ds = load_dataset(spec)
        data = None
        for model in args.models.split(","):
            for seed in range(42, 42 + args.runs):
                job = Job(ds.name, model, seed)
                path = job_path(args.out, job)
                if path.exists():
                    continue
                data = data or raw_data(ds, args.labeled_ratio, affine)
                record = run_job(job, data, device="cpu", params=params.get(model, {}), threads=args.threads)
                record.update(labeled_ratio=args.labeled_ratio, max_train=None, features="raw", affine=affine)
                _write_json(path, record)
                result = f"AUC-PR {record['auc_pr']:.3f}" if record["status"] == "ok" else record["error"]
                logging.info("%s %s %d: %s", ds.name, model, seed, result)


if __name__ == "__main__":
    main()
