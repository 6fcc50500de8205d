"""Parity of the pull request: DeepOD's MNP run through DeepOD main's own ``fit`` against ``deepod_mnp.MNP``.

Usage::

    python scripts/upstream_parity.py [--out results/upstream_parity] [--seeds 42 43 44 45 46]
                                      [--data pendigits thyroid ...] [--deepod-src SRC]

Builds the pull request (``python -m tools.upstream``'s code) against DeepOD
``main`` (default: the tarball in ``../shared/deepod-main``), applies both
patches to a copy of it, and on each data set's protocol split (PROTOCOL.md:
60/35/5 per class, min-max scaling fitted on train, 1 % of the train anomalies
labeled, seeds as given) fits

* DeepOD's ``MNP(device='cpu', verbose=0, random_state=seed)`` through DeepOD
  main's ``BaseDeepAD.fit`` and ``_training``, in a process that imports that
  tree with deepod-mnp and ray blocked, and
* ``deepod_mnp.MNP(device='cpu', random_state=seed)`` (its defaults),

one thread each, and scores the test split with both. Writes ``results.csv``
(one row per data set and seed: both AUC-PRs, the largest score difference,
whether the trained weights are identical, both fit times) and ``summary.md``
(the table BENCHMARKS.md and the pull request quote) into ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, make_split
from deepod_mnp.benchmark.runner import limited_threads
from deepod_mnp.data import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is the repository's, not installed
from tools.upstream.build import build_upstream, check_patches
from tools.upstream.manifest import PATCH_NAME, PIN_FIX_DIR, PIN_FIX_PATCH
from tools.upstream.runtests import run_isolated
from tools.upstream.source import default_source, open_source

MAIN_SETS = ("pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
             "backdoor")

# Runs in the patched DeepOD tree: DeepOD's MNP on every split and seed; its scores and weights' digests.
_CHILD = textwrap.dedent("""
    import hashlib, json, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from deepod.models.tabular import MNP
    import deepod
    out = {"deepod": deepod.__file__, "runs": []}
    for path in sys.argv[2:]:
        d = np.load(path)
        for seed in json.loads(sys.argv[1]):
            start = time.perf_counter()
            model = MNP(device="cpu", verbose=0, random_state=seed).fit(d["X_train"], d["y_train_semi"])
            fit_time = time.perf_counter() - start
            digest = hashlib.sha256()
            for name, value in model.net.state_dict().items():
                digest.update(name.encode()); digest.update(value.detach().cpu().numpy().tobytes())
            np.save(path[:-4] + f"_{seed}.npy", model.decision_function(d["X_test"]))
            out["runs"].append({"split": path, "seed": seed, "weights": digest.hexdigest(),
                                "fit_time": fit_time})
    print("@@" + json.dumps(out))
