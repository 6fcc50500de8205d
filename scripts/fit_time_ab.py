"""Fit time of ``deepod_mnp.MNP`` at two source trees, interleaved, one thread (an A/B of a code change).

Usage::

    git worktree add /tmp/mnp-before COMMIT          # or: git archive COMMIT | tar -x -C /tmp/mnp-before
    python scripts/fit_time_ab.py --baseline /tmp/mnp-before [--data pendigits bank backdoor]
                                  [--seeds 42 43 44] [--repeats 3]

For every data set (its protocol split), seed and repeat, the two trees fit
``MNP(device='cpu', random_state=seed)`` in turn, each in a fresh process with
one thread (the baseline first on odd repeats, second on even ones), so that
load from other work on the machine hits both alike. Prints, per data set,
the median fit time of each tree (seconds) and their ratio, and each tree's
mean test AUC-PR.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepod_mnp.benchmark.protocol import make_split
from deepod_mnp.data import load_dataset

HERE = Path(__file__).resolve().parents[1]
_CHILD = """
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import deepod_mnp
from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr
d = np.load(sys.argv[1])
start = time.perf_counter()
model = MNP(device="cpu", random_state=int(sys.argv[2])).fit(d["X_train"], d["y_train_semi"])
fit_time = time.perf_counter() - start
print(json.dumps({"fit_time": fit_time, "auc_pr": auc_pr(d["y_test"], model.decision_function(d["X_test"])),
                  "source": deepod_mnp.__file__}))
"""


def run(tree: Path, split: Path, seed: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(split), str(seed)], env=env, cwd=tree,
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["source"]).resolve().is_relative_to(tree.resolve()), out["source"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, type=Path, help="source tree of the code before")
    parser.add_argument("--data", nargs="+", default=["pendigits", "bank", "backdoor"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.baseline.resolve(), "after": HERE}
    print("| data set | fit s before | fit s after | after / before | AUC-PR before | AUC-PR after |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data:
            dataset = load_dataset(name)
            split = make_split(dataset.X, dataset.y, labeled_ratio=0.01)
            path = Path(tmp) / f"{name}.npz"
            np.savez(path, X_train=split.X_train, y_train_semi=split.y_train_semi, X_test=split.X_test,
                     y_test=split.y_test)
            times: dict[str, list[float]] = {k: [] for k in trees}
            aucs: dict[str, dict[int, float]] = {k: {} for k in trees}
            for repeat in range(args.repeats):
                for seed in args.seeds:
                    order = list(trees) if repeat % 2 == 0 else list(reversed(trees))
                    for key in order:
                        out = run(trees[key], path, seed)
                        times[key].append(out["fit_time"])
                        aucs[key][seed] = out["auc_pr"]
            b, a = np.median(times["before"]), np.median(times["after"])
            auc_b, auc_a = (np.mean(list(aucs[k].values())) for k in ("before", "after"))
            print(f"| {name} | {b:.2f} | {a:.2f} | {a / b:.2f} | {auc_b:.3f} | {auc_a:.3f} |", flush=True)


if __name__ == "__main__":
    main()
