"""Hold a benchmark run against the targets of ``PROTOCOL.md``.

Usage::

    python scripts/compare_paper.py runs/main      # a directory written by `deepod-mnp bench`

Prints Markdown: MNP against the paper's published AUC-PR (target: paper - 0.02
per data set, and the paper's average), against the floor (the best point of
the authors' code without validation labels, and every DeepOD peer's default),
and the average AUC-PR of every model over the data sets all of them completed.
"""
from __future__ import annotations

import sys

import pandas as pd

from deepod_mnp.benchmark.paper import NO_VALIDATION_BEST as NO_VAL_BEST
from deepod_mnp.benchmark.paper import TABLE2
from deepod_mnp.benchmark.report import aggregate, load_records, results_frame

PAPER_MNP = {name: row["MNP"] for name, row in TABLE2.items()}
DEEPOD_PEERS = ["DevNet", "RoSAS", "PReNet", "DeepSAD", "FeaWAD", "DeepIsolationForest", "DeepSVDD"]


def _fmt(x: float) -> str:
    return "—" if pd.isna(x) else f"{x:.3f}"


def main(out_dir: str) -> None:
    df = results_frame(load_records(out_dir))
    stats = aggregate(df, "auc_pr")
    mean = stats["mean"].unstack("model")
    runs = stats["n_ok"].unstack("model") if "n_ok" in stats else None
    mnp = mean["MNP"]

    print("## MNP against the paper (AUC-PR)\n")
    print("| data | MNP (ours) | paper | target (paper - 0.02) | met |")
    print("|---|---|---|---|---|")
    ours, paper = [], []
    for name, value in PAPER_MNP.items():
        got = mnp.get(name, float("nan"))
        met = "—" if pd.isna(got) else ("yes" if got >= value - 0.02 else "no")
        print(f"| {name} | {_fmt(got)} | {value:.3f} | {value - 0.02:.3f} | {met} |")
        if not pd.isna(got):
            ours.append(got)
            paper.append(value)
    if ours:
        a, b = sum(ours) / len(ours), sum(paper) / len(paper)
        print(f"| average of the {len(ours)} | {a:.3f} | {b:.3f} | {b:.3f} | {'yes' if a >= b else 'no'} |")

    print("\n## Floor: MNP against the no-validation curve and every DeepOD peer's default\n")
    print("| data | MNP | best no-validation point | best DeepOD peer | peer | met |")
    print("|---|---|---|---|---|---|")
    for name in mean.index:
        peers = mean.loc[name, [p for p in DEEPOD_PEERS if p in mean.columns]].dropna()
        best_peer = peers.max() if len(peers) else float("nan")
        floor = max(NO_VAL_BEST.get(name, float("-inf")), best_peer if len(peers) else float("-inf"))
        got = mnp.get(name, float("nan"))
        met = "—" if pd.isna(got) else ("yes" if got > floor else "no")
        print(f"| {name} | {_fmt(got)} | {_fmt(NO_VAL_BEST.get(name, float('nan')))} | {_fmt(best_peer)} "
              f"| {peers.idxmax() if len(peers) else '—'} | {met} |")

    print(f"\n## Average AUC-PR over the {len(mean)} data sets\n")
    print("A model that failed or was not run on a data set has no overall average; it is then "
          "compared with MNP on the data sets it completed.\n")
    print("| model | data sets completed | average over all | its average on those | MNP on those |")
    print("|---|---|---|---|---|")
    for model in mean.columns:
        done = mean[model].dropna().index
        overall = mean[model].mean() if len(done) == len(mean) else float("nan")
        print(f"| {model} | {len(done)}/{len(mean)} | {_fmt(overall)} | {_fmt(mean.loc[done, model].mean())} "
              f"| {_fmt(mnp.loc[done].mean())} |")
    if runs is not None:
        print(f"\nRuns per cell: {int(runs.min().min())} to {int(runs.max().max())}.")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/main")