""")


def weights_digest(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in net.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def patched_deepod(src: Path, workdir: Path) -> Path:
    """DeepOD main with the pull request and the pin fix applied (a git repository in ``workdir``)."""
    build_upstream(workdir / "pr", src)
    root = open_source(src, workdir / "src")
    return check_patches(root, [workdir / "pr" / PIN_FIX_DIR / PIN_FIX_PATCH, workdir / "pr" / PATCH_NAME],
                         workdir)


def _signed(x: float) -> str:
    return f"{round(x, 4) + 0.0:+.4f}"  # + 0.0: no "-0.0000" for a difference below rounding


def summary_table(df: pd.DataFrame) -> str:
    lines = ["| data set | DeepOD main's `fit` | deepod-mnp | difference | largest score difference "
             "| identical weights | fit s (DeepOD / ours) |", "|---|---|---|---|---|---|---|"]
    means = []
    for name, g in df.groupby("dataset", sort=False):
        up, ours = g["auc_pr_deepod"], g["auc_pr_ours"]
        means.append((up.mean(), ours.mean()))
        lines.append(f"| {name} | {up.mean():.3f} ± {up.std(ddof=0):.3f} | {ours.mean():.3f} ± "
                     f"{ours.std(ddof=0):.3f} | {_signed(ours.mean() - up.mean())} | "
                     f"{g['max_score_diff'].max():.1e} | {int(g['same_weights'].sum())}/{len(g)} | "
                     f"{g['fit_time_deepod'].mean():.2f} / {g['fit_time_ours'].mean():.2f} |")
    up, ours = np.mean([m[0] for m in means]), np.mean([m[1] for m in means])
    lines.append(f"| average | {up:.3f} | {ours:.3f} | {_signed(ours - up)} | "
                 f"{df['max_score_diff'].max():.1e} | {int(df['same_weights'].sum())}/{len(df)} | "
                 f"{df['fit_time_deepod'].mean():.2f} / {df['fit_time_ours'].mean():.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/upstream_parity")
    parser.add_argument("--data", nargs="+", default=list(MAIN_SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44, 45, 46])
    parser.add_argument("--deepod-src", default=None)
    args = parser.parse_args()
    src = Path(args.deepod_src) if args.deepod_src else default_source()
    if src is None:
        raise SystemExit("no DeepOD main source: pass --deepod-src")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        tree = patched_deepod(src, tmp_path)
        splits = {}
        for name in args.data:
            dataset = load_dataset(name)
            split = make_split(dataset.X, dataset.y, labeled_ratio=0.01,
                               test_anomalies=dataset.test_anomalies)
            path = tmp_path / f"{name}.npz"
            np.savez(path, X_train=split.X_train, y_train_semi=split.y_train_semi, X_test=split.X_test)
            splits[name] = (split, str(path))
        proc = run_isolated(tree, _CHILD, json.dumps(args.seeds), *(p for _, p in splits.values()),
                            block_ray=True, timeout=3600)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
        if line is None:
            raise SystemExit(f"DeepOD's MNP did not run:\n{proc.stderr[-3000:]}")
        child = json.loads(line[2:])
        assert Path(child["deepod"]).resolve().is_relative_to(tree.resolve()), child["deepod"]
        theirs = {(r["split"], r["seed"]): r for r in child["runs"]}
        rows = []
        for name, (split, path) in splits.items():
            for seed in args.seeds:
                with limited_threads(1):
                    start = time.perf_counter()
                    ours = MNP(device="cpu", random_state=seed).fit(split.X_train, split.y_train_semi)
                    fit_time = time.perf_counter() - start
                    scores = ours.decision_function(split.X_test)
                up = theirs[path, seed]
                up_scores = np.load(path[:-4] + f"_{seed}.npy")
                rows.append({"dataset": name, "seed": seed, "auc_pr_deepod": auc_pr(split.y_test, up_scores),
                             "auc_pr_ours": auc_pr(split.y_test, scores),
                             "max_score_diff": float(np.abs(up_scores - scores).max()),
                             "same_weights": up["weights"] == weights_digest(ours.net),
                             "fit_time_deepod": up["fit_time"], "fit_time_ours": fit_time})
                print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False)
    versions = (f"Python {platform.python_version()}, torch {torch.__version__}, NumPy {np.__version__}, "
                f"scikit-learn {version('scikit-learn')}, deepod-mnp {version('deepod-mnp')}")
    consecutive = args.seeds == list(range(args.seeds[0], args.seeds[-1] + 1))
    seeds = f"{args.seeds[0]}-{args.seeds[-1]}" if consecutive else ", ".join(map(str, args.seeds))
    (out / "summary.md").write_text(
        "# Parity: DeepOD's MNP through DeepOD main's `fit` against deepod-mnp's MNP\n\n"
        f"Test AUC-PR, mean ± std over seeds {seeds} (ddof=0); defaults of both, one thread, "
        f"{platform.machine()} CPU with {os.cpu_count()} cores; {versions}. Produced by "
        "`python scripts/upstream_parity.py`; fit times include scoring the training data.\n\n"
        + summary_table(df) + "\n")
    print(summary_table(df))


if __name__ == "__main__":
    main()
