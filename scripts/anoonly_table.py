"""Each AnoOnly detector beside its base method: the tables of BENCHMARKS.md's AnoOnly section.

Usage::

    python scripts/anoonly_table.py results/anoonly   # a directory written by `deepod-mnp bench`

Prints Markdown: per data set, the mean AUC-ROC and AUC-PR over seeds of each
base method (DeepOD's DevNet / DeepSAD), its control (``DevNetBN`` /
``DeepSADBN``: AnoOnly's network, batches and budget with the whole base loss)
and its AnoOnly variant, with the variant's changes against both; averages over
the tabular data sets and over the image/text embedding sets (the kind of data
the AnoOnly paper's claims are about); and paired Wilcoxon signed-rank tests.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import stats

from deepod_mnp.benchmark.report import aggregate, load_records, markdown_table, results_frame

# (base method, its control: AnoOnly's network and batches with the whole base loss, the AnoOnly variant)
TRIPLES = (("DevNet", "DevNetBN", "DevNetAnoOnly"), ("DeepSAD", "DeepSADBN", "DeepSADAnoOnly"))
# ADBench embedding sets (CV: CIFAR10, SVHN, MVTec-AD; NLP: 20news); every other data set is tabular.
EMBEDDINGS = ("20news_3", "CIFAR10_0", "MVTec-AD_hazelnut", "SVHN_0")
# The AnoOnly paper's averages over ADBench's CV and NLP sets (AUC-ROC, %), as that paper reports them.
PAPER_ROC = {"DeepSAD": (65.4, 85.0), "DevNet": (84.4, 85.2)}


def _p_value(base: pd.Series, variant: pd.Series) -> str:
    diff = (variant - base).dropna()
    if len(diff) < 2 or not np.any(diff != 0):
        return "n/a"
    return f"{stats.wilcoxon(diff).pvalue:.3f}"


def tables(out_dir: str) -> str:
    df = results_frame(load_records(out_dir))
    means = {m: aggregate(df, m)["mean"].unstack("model") for m in ("auc_roc", "auc_pr")}
    runs = aggregate(df, "auc_pr")["n_ok"].unstack("model")
    index = means["auc_pr"].index
    group = pd.Series(["embeddings" if d in EMBEDDINGS else "tabular" for d in index], index=index)
    parts = [f"Seeds per cell: {int(runs.min().min())} to {int(runs.max().max())}. Change: the AnoOnly "
             "variant minus the base method (DeepOD's own, library defaults) and minus the control (same "
             "network, batches and budget as AnoOnly, whole base loss).", ""]
    for base, control, variant in TRIPLES:
        for metric, name in (("auc_roc", "AUC-ROC"), ("auc_pr", "AUC-PR")):
            table = pd.DataFrame({m: means[metric][m] if m in means[metric] else np.nan
                                  for m in (base, control, variant)}, index=index)
            changes = [f"{variant} - {ref}" for ref in (base, control)]
            for ref, column in zip((base, control), changes):
                table[column] = table[variant] - table[ref]
            rows = {f"average, {g}": table[group == g].mean() for g in ("tabular", "embeddings")}
            full = pd.concat([table, pd.DataFrame(rows).T])
            shown = full.map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            for column in changes:
                shown[column] = full[column].map(lambda v: "—" if pd.isna(v) else f"{v:+.3f}")
            tests = []
            for ref in (base, control):
                for g in ("tabular", "embeddings"):
                    part = table[group == g]
                    tests.append(f"vs {ref}, {g}: p = {_p_value(part[ref], part[variant])} "
                                 f"(better on {int((part[variant] > part[ref]).sum())} of {len(part)})")
            parts += [f"### {variant}: {name}", "", markdown_table(shown, "data set"), "",
                      f"Paired two-sided Wilcoxon signed-rank tests of {variant} over per-data-set means: "
                      + "; ".join(tests) + ".", ""]
    paper = "; ".join(f"{b} {a:.1f} -> {v:.1f}" for b, (a, v) in PAPER_ROC.items())
    parts += [f"AnoOnly paper, ADBench CV+NLP averages (AUC-ROC, %): {paper}.", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(tables(sys.argv[1] if len(sys.argv) > 1 else "results/anoonly"))
