"""Print the tables of BENCHMARKS.md and README.md, and draw their figure, from the committed results.

    python scripts/benchmark_tables.py headline  # README's table: SelectByLabels against every model
    python scripts/benchmark_tables.py select    # SelectByLabels on each half, the 9 and the 33; its fit time
    python scripts/benchmark_tables.py main      # the nine main sets (5 seeds): AUC-PR, AUC-ROC, W-T-L
    python scripts/benchmark_tables.py paper     # MNP's AUC-PR against the paper's on the sets the paper has
    python scripts/benchmark_tables.py pool      # all 33 sets (3 seeds): per set, per group, fit times
    python scripts/benchmark_tables.py fit       # MNP's fit time against DevNet's, per set
    python scripts/benchmark_tables.py speed     # fit against DevNet, scoring rows/s, fit time against N
    python scripts/benchmark_tables.py head      # the two score-head options against the defaults, 33 sets
    python scripts/benchmark_tables.py dev FILE  # a select_defaults.py CSV: development AUC-PR per candidate
    python scripts/benchmark_tables.py all       # all of the above, each under a '## name' line
    python scripts/benchmark_tables.py figure [PATH]   # the W-T-L figure (default FIGURE below)
    python scripts/benchmark_tables.py sets [PATH]     # per-set AUC-PR, selector and peers (SETS_FIGURE)

Everything is read from ``results/`` (run from the repository root); nothing is fitted.
``tests/test_docs.py`` checks that every numeric table of BENCHMARKS.md is printed here or
stored in a committed ``results/**/*.md`` file, and that README's table is ``headline``'s.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from deepod_mnp.benchmark.paper import TABLE2
from deepod_mnp.benchmark.pool import CHOOSING, CONFIRMING
from deepod_mnp.benchmark.report import (
    aggregate,
    group_summary,
    group_summary_markdown,
    load_records,
    markdown_table,
    metric_table,
    results_frame,
)

MAIN = ["pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
        "backdoor"]
ALL_33 = MAIN + list(CHOOSING) + list(CONFIRMING)
POOL_MODELS = ["SelectByLabels", "MNP", "DevNet", "RoSAS", "FeaWAD", "DeepSAD", "PReNet", "CatBoost",
               "LightGBM", "XGBoost", "XGBOD", "IForest"]
MAIN_MODELS = ["SelectByLabels", "MNP", "DevNet", "RoSAS", "PReNet", "DeepSAD", "FeaWAD",
               "DeepIsolationForest", "DeepSVDD", "IForest", "CatBoost", "LightGBM", "XGBoost", "XGBOD"]
GROUPS = {"confirming half (12 sets)": list(CONFIRMING), "nine main sets (seeds 42-44)": MAIN,
          "choosing half (12 sets)": list(CHOOSING), "all 33 sets": ALL_33}
DEV_FILES = ["results/defaults/scaler_dev.csv", "results/defaults/mnp_options_dev.csv",
             "results/defaults/score_head_dev.csv"]
FIGURE = "results/headline/selector_vs_peers.png"
SETS_FIGURE = "results/headline/per_set.png"
#: The detector the headline compares with every other: the one we recommend (BENCHMARKS, "Choosing").
REFERENCE = "SelectByLabels"
#: The selector's peers in its own tables: its candidates, and DeepOD's DevNet.
SELECT_PEERS = ["SelectByLabels", "MNP", "CatBoost", "IForest", "DevNet", "LightGBM"]
SELECT_FIT = "results/select_fit_time"


@functools.cache
def _records(directory: str) -> tuple:
    return tuple(load_records(directory))


def frame(*dirs: str, models: list[str] | None = None, seeds: int | None = None,
          datasets: list[str] | None = None) -> pd.DataFrame:
    """The job records of ``dirs`` as one tidy frame, models and data sets as ordered categories."""
    df = results_frame([r for d in dirs for r in _records(d)])
    if models is not None:
        df = df[df["model"].isin(models)]
    if seeds is not None:
        df = df[df["seed"] < 42 + seeds]
    df = df.astype({"dataset": str, "model": str})
    order = [m for m in (models or POOL_MODELS) if m in set(df["model"])]
    df["model"] = pd.Categorical(df["model"], categories=order + sorted(set(df["model"]) - set(order)))
    names = [d for d in (datasets or list(dict.fromkeys(df["dataset"]))) if d in set(df["dataset"])]
    df["dataset"] = pd.Categorical(df["dataset"], categories=names)
    return df


def main_frame() -> pd.DataFrame:
    """The nine main sets, five seeds, every model (``results/main``)."""
    return frame("results/main", models=MAIN_MODELS, datasets=MAIN)


def pool_frame() -> pd.DataFrame:
    """All 33 sets, seeds 42-44 (``results/pool`` and the main sets' records)."""
    return frame("results/pool", "results/main", models=POOL_MODELS, seeds=3, datasets=ALL_33)


def _mean_cell(mean: float, n: float, total: int) -> str:
    if np.isnan(mean):
        return "not run"
    return f"{mean:.3f}" if n == total else f"{mean:.3f} ({int(n)}/{total})"


def _wtl(row: pd.Series) -> tuple[str, str]:
    if pd.isna(row["wins"]):
        return "—", "—"
    p = "—" if pd.isna(row["p_value"]) else f"{row['p_value']:.3f}"
    return f"{int(row['wins'])}-{int(row['ties'])}-{int(row['losses'])}", p


def headline_summary() -> pd.DataFrame:
    """Per model: sets, mean AUC-PR, :data:`REFERENCE`'s W-T-L and Wilcoxon p on the nine (5 seeds) and all
    33 (3 seeds)."""
    main = group_summary(main_frame(), {"main": MAIN}, reference=REFERENCE).set_index("model")
    pool = group_summary(pool_frame(), {"all": ALL_33}, reference=REFERENCE).set_index("model")
    table = main.add_suffix("_main").join(pool.add_suffix("_all"), how="outer")
    table.index = table.index.astype(str)
    # the strongest peer first: the smallest share of sets on which the reference is higher (33, then 9)
    share = {key: table[f"wins_{key}"] / table[[f"{c}_{key}" for c in ("wins", "ties", "losses")]].sum(axis=1)
             for key in ("all", "main")}
    peers = table.assign(share_all=share["all"], share_main=share["main"]).drop(index=REFERENCE)
    peers = peers.sort_values(["share_all", "share_main"], na_position="last").drop(columns=["share_all",
                                                                                             "share_main"])
    return pd.concat([table.loc[[REFERENCE]], peers])


def headline() -> None:
    table = headline_summary()
    cells = {}
    for model, row in table.iterrows():
        wtl_main, p_main = _wtl(row.rename(lambda c: c.removesuffix("_main")))
        wtl_all, p_all = _wtl(row.rename(lambda c: c.removesuffix("_all")))
        cells[model] = {
            "nine main sets: mean AUC-PR": _mean_cell(row["mean_main"], row["n_datasets_main"], len(MAIN)),
            "W-T-L (9)": wtl_main, "p (9)": p_main,
            "all 33 sets: mean AUC-PR": _mean_cell(row["mean_all"], row["n_datasets_all"], len(ALL_33)),
            "W-T-L (33)": wtl_all, "p (33)": p_all}
    print(markdown_table(pd.DataFrame(cells).T, "model"))


def main_tables() -> None:
    df = main_frame()
    print(metric_table(df, "auc_pr"))
    print()
    print(metric_table(df, "auc_roc"))
    print()
    print(group_summary_markdown(df, {"nine main sets (5 seeds)": MAIN}))


def paper_table() -> None:
    """MNP's mean AUC-PR on the main sets against the paper's Table 2 (target: paper - 0.02)."""
    mnp = aggregate(main_frame(), "auc_pr")["mean"].unstack("model")["MNP"]
    rows = {}
    for name, published in TABLE2.items():
        got = mnp.get(name, np.nan)
        rows[name] = {"MNP (ours)": f"{got:.3f}", "paper": f"{published['MNP']:.3f}",
                      "ours - paper": f"{got - published['MNP']:+.3f}",
                      "within 0.02": "yes" if got >= published["MNP"] - 0.02 else "no"}
    print(markdown_table(pd.DataFrame(rows).T, "data set"))


def pool_tables() -> None:
    df = pool_frame()
    print(metric_table(df, "auc_pr", with_std=False))
    print()
    print(group_summary_markdown(df, GROUPS))
    print(metric_table(df, "fit_time", digits=1, with_std=False, higher_is_better=False, average=False))


def fit_ratio() -> None:
    df = frame("results/pool", "results/main", models=["MNP", "DevNet"], seeds=3, datasets=ALL_33)
    fit = aggregate(df, "fit_time")["mean"].unstack("model")
    fit["MNP / DevNet"] = fit["MNP"] / fit["DevNet"]
    print(markdown_table(fit.round(2).astype(object).where(fit.notna(), "—"), "data set"))
    ratio = fit["MNP / DevNet"].dropna()
    print(f"\nMNP / DevNet fit time over {len(ratio)} sets: {ratio.min():.2f}-{ratio.max():.2f}, "
          f"median {np.median(ratio):.2f}")


def dev_table(path: str) -> None:
    d = pd.read_csv(path)
    t = d.pivot_table(index="data", columns="candidate", values="dev_auc_pr")
    t = t.rename(columns=lambda c: c.replace('"', "").replace(", n_jobs: 1", ""))
    complete = t.dropna(axis=0)
    summary = pd.DataFrame({"mean (all sets it ran)": t.mean().map("{:.3f}".format),
                            f"mean ({len(complete)} sets all ran)": complete.mean().map("{:.3f}".format),
                            "sets": t.notna().sum()})
    print(markdown_table(t.round(3).astype(object).where(t.notna(), "—"), "data set"))
    print()
    print(markdown_table(summary, "candidate"))


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
    df["dataset"] = pd.Categorical(df["dataset"], categories=[d for d in ALL_33 if d in set(df["dataset"])])
    df["model"] = pd.Categorical(df["model"], categories=["MNP", *HEAD_VARIANTS.values()])
    print(metric_table(df, "auc_pr", with_std=False))
    print()
    print(group_summary_markdown(df, GROUPS))


def _int(v: float) -> str:
    return f"{v:,.0f}"


def speed_tables() -> None:
    """Fit against DevNet (a), scoring rows/s per path (b) and fit against N (c), from results/speed/."""
    fit_scale = json.loads(Path("results/speed/fit_scale.json").read_text(encoding="utf-8"))
    fit = pd.DataFrame(fit_scale["fit"]).set_index(["dataset", "variant"])
    rows = {}
    for data in dict.fromkeys(fit.index.get_level_values("dataset")):
        mnp, devnet = fit.loc[(data, "MNP")], fit.loc[(data, "DevNet")]
        rows[data] = {"n_train": _int(mnp["n_train"]), "MNP fit (s)": f"{mnp['fit_time']:.2f}",
                      "DevNet fit (s)": f"{devnet['fit_time']:.1f}",
                      "MNP / DevNet": f"{mnp['fit_time'] / devnet['fit_time']:.2f}",
                      "MNP AUC-PR": f"{mnp['auc_pr']:.3f}", "DevNet AUC-PR": f"{devnet['auc_pr']:.3f}"}
    order = sorted(rows, key=lambda d: fit.loc[(d, "MNP"), "n_train"])
    print(markdown_table(pd.DataFrame(rows).T.loc[order], "data set"))
    print()
    scoring = json.loads(Path("results/speed/scoring_paths.json").read_text(encoding="utf-8"))
    paths = pd.DataFrame(scoring["paths"])
    table = paths.pivot(index="n_features", columns="path", values="rows_per_s")
    names = {"decision_function (fused hot path)": "decision_function",
             "fused torch, workers": "fused_scores(workers=2)",
             "ONNX Runtime, workers": "ONNX Runtime, 2 workers",
             "ONNX Runtime, intra-op threads": "ONNX Runtime, 2 intra-op threads",
             "decision_function, unfused (before)": "members one by one (unfused)"}
    table = table[list(names)].rename(columns=names).map(_int)
    print(markdown_table(table, "D"))
    print()
    scale = pd.DataFrame(fit_scale["scale"]).set_index("n_rows")
    scale = pd.DataFrame({"fit (s)": scale["fit_time"].map("{:.1f}".format),
                          "data (MB)": scale["data_mb"].map("{:.0f}".format),
                          "peak RSS (MB)": scale["peak_rss_mb"].map(_int)})
    scale.index = scale.index.map(_int)
    print(markdown_table(scale, "N (D = 100)"))


# --- the figure: MNP's wins, ties and losses against each peer, nine main sets and all 33
COLOURS = {f"{REFERENCE} higher": "#2a7f62", "equal (3 decimals)": "#b8b8b8", f"{REFERENCE} lower": "#c8553d"}


def figure(path: str = FIGURE) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = headline_summary().drop(index=REFERENCE)
    fig = Figure(figsize=(9.0, 0.36 * len(table) + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True, width_ratios=[1.0, 1.7])
    y = np.arange(len(table))[::-1]
    panels = (("main", "nine main sets (5 seeds)", len(MAIN)), ("all", "all 33 sets (3 seeds)", len(ALL_33)))
    for ax, (key, title, total) in zip(axes, panels):
        left = np.zeros(len(table))
        for (label, colour), column in zip(COLOURS.items(), ("wins", "ties", "losses")):
            counts = table[f"{column}_{key}"].fillna(0).to_numpy()
            ax.barh(y, counts, left=left, color=colour, height=0.72, label=label)
            for yi, x0, c in zip(y, left, counts):
                if c >= 1:
                    ax.text(x0 + c / 2, yi, f"{int(c)}", ha="center", va="center", fontsize=7.5,
                            color="black" if column == "ties" else "white")
            left += counts
        for yi, (_, row) in zip(y, table.iterrows()):
            p = row[f"p_value_{key}"]
            if pd.isna(row[f"wins_{key}"]):
                ax.text(0.2, yi, "not run", va="center", fontsize=7.5, color="#555555")
            else:
                ax.text(left.max() + total * 0.03, yi, "p n/a" if pd.isna(p) else f"p {p:.3f}", va="center",
                        fontsize=7.5, color="#333333")
        ax.set_xlim(0, total * 1.3)
        ax.set_xticks(np.arange(0, total + 1, 3 if total < 12 else 5))
        ax.set_xlabel("data sets")
        ax.set_title(title, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", length=0)
    axes[0].set_yticks(y, list(table.index))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False,
               fontsize=9)
    fig.suptitle(f"{REFERENCE} against each peer: on how many data sets its mean test AUC-PR is higher, "
                 "equal or lower\n(paired Wilcoxon p over those data sets on the right)", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def select_tables() -> None:
    """SelectByLabels against its candidates and DevNet on each half, the nine main sets and all 33."""
    pool = frame("results/pool", "results/main", models=SELECT_PEERS, seeds=3, datasets=ALL_33)
    print(group_summary_markdown(pool, GROUPS, reference=REFERENCE))
    print(group_summary_markdown(frame("results/main", models=SELECT_PEERS, datasets=MAIN),
                                 {"nine main sets (5 seeds)": MAIN}, reference=REFERENCE))
    chosen = results_frame([r for d in ("results/pool", "results/main") for r in _records(d)])
    chosen = chosen[(chosen["model"] == REFERENCE) & (chosen["seed"] < 45)]
    counts = chosen.groupby(["selection_rule", "chosen"]).size().rename("fits (33 sets x 3 seeds)")
    counts.index = [f"{rule}: {choice}" for rule, choice in counts.index]
    print(markdown_table(counts.to_frame(), "rule: choice"))
    print()
    select_fit_time()


def select_fit_time() -> None:
    """The selector's fit time against its slowest candidate's, all fitted in one run (seed 42)."""
    df = frame(SELECT_FIT, models=[REFERENCE, "CatBoost", "MNP", "IForest"], datasets=ALL_33)
    fit = aggregate(df, "fit_time")["mean"].unstack("model").rename(columns={"MNP": "MNP-log"})
    fit["slowest candidate"] = fit[["CatBoost", "MNP-log", "IForest"]].max(axis=1)
    fit["selector / slowest"] = fit[REFERENCE] / fit["slowest candidate"]
    print(markdown_table(fit.round(2).astype(object).where(fit.notna(), "—"), "data set"))
    ratio = fit["selector / slowest"].dropna()
    print(f"\nSelectByLabels / its slowest candidate over {len(ratio)} sets: {ratio.min():.2f}-"
          f"{ratio.max():.2f}, median {np.median(ratio):.2f}; above 3 on {int((ratio > 3).sum())}")
    # scoring speed where the test split is large enough to time (30,000 rows or more)
    score = aggregate(df, "score_time")["mean"].unstack("model").rename(columns={"MNP": "MNP-log"})
    n_test = df.groupby("dataset", observed=True)["n_test"].first()
    big = n_test[n_test >= 30_000].index
    rate = ((n_test[big].to_numpy()[:, None] / score.loc[big]) / 1e3).map(lambda v: f"{v:,.0f}")
    chosen = results_frame(list(_records(SELECT_FIT)))
    chosen = chosen[chosen["model"] == REFERENCE].set_index("dataset")["chosen"]
    rate.insert(0, "chosen", [chosen.get(d, "") for d in rate.index])
    rate.insert(1, "test rows", [f"{int(n):,}" for n in n_test[big]])
    print("\nScoring speed, thousand rows per second (one thread):\n")
    print(markdown_table(rate, "data set"))


def sets_figure(path: str = SETS_FIGURE) -> Path:
    """Per data set (all 33, 3 seeds), each detector's mean test AUC-PR, sorted by the selector's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = [REFERENCE, "MNP", "CatBoost", "IForest", "DevNet"]
    means = aggregate(frame("results/pool", "results/main", models=models, seeds=3, datasets=ALL_33),
                      "auc_pr")["mean"].unstack("model")
    means = means.sort_values(REFERENCE)
    fig = Figure(figsize=(8.0, 0.24 * len(means) + 1.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = np.arange(len(means))
    styles = {REFERENCE: ("#1b7837", "o", 7), "MNP": ("#2166ac", "s", 5), "CatBoost": ("#b2182b", "D", 5),
              "IForest": ("#999999", "^", 5), "DevNet": ("#e08214", "v", 5)}
    for model in models:
        colour, marker, size = styles[model]
        ax.plot(means[model], y, linestyle="none", marker=marker, markersize=size, color=colour,
                label=f"{model} (mean {means[model].mean():.3f})", alpha=0.9 if model == REFERENCE else 0.7)
    ax.hlines(y, means.min(axis=1), means.max(axis=1), color="#dddddd", linewidth=1, zorder=0)
    ax.set_yticks(y, [f"{name} *" if name in CONFIRMING else name for name in means.index], fontsize=7.5)
    ax.set_xlabel("mean test AUC-PR (3 seeds; 1 % of the anomalies labeled)")
    ax.set_xlim(0, 1.02)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("All 33 data sets, sorted by SelectByLabels (* the confirming half)", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def all_tables() -> None:
    sections = [("headline", headline), ("select", select_tables), ("main", main_tables),
                ("paper", paper_table), ("pool", pool_tables), ("fit", fit_ratio), ("speed", speed_tables),
                ("head", head_tables)]
    sections += [(f"dev {path}", functools.partial(dev_table, path)) for path in DEV_FILES]
    for name, func in sections:
        print(f"## {name}\n")
        func()
        print()


COMMANDS = {"headline": headline, "select": select_tables, "main": main_tables, "paper": paper_table,
            "pool": pool_tables, "fit": fit_ratio, "speed": speed_tables, "head": head_tables,
            "all": all_tables}

if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "dev":
        dev_table(sys.argv[2])
    elif what == "figure":
        print(figure(*sys.argv[2:3]))
    elif what == "sets":
        print(sets_figure(*sys.argv[2:3]))
    elif what in COMMANDS:
        COMMANDS[what]()
    else:
        sys.exit(f"unknown table {what!r}; choose one of {sorted([*COMMANDS, 'dev', 'figure'])}")
