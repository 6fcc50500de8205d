"""Turn job records into tables, a significance test and a chart.

:func:`write_report` writes ``results.csv`` and ``results.json`` (one row per
job), ``summary.md`` (mean ± std over seeds per metric with the best detector
per data set in bold, fit and score times, paired Wilcoxon signed-rank tests of
MNP against each peer, failed runs, machine and library versions) and
``comparison.png`` (mean AUC-PR per data set and model).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from deepod_mnp.registry import DETECTORS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

METRIC_NAMES = {"auc_pr": "AUC-PR", "auc_roc": "AUC-ROC", "ap": "Average precision"}
_ENV_KEYS = ("host", "platform", "processor", "cpu_count", "python", "gpu")
_COLUMNS = ["dataset", "model", "seed", "status", "auc_pr", "ap", "auc_roc", "fit_time", "score_time",
            "n_train", "n_labeled", "n_test", "n_features", "n_prototypes", "chosen", "selection_rule",
            "labeled_ratio", "max_train",
            "device", "threads", "n_jobs", "backend", "error_type", "error", "params", "warnings", *_ENV_KEYS,
            "versions"]


def load_records(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every readable job record in ``out_dir/jobs/*.json``, in file-name order.

    An unreadable record (corrupt or truncated JSON) is left out with a warning
    that names it; ``deepod-mnp bench`` with the same arguments runs that job again.
    """
    records = []
    for path in sorted(Path(out_dir, "jobs").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("Unreadable job record %s (%s: %s); left out.", path, type(exc).__name__, exc)
            continue
        if not isinstance(record, dict):
            logger.warning("Unreadable job record %s (not a JSON object); left out.", path)
            continue
        records.append(record)
    return records


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    env = record.get("environment") or {}
    row = {k: v for k, v in record.items() if k not in ("environment", "traceback")}
    row.update({k: env.get(k) for k in _ENV_KEYS})
    row["versions"] = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
    row["params"] = json.dumps(record.get("params") or {}, sort_keys=True)
    row["warnings"] = " | ".join(record.get("warnings") or [])
    return row


def results_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A tidy DataFrame, one row per job; data sets keep their first-seen order, models the registry's."""
    df = pd.DataFrame([_flatten(r) for r in records])
    df = df.reindex(columns=_COLUMNS + [c for c in df.columns if c not in _COLUMNS])
    df["dataset"] = pd.Categorical(df["dataset"], categories=list(dict.fromkeys(df["dataset"].dropna())))
    seen = set(df["model"].dropna())
    order = [m for m in DETECTORS if m in seen] + sorted(seen - set(DETECTORS))
    df["model"] = pd.Categorical(df["model"], categories=order)
    for column in ("auc_pr", "ap", "auc_roc", "fit_time", "score_time"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    return df.sort_values(["dataset", "model", "seed"], kind="stable").reset_index(drop=True)


def aggregate(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and std (ddof=0) over the successful runs, with run counts, per data set and model."""
    ok = df["status"].eq("ok")
    grouped = df.assign(value=df[column].where(ok), ok=ok).groupby(["dataset", "model"], observed=True)
    return pd.DataFrame({"mean": grouped["value"].mean(), "std": grouped["value"].std(ddof=0),
                         "n_ok": grouped["ok"].sum(), "n_runs": grouped.size()})


def markdown_table(table: pd.DataFrame, index_name: str) -> str:
    """A DataFrame as a GitHub Markdown table, its index as the first column named ``index_name``."""
    header = [index_name, *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(idx), *map(str, row)]) + " |" for idx, row in table.iterrows()]
    return "\n".join(lines)


def format_std(std: float, n: int, digits: int = 3) -> str:
    """``± 0.012``, or ``± n/a`` when fewer than two runs give no spread to report."""
    return f"± {std:.{digits}f}" if n >= 2 and pd.notna(std) else "± n/a"


def _cell(stat: pd.Series, digits: int, with_std: bool) -> str:
    if stat["n_ok"] == 0:
        return "failed"
    text = f"{stat['mean']:.{digits}f}" + (f" {format_std(stat['std'], stat['n_ok'], digits)}"
                                             if with_std else "")
    return text if stat["n_ok"] == stat["n_runs"] else f"{text} ({int(stat['n_ok'])}/{int(stat['n_runs'])})"


def _bold_best(cells: pd.DataFrame, means: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    for idx in cells.index:
        row = means.loc[idx].dropna().round(3)
        if row.empty:
            continue
        best = row.max() if higher_is_better else row.min()
        for model in row.index[row == best]:
            cells.loc[idx, model] = f"**{cells.loc[idx, model]}**"
    return cells


def metric_table(df: pd.DataFrame, column: str = "auc_pr", *, digits: int = 3, with_std: bool = True,
                 higher_is_better: bool = True, average: bool = True) -> str:
    """Markdown table of ``column``: data sets as rows, models as columns, best in bold.

    Cells are ``mean ± std`` over the successful seeds (``± n/a`` with one), ``(k/n)`` when only k
    of n runs succeeded and ``failed`` when none did. The ``Average`` row is
    the mean over data sets of each model's means, marked † when the model has
    no result on some data set.
    """
    stats_ = aggregate(df, column)
    cells = stats_.apply(_cell, axis=1, digits=digits, with_std=with_std).unstack("model")
    means = stats_["mean"].unstack("model")
    cells = cells.reindex(index=df["dataset"].cat.categories, columns=df["model"].cat.categories)
    means = means.reindex_like(cells)
    cells = cells.fillna("—")
    if average:
        avg, complete = means.mean(), means.notna().all()
        cells.loc["Average"] = [f"{v:.{digits}f}" + ("" if c else " †") if pd.notna(v) else "—"
                                for v, c in zip(avg, complete)]
        means.loc["Average"] = avg.where(complete) if complete.any() else avg
    return markdown_table(_bold_best(cells, means, higher_is_better), "data set")


def wilcoxon_table(df: pd.DataFrame, reference: str = "MNP", column: str = "auc_pr") -> pd.DataFrame:
    """Paired two-sided Wilcoxon signed-rank test of ``reference`` against each other model.

    The pairs are the per-data-set means of ``column`` over the data sets where
    both models have a result. ``p_value`` is NaN ('n/a' in the summary) with
    fewer than two pairs or when every difference is zero.
    """
    means = aggregate(df, column)["mean"].unstack("model")
    rows = []
    if reference not in means.columns:
        return pd.DataFrame(columns=["peer", "n_datasets", "wins", "ties", "losses", "mean_diff", "p_value"])
    for peer in (m for m in means.columns if m != reference):
        pair = means[[reference, peer]].dropna()
        diff = (pair[reference] - pair[peer]).to_numpy()
        p_value = np.nan
        if len(diff) >= 2 and np.any(diff != 0):
            p_value = float(stats.wilcoxon(pair[reference], pair[peer]).pvalue)
        rows.append({"peer": peer, "n_datasets": len(diff), "wins": int((diff > 0).sum()),
                     "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                     "mean_diff": float(diff.mean()) if len(diff) else np.nan, "p_value": p_value})
    return pd.DataFrame(rows)


def wilcoxon_markdown(df: pd.DataFrame, reference: str) -> str:
    """:func:`wilcoxon_table` as Markdown, with a note on how to read it."""
    table = wilcoxon_table(df, reference)
    if table.empty:
        return f"n/a: no {reference} results to compare."
    table = table.assign(mean_diff=table["mean_diff"].map(lambda v: "n/a" if pd.isna(v) else f"{v:+.3f}"),
                         p_value=table["p_value"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.4f}"))
    note = (f"{reference}'s mean AUC-PR per data set paired with each peer's; two-sided; n/a with fewer "
            "than 2 paired data sets or no difference. With n data sets the smallest possible p is "
            "2 / 2^n (p < 0.05 needs at least 6).")
    return note + "\n\n" + markdown_table(table.set_index("peer"), "peer vs " + reference)


def _failures_markdown(df: pd.DataFrame) -> str:
    failed = df[df["status"] != "ok"]
    if failed.empty:
        return "None."
    rows = failed[["dataset", "model", "seed", "error_type", "error"]].assign(
        error=failed["error"].astype(str).str.replace(r"\s+", " ", regex=True).str.slice(0, 200)
        .str.replace("|", "\\|", regex=False))
    return markdown_table(rows.set_index("dataset"), "data set")


def _environment_markdown(df: pd.DataFrame) -> str:
    keys = [k for k in ("host", "processor", "cpu_count", "gpu", "python", "versions", "device",
                        "threads", "n_jobs", "backend") if k in df.columns]
    env = df[keys].dropna(axis=1, how="all").astype(object).fillna("—").astype(str).drop_duplicates()
    return markdown_table(env.set_index(env.columns[0]), env.columns[0])


def _settings_line(df: pd.DataFrame) -> str:
    seeds = sorted(df["seed"].unique().tolist())
    ratios = ", ".join(map(str, df["labeled_ratio"].dropna().unique().tolist()))
    max_train = df["max_train"].dropna().unique().tolist()
    sub = f"; train split subsampled to {max_train} rows (not the full protocol)" if max_train else ""
    return (f"{df['dataset'].nunique()} data set(s), {df['model'].nunique()} model(s), model seeds "
            f"{seeds}, labeled anomaly ratio {ratios}{sub}.")


def summary_markdown(df: pd.DataFrame, reference: str = "MNP") -> str:
    """The whole ``summary.md`` text."""
    parts = ["# Benchmark results", "", _settings_line(df),
             "Protocol: `PROTOCOL.md` (60/35/5 split per class with random_state=2024, min-max "
             "scaling fitted on train, first ceil(r·n) train anomalies labeled, no validation labels). "
             "Cells: mean ± std (ddof=0) over successful seeds (± n/a: one seed); best per data set in "
             "**bold**; (k/n): only k of n runs succeeded; † average over the data sets the model "
             "completed.", ""]
    for column in ("auc_pr", "auc_roc", "ap"):
        parts += [f"## {METRIC_NAMES[column]}", "", metric_table(df, column), ""]
    parts += ["## Fit time (s, mean over runs)", "",
              metric_table(df, "fit_time", digits=2, with_std=False, higher_is_better=False), "",
              "## Score time on the test split (s, mean over runs)", "",
              metric_table(df, "score_time", digits=3, with_std=False, higher_is_better=False), "",
              "Timings are comparable only within one run: they depend on the machine, `n_jobs` and "
              "the threads per job listed below.", "",
              f"## Wilcoxon signed-rank test ({reference} vs peers, AUC-PR)", "",
              wilcoxon_markdown(df, reference), "",
              "## Failed runs", "", _failures_markdown(df), "",
              "## Machine and library versions", "", _environment_markdown(df), ""]
    return "\n".join(parts)


def comparison_figure(df: pd.DataFrame, column: str = "auc_pr") -> Figure | None:
    """Grouped bar chart of mean ``column`` per data set and model, with std error bars.

    Uses matplotlib's Agg canvas directly (no pyplot state); None when no run succeeded.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stats_ = aggregate(df, column)
    means, stds = stats_["mean"].unstack("model"), stats_["std"].unstack("model")
    if means.isna().all().all():
        return None
    n_data, n_models = means.shape
    width = 0.8 / n_models
    fig = Figure(figsize=(max(6.0, 1.0 + n_data * (0.5 + 0.25 * n_models)), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(n_data)
    for i, model in enumerate(means.columns):
        ax.bar(x + (i - (n_models - 1) / 2) * width, means[model].fillna(0), width,
               yerr=stds[model].fillna(0), capsize=2, label=str(model))
    ax.set_xticks(x, [str(d) for d in means.index], rotation=30, ha="right")
    ax.set_ylabel(f"{METRIC_NAMES.get(column, column)} (mean ± std over seeds)")
    ax.set_xlabel("data set")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Test {METRIC_NAMES.get(column, column)} per data set and model")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_comparison(df: pd.DataFrame, path: str | os.PathLike, column: str = "auc_pr") -> Path | None:
    """Save :func:`comparison_figure` to ``path``; None (nothing written) when no run succeeded."""
    fig = comparison_figure(df, column)
    if fig is None:
        logger.warning("No successful run: %s not written.", path)
        return None
    fig.savefig(path, dpi=120)
    return Path(path)


def write_results(df: pd.DataFrame, out_dir: str | os.PathLike) -> Path:
    """Write the tidy ``results.csv`` and ``results.json`` (one row per job) into ``out_dir``; return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "results.csv", index=False)
    (out / "results.json").write_text(df.to_json(orient="records", indent=1), encoding="utf-8")
    return out


def write_report(df: pd.DataFrame, out_dir: str | os.PathLike, reference: str = "MNP") -> Path:
    """Write ``results.csv``, ``results.json``, ``summary.md`` and ``comparison.png``.

    Returns
    -------
    Path
        The path of ``summary.md``.
    """
    out = write_results(df, out_dir)
    summary = out / "summary.md"
    summary.write_text(summary_markdown(df, reference), encoding="utf-8")
    plot_comparison(df, out / "comparison.png")
    return summary


def group_summary(df: pd.DataFrame, groups: dict[str, Sequence[str]], reference: str = "MNP",
                  column: str = "auc_pr") -> pd.DataFrame:
    """Each model against ``reference`` over groups of data sets (e.g. the pool's two halves).

    For every group and model: the number of data sets with a result, the
    mean of the per-data-set means of ``column``, wins/ties/losses of
    ``reference`` against the model (on 3-decimal means) with the two-sided
    paired Wilcoxon p over the data sets both have, and the mean fit time.

    Returns
    -------
    pandas.DataFrame
        One row per (group, model), in the registry's model order.
    """
    stats_ = aggregate(df, column)
    means = stats_["mean"].where(stats_["n_ok"] > 0).unstack("model")
    fit = aggregate(df, "fit_time")["mean"].unstack("model")
    rows = []
    for group, names in groups.items():
        names = [n for n in names if n in means.index]
        for model in means.columns:
            col = means.loc[names, model].dropna()
            row = {"group": group, "model": model, "n_datasets": len(col),
                   "mean": float(col.mean()) if len(col) else np.nan,
                   "fit_s": float(fit.loc[col.index, model].mean()) if len(col) else np.nan,
                   "wins": np.nan, "ties": np.nan, "losses": np.nan, "p_value": np.nan}
            if model != reference and reference in means.columns:
                pair = means.loc[names, [reference, model]].dropna().round(3)
                diff = (pair[reference] - pair[model]).to_numpy()
                row.update(wins=int((diff > 0).sum()), ties=int((diff == 0).sum()),
                           losses=int((diff < 0).sum()))
                if len(diff) >= 2 and np.any(diff != 0):
                    row["p_value"] = float(stats.wilcoxon(pair[reference], pair[model]).pvalue)
            rows.append(row)
    return pd.DataFrame(rows)


def group_summary_markdown(df: pd.DataFrame, groups: dict[str, Sequence[str]], reference: str = "MNP",
                           column: str = "auc_pr") -> str:
    """:func:`group_summary` as one Markdown table per group (``wins-ties-losses`` of ``reference``)."""
    table = group_summary(df, groups, reference, column)
    parts = []
    for group, sub in table.groupby("group", sort=False):
        sub = sub[sub["n_datasets"] > 0]  # models not run on this group
        best = sub["mean"].max()
        cells = pd.DataFrame({
            "data sets": sub["n_datasets"].astype(int).to_numpy(),
            f"mean {METRIC_NAMES.get(column, column)}": [
                "—" if pd.isna(v) else ("**{:.3f}**" if round(v, 3) == round(best, 3) else "{:.3f}").format(v)
                for v in sub["mean"]],
            f"{reference} W-T-L": ["—" if pd.isna(w) else f"{int(w)}-{int(t)}-{int(lo)}"
                                   for w, t, lo in zip(sub["wins"], sub["ties"], sub["losses"])],
            "Wilcoxon p": ["—" if pd.isna(p) else f"{p:.3f}" for p in sub["p_value"]],
            "mean fit (s)": ["—" if pd.isna(v) else f"{v:.1f}" for v in sub["fit_s"]]},
            index=sub["model"].astype(str).to_numpy())
        parts += [f"**{group}**", "", markdown_table(cells, "model"), ""]
    return "\n".join(parts).rstrip() + "\n"
