"""Compare selection rules on the raw material of ``scripts/selection_design.py`` (development splits).

For every data set and seed it reads the candidates' development scores and
cross-validation scores, computes what each rule would have chosen and the
development AUC-PR of that choice, and prints mean development AUC-PR per rule
(each data set weighs the same: seeds are averaged first), split by the number
of labeled anomalies (one, or two and more). ``--table FILE`` writes the
per-split table (one row per data set, seed and rule) for the record.

    python scripts/selection_rules.py OUT/r01 OUT/r05 --proxy OUT/r01p OUT/r05p \
        --table results/selection_design/rules.csv --summary results/selection_design/summary.md

(``OUT`` holds what ``scripts/selection_design.py`` wrote: ``--ratio 0.01`` into ``r01`` and
``--ratio 0.05`` into ``r05``, full fits; ``--folds-only`` with the fold stand-ins into ``r01p`` and
``r05p``.)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score


def auc_pr(y: np.ndarray, s: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(y, s)
    return float(auc(recall, precision))


def z(s: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = ref.std()
    return (s - ref.mean()) / (sd if sd > 0 else 1.0)


def load(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    d["header"] = json.loads(str(d["header"]))
    return d


def candidates_of(d: dict) -> list[str]:
    return [k[:-4] for k in d if k.endswith(":dev") and not k.startswith("MNP_nolabel")]


def fold_count(d: dict, cand: str) -> int:
    return sum(1 for k in d if k.startswith(f"{cand}:fold") and k.endswith(":held"))


#: With ``--proxy``: the folds are those of the cheaper stand-ins (``MNP~``: one member; ``CatBoost~``: 200
#: rounds), as the selector fits them; the development scores stay the full candidates'.
USE_PROXY = False


def fold_metric(d: dict, parts: list[str], metric: str) -> float:
    """Mean over folds of the metric of a candidate or a blend (parts) on the folds."""
    if USE_PROXY:
        parts = [f"{p}~" if f"{p}~:fold0:held" in d else p for p in parts]
    n = min(fold_count(d, p) for p in parts)
    if n == 0:
        return np.nan
    vals = []
    for g in range(n):
        held = [d[f"{p}:fold{g}:held"] for p in parts]
        ev = [d[f"{p}:fold{g}:eval"] for p in parts]
        fit = [d[f"{p}:fold{g}:fit"] for p in parts]
        if len(parts) > 1:  # standardise each member by its scores on its own fitting sample
            held = [z(h, f) for h, f in zip(held, fit)]
            ev = [z(e, f) for e, f in zip(ev, fit)]
            fit = [z(f, f) for f in fit]
        h, e, f = np.mean(held, 0), np.mean(ev, 0), np.mean(fit, 0)
        if metric.startswith("ins"):  # rank among the fold's own fitting rows (in-sample)
            e = f
        y = np.r_[np.zeros(len(e)), np.ones(len(h))]
        s = np.r_[e, h]
        vals.append(roc_auc_score(y, s) if metric.endswith("auc") else average_precision_score(y, s))
    return float(np.mean(vals))


def dev_score(d: dict, parts: list[str]) -> float:
    if len(parts) == 1:
        return auc_pr(d["yd"], d[f"{parts[0]}:dev"])
    s = np.mean([z(d[f"{p}:dev"], d[f"{p}:train"]) for p in parts], 0)
    return auc_pr(d["yd"], s)


#: Option sets the rules choose from (each option a candidate or a blend of candidates).
OPTION_SETS = {
    "A": ["MNP", "CatBoost", "MNP+CatBoost"],
    "B": ["MNP", "CatBoost", "IForest", "MNP+CatBoost"],
    "C": ["MNP", "CatBoost", "IForest", "MNP+CatBoost", "MNP+CatBoost+IForest"],
    "G": ["MNP", "CatBoost", "IForest", "MNP+CatBoost+IForest"],
    "H": ["MNP", "CatBoost", "IForest", "MNP+CatBoost", "MNP+IForest", "CatBoost+IForest",
          "MNP+CatBoost+IForest"],
    "L": ["MNP_log", "CatBoost", "IForest", "CatBoost+MNP_log", "CatBoost+MNP_log+IForest"],
    "M": ["MNP", "MNP_log", "CatBoost", "IForest", "CatBoost+MNP_log", "CatBoost+MNP_log+IForest",
          "MNP+CatBoost", "MNP+CatBoost+IForest"],
    "D": ["MNP", "CatBoost", "MNP+CatBoost", "MNP_log", "CatBoost+MNP_log", "MNP_k1", "CatBoost+MNP_k1"],
    "E": ["MNP", "CatBoost", "IForest", "LightGBM", "MNP+CatBoost", "MNP+LightGBM"],
    "F": ["MNP", "CatBoost", "IForest", "MNP+CatBoost", "MNP_log", "CatBoost+MNP_log", "MNP_k1",
          "CatBoost+MNP_k1", "MNP_head", "CatBoost+MNP_head"],
}
FIXED = ["MNP", "CatBoost", "IForest", "LightGBM", "MNP_k1", "MNP_log", "MNP_head", "MNP+CatBoost",
         "MNP+CatBoost+IForest", "CatBoost+MNP_log", "CatBoost+MNP_log+IForest", "CatBoost+MNP_k1",
         "MNP+IForest", "CatBoost+IForest",
         "MNP+LightGBM"]


def analyse(d: dict, margins=(0.0, 0.01, 0.02, 0.05)) -> dict[str, float]:
    """Development AUC-PR of fixed choices, the oracle and every rule on one split."""
    h = d["header"]
    have = {k[:-4] for k in d if k.endswith(":dev")}
    out: dict[str, float] = {}
    for opt in FIXED:
        if all(p in have for p in opt.split("+")):
            out[opt] = dev_score(d, opt.split("+"))
    out["oracle"] = max(out[c] for c in ("MNP", "CatBoost", "IForest") if c in out)
    if h["n_labeled"] >= 2:
        for metric in ("oos_auc", "ins_auc", "oos_ap"):
            for set_name, options in OPTION_SETS.items():
                options = [o for o in options if all(p in have for p in o.split("+"))]
                fm = {o: fold_metric(d, o.split("+"), metric) for o in options}
                for default in ("MNP+CatBoost", "MNP+CatBoost+IForest", "CatBoost+MNP_log",
                                "CatBoost+MNP_log+IForest"):
                    if default not in options:
                        continue
                    tag = {"MNP+CatBoost": "", "MNP+CatBoost+IForest": "/3", "CatBoost+MNP_log": "/l",
                           "CatBoost+MNP_log+IForest": "/l3"}[default]
                    for margin in margins:
                        best = max(options, key=lambda o: (fm[o], -options.index(o)))
                        choice = best if fm[best] > fm[default] + margin else default
                        out[f"cv{set_name}{tag}[{metric},{margin}]"] = dev_score(d, choice.split("+"))
    # IForest (no labels needed) can be ranked on every labeled anomaly, one label or more
    if "IForest" in have and fold_count(d, "IForest"):
        f_if = fold_metric(d, ["IForest"], "oos_auc")
        for tau in (0.8, 0.9, 0.95, 0.99):
            choice = "MNP+CatBoost+IForest" if f_if >= tau else "MNP+CatBoost"
            out[f"gateIF3[{tau}]"] = dev_score(d, choice.split("+"))
            choice = "CatBoost+MNP_log+IForest" if f_if >= tau else "CatBoost+MNP_log"
            out[f"gateIFl3[{tau}]"] = dev_score(d, choice.split("+"))
    # the rule SelectByLabels applies (models/select.py): below MIN_CV_LABELS the default blend, joined by
    # IForest when it ranks the labeled anomalies above the gate; from MIN_CV_LABELS on, option set L
    # cross-validated with the default kept unless beaten by more than the margin
    if h["n_labeled"] >= 5:
        out["SelectByLabels"] = out["cvL/l[oos_auc,0.01]"]
    elif "gateIFl3[0.9]" in out:
        out["SelectByLabels"] = out["gateIFl3[0.9]"]
    return out


#: The rows of the summary: single candidates, the blends, the rule SelectByLabels applies, the oracle.
SUMMARY_RULES = {
    "MNP": "MNP (paper defaults)", "MNP_log": "MNP, recon_norm='log'", "MNP_k1": "MNP, n_prototypes=1",
    "MNP_head": "MNP, head_features=True", "CatBoost": "CatBoost", "LightGBM": "LightGBM",
    "IForest": "IForest",
    "MNP+CatBoost": "blend MNP + CatBoost", "CatBoost+MNP_log": "blend CatBoost + MNP-log",
    "CatBoost+MNP_log+IForest": "blend CatBoost + MNP-log + IForest",
    "MNP+CatBoost+IForest": "blend MNP + CatBoost + IForest",
    "cvL/l[oos_auc,0.01]": "cross-validation, 2+ labels (default blend CatBoost + MNP-log, margin 0.01)",
    "gateIFl3[0.9]": "default blend, IForest joins when it ranks the labels >= 0.9",
    "SelectByLabels": "SelectByLabels' rule (gate below 5 labels, cross-validation from 5)",
    "oracle": "oracle: the best of MNP, CatBoost, IForest per split",
}


#: MNP fitted with no label (its score, its reconstruction error alone, its prototype dissimilarity alone)
#: against IForest, which needs none.
NO_LABEL = {"MNP_nolabel": "MNP's score", "MNP_nolabel_recon": "MNP's reconstruction error alone",
            "MNP_nolabel_sim": "MNP's prototype dissimilarity alone", "IForest": "IForest"}


def no_label_markdown(df: pd.DataFrame) -> str:
    """Development AUC-ROC and AUC-PR of MNP fitted without labels, against IForest (1 % splits)."""
    df = df[df["rule"].str.startswith("no label: ") & (df["ratio"] == 0.01)]
    per_set = df.groupby(["data", "rule"])[["dev_auc_roc", "dev_auc_pr"]].mean().groupby("rule").mean()
    n_sets = df["data"].nunique()
    lines = [f"| fitted without labels ({n_sets} sets) | AUC-ROC | AUC-PR |", "|---|---|---|"]
    for name, label in NO_LABEL.items():
        key = f"no label: {name}"
        if key in per_set.index:
            roc, pr = per_set.loc[key, "dev_auc_roc"], per_set.loc[key, "dev_auc_pr"]
            lines.append(f"| {label} | {roc:.3f} | {pr:.3f} |")
    return "\n".join(lines) + "\n"


def summary_markdown(df: pd.DataFrame) -> str:
    """Mean development AUC-PR of the summary's rules, per labeled ratio and by the number of labels."""
    df = df[df["rule"].isin(SUMMARY_RULES)].copy()
    df["labels"] = np.where(df.n_labeled >= 5, "5+", np.where(df.n_labeled >= 2, "2-4", "1"))
    per_set = df.groupby(["ratio", "labels", "data", "rule"]).dev_auc_pr.mean().reset_index()
    table = per_set.groupby(["rule", "ratio", "labels"]).dev_auc_pr.mean().unstack(["ratio", "labels"])
    sets = per_set.groupby(["ratio", "labels"]).data.nunique()
    everything = df.groupby(["data", "ratio", "rule"]).dev_auc_pr.mean().unstack("rule").mean()
    columns = sorted(table.columns)
    head = ["rule", *[f"{int(r * 100)} %, {lab} labels ({sets[(r, lab)]} sets)" for r, lab in columns],
            "all (mean over sets and ratios)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rule, label in SUMMARY_RULES.items():
        if rule not in table.index:
            continue
        cells = ["—" if pd.isna(table.loc[rule, c]) else f"{table.loc[rule, c]:.3f}" for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {everything.get(rule, np.nan):.3f} |")
    return ("Mean development AUC-PR (each data set weighs the same; seeds 42-44 averaged first). "
            "Development splits of the choosing half, the nine main sets and the four embedding sets; "
            "the test and validation splits are never used. Printed by scripts/selection_rules.py.\n\n"
            + "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--proxy", nargs="+", help="folders of --folds-only results (one per folder of DIRS, "
                    "in the same order) whose folds replace the full candidates' folds")
    ap.add_argument("--summary", help="write the main rules' table (Markdown) to this file")
    ap.add_argument("--top", type=int, default=40, help="rows of each summary")
    ap.add_argument("--table")
    args = ap.parse_args()
    global USE_PROXY
    USE_PROXY = bool(args.proxy)
    rows = []
    proxies = args.proxy or [None] * len(args.dirs)
    if len(proxies) != len(args.dirs):
        ap.error("--proxy needs one folder per folder of DIRS")
    for folder, proxy in zip(args.dirs, proxies):
        for path in sorted(Path(folder).glob("*.npz")):
            d = load(path)
            h = d["header"]
            if proxy and (Path(proxy) / path.name).exists():
                extra = load(Path(proxy) / path.name)
                d.update({k: v for k, v in extra.items() if "~" in k})
            res = analyse(d)
            for rule, v in res.items():
                rows.append({"data": h["data"], "seed": h["seed"], "ratio": h["ratio"],
                             "n_labeled": h["n_labeled"], "rule": rule, "dev_auc_pr": v})
            for name in NO_LABEL:  # MNP fitted without any label, and IForest, by AUC-ROC
                if f"{name}:dev" in d:
                    rows.append({"data": h["data"], "seed": h["seed"], "ratio": h["ratio"],
                                 "n_labeled": h["n_labeled"], "rule": f"no label: {name}",
                                 "dev_auc_pr": auc_pr(d["yd"], d[f"{name}:dev"]),
                                 "dev_auc_roc": roc_auc_score(d["yd"], d[f"{name}:dev"])})
    df = pd.DataFrame(rows)
    if args.table:  # the summary's rules, per data set, seed and ratio (the record behind summary.md)
        kept = df["rule"].isin(SUMMARY_RULES) | df["rule"].str.startswith("no label: ")
        df[kept].round(6).to_csv(args.table, index=False)
    if args.summary:
        Path(args.summary).write_text(summary_markdown(df[~df["rule"].str.startswith("no label: ")]) + "\n"
                                      + no_label_markdown(df))
    df = df[~df["rule"].str.startswith("no label: ")]
    df["labels"] = np.where(df.n_labeled >= 2, "2+", "1")
    per_set = df.groupby(["labels", "ratio", "data", "rule"]).dev_auc_pr.mean().reset_index()
    pd.set_option("display.width", 200)
    for (labels, ratio), g in per_set.groupby(["labels", "ratio"]):
        t = g.pivot(index="data", columns="rule", values="dev_auc_pr")
        print(f"\n== {labels} labels, ratio {ratio}: {len(t)} data sets")
        summary = pd.DataFrame({"mean": t.mean(), "wins_vs_MNP": (t.gt(t["MNP"], axis=0)).sum(),
                                "losses_vs_MNP": (t.lt(t["MNP"], axis=0)).sum()})
        if "CatBoost" in t:
            summary["wins_vs_CB"] = t.gt(t["CatBoost"], axis=0).sum()
            summary["losses_vs_CB"] = t.lt(t["CatBoost"], axis=0).sum()
        print(summary.sort_values("mean", ascending=False).head(args.top).round(3).to_string())


if __name__ == "__main__":
    main()
