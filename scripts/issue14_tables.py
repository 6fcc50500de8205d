"""Print the Markdown tables of BENCHMARKS.md's issue-14 sections from the committed results.

    python scripts/issue14_tables.py main      # the nine main sets, every peer
    python scripts/issue14_tables.py pool      # the 24 pool sets + the nine: per set and per group
    python scripts/issue14_tables.py dev FILE  # a select_defaults.py CSV: mean dev AUC-PR per candidate
    python scripts/issue14_tables.py fit       # MNP's fit time against DevNet's, per set
    python scripts/issue14_tables.py head      # the score head's options against the defaults, 33 sets
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from deepod_mnp.benchmark.pool import CHOOSING, CONFIRMING
from deepod_mnp.benchmark.report import (
    aggregate,
    group_summary_markdown,
    load_records,
    markdown_table,
    metric_table,
    results_frame,
    wilcoxon_markdown,
)

MAIN = ["pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
        "backdoor"]
POOL_MODELS = ["MNP", "DevNet", "RoSAS", "FeaWAD", "DeepSAD", "PReNet", "CatBoost", "LightGBM", "XGBoost",
               "XGBOD", "IForest"]


def frame(*dirs: str, models: list[str] | None = None, seeds: int | None = None) -> pd.DataFrame:
    records = [r for d in dirs for r in load_records(d)]
    df = results_frame(records)
    if models is not None:
        df = df[df["model"].isin(models)]
    if seeds is not None:
        df = df[df["seed"] < 42 + seeds]
    df = df.astype({"dataset": str, "model": str})
    order = [m for m in (models or POOL_MODELS) if m in set(df["model"])]
    df["model"] = pd.Categorical(df["model"], categories=order + sorted(set(df["model"]) - set(order)))
    df["dataset"] = pd.Categorical(df["dataset"], categories=list(dict.fromkeys(df["dataset"])))
    return df


def main_tables() -> None:
    df = frame("results/main")
    print(metric_table(df, "auc_pr"))
    print()
    print(wilcoxon_markdown(df, "MNP"))


def pool_tables() -> None:
    df = frame("results/pool", "results/main", models=POOL_MODELS, seeds=3)
    order = MAIN + list(CHOOSING) + list(CONFIRMING)
    present = set(df["dataset"].astype(str))
    df["dataset"] = pd.Categorical(df["dataset"].astype(str), categories=[d for d in order if d in present])
    print(metric_table(df, "auc_pr", with_std=False))
    print()
    groups = {"confirming half (12 sets)": CONFIRMING, "nine main sets (seeds 42-44)": MAIN,
              "choosing half (12 sets)": CHOOSING, "all 33 sets": MAIN + list(CHOOSING) + list(CONFIRMING)}
    print(group_summary_markdown(df, groups))
    print("Fit time (s, mean over seeds):")
    print()
    print(metric_table(df, "fit_time", digits=1, with_std=False, higher_is_better=False, average=False))


def dev_table(path: str) -> None:
    d = pd.read_csv(path)
    t = d.pivot_table(index="data", columns="candidate", values="dev_auc_pr")
    t = t.rename(columns=lambda c: c.replace('"', "").replace(", n_jobs: 1", ""))
    complete = t.dropna(axis=0)
    summary = pd.DataFrame({"mean (all sets it ran)": t.mean(), f"mean ({len(complete)} sets all ran)":
                            complete.mean(), "sets": t.notna().sum()})
    print(markdown_table(t.round(3).astype(object).where(t.notna(), "—"), "data set"))
    print()
    print(markdown_table(summary.round(3), "candidate"))


def fit_ratio() -> None:
    df = frame("results/pool", "results/main", models=["MNP", "DevNet"], seeds=3)
    fit = aggregate(df, "fit_time")["mean"].unstack("model")
    fit["MNP / DevNet"] = fit["MNP"] / fit["DevNet"]
    print(markdown_table(fit.round(2).astype(object).where(fit.notna(), "—"), "data set"))
    ratio = fit["MNP / DevNet"].dropna()
    print(f"\nMNP / DevNet fit time over {len(ratio)} sets: {ratio.min():.2f}-{ratio.max():.2f}, "
          f"median {np.median(ratio):.2f}")


HEAD_VARIANTS = {"results/mnp_head_auto": "MNP head_features=auto",
                 "results/mnp_log_auto": "MNP recon_norm=log + auto"}


def head_tables() -> None:
    """MNP's defaults against its two score-head options on the test splits (seeds 42-44).

    ``head_features='auto'`` is the defaults' model wherever fewer than 5 anomalies are labeled, so
    its records exist only where at least 5 are; elsewhere the defaults' records stand for it.
    """
    base = frame("results/pool", "results/main", models=["MNP"], seeds=3)
    base["model"] = base["model"].astype(str)
    parts = [base]
    for root, name in HEAD_VARIANTS.items():
        v = frame(f"{root}/pool", f"{root}/main", models=["MNP"], seeds=3)
        v["model"] = name
        if "head_features=auto" in name:
            have = set(zip(v["dataset"].astype(str), v["seed"]))
            new = np.array([(d, s) not in have for d, s in zip(base["dataset"].astype(str), base["seed"])])
            same = base[(base["n_labeled"] < 5).to_numpy() & new].copy()
            v = pd.concat([v, same.assign(model=name)])
        parts.append(v)
    df = pd.concat(parts, ignore_index=True).astype({"dataset": str})
    order = MAIN + list(CHOOSING) + list(CONFIRMING)
    df["dataset"] = pd.Categorical(df["dataset"], categories=[d for d in order if d in set(df["dataset"])])
    df["model"] = pd.Categorical(df["model"], categories=["MNP", *HEAD_VARIANTS.values()])
    print(metric_table(df, "auc_pr", with_std=False))
    print()
    groups = {"confirming half (12 sets)": CONFIRMING, "nine main sets (seeds 42-44)": MAIN,
              "choosing half (12 sets)": CHOOSING, "all 33 sets": order}
    print(group_summary_markdown(df, groups))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "main"
    {"main": main_tables, "pool": pool_tables, "fit": fit_ratio,
     "head": head_tables}.get(what, lambda: dev_table(sys.argv[2]))()
