"""Sampled fit from Parquet: AUC-PR of MNP fitted on the full train split vs on samples of it.

For each of the large pool data sets (donors, http, cover, skin, celeba), the
protocol's split (1 % of the train anomalies labeled) is made, its train split
(features and weak label) is written to a Parquet file, and MNP (defaults) is
fitted (a) on the whole train split in memory and (b) by
``deepod_mnp.serving.sampling.fit_parquet`` on all labeled anomalies plus a
uniform sample of ``n`` unlabeled rows read from that file (sample seed = model
seed). AUC-PR is measured on the test split; nothing uses validation or test
labels. One torch/BLAS thread. Each job's record goes to
``OUT/jobs/<dataset>__<variant>__<seed>.json`` (an existing record is kept:
the script resumes), and ``OUT/summary.md`` holds mean ± std over seeds.

Example::

    python scripts/sampled_fit.py --seeds 42 43 44 --sizes 10000 50000 --out results/serving/sampled_fit
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, make_split
from deepod_mnp.benchmark.runner import environment, limited_threads
from deepod_mnp.data import load_dataset
from deepod_mnp.serving.sampling import fit_parquet

DATASETS = {"donors": "adbench_pool/11_donors.npz", "http": "adbench_pool/16_http.npz",
            "cover": "adbench_pool/10_cover.npz", "skin": "adbench_pool/33_skin.npz",
            "celeba": "adbench_pool/8_celeba.npz"}


def _write_train(split, path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [f"f{i}" for i in range(split.X_train.shape[1])]
    table = pa.table({**{c: split.X_train[:, i] for i, c in enumerate(columns)},
                      "label": split.y_train_semi.astype(np.int8)})
    pq.write_table(table, path, row_group_size=65_536)
    return columns


def run(datasets: list[str], sizes: list[int], seeds: list[int], out: Path, data_root: str | None) -> None:
    jobs = out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    env = environment("cpu")
    with tempfile.TemporaryDirectory() as tmp, limited_threads(1):
        prepared = {}
        for name in datasets:
            dataset = load_dataset(DATASETS.get(name, name), data_root)
            split = make_split(dataset.X, dataset.y, labeled_ratio=0.01)
            parquet = Path(tmp) / f"{name}.parquet"
            prepared[name] = split, parquet, _write_train(split, parquet)
        for seed in seeds:  # every data set at one seed before the next seed
            for name, (split, parquet, columns) in prepared.items():
                n_unlabeled = int(np.sum(split.y_train_semi == 0))
                for variant in ["full", *map(str, sizes)]:
                    path = jobs / f"{name}__{variant}__{seed}.json"
                    if path.exists():
                        continue
                    start = time.perf_counter()
                    if variant == "full":
                        model = MNP(device="cpu", random_state=seed).fit(split.X_train, split.y_train_semi)
                    else:
                        model = fit_parquet(MNP(device="cpu", random_state=seed), parquet,
                                            label_column="label", n_unlabeled=int(variant),
                                            feature_columns=columns, random_state=seed)
                    fit_time = time.perf_counter() - start  # sampling (one pass over the file) included
                    score = auc_pr(split.y_test, model.decision_function(split.X_test))
                    record = {"dataset": name, "variant": variant, "seed": seed, "auc_pr": score,
                              "fit_time": fit_time, "n_fit_rows": len(model.decision_scores_),
                              "n_train": len(split.X_train), "n_unlabeled_train": n_unlabeled,
                              "n_labeled": int(split.y_train_semi.sum()), "n_test": len(split.y_test),
                              "n_features": split.X_train.shape[1], "threads": 1, "environment": env}
                    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
                    print(f"{name} {variant} seed {seed}: AUC-PR {score:.4f}, fit {fit_time:.1f} s",
                          flush=True)
    write_summary(out)


def write_summary(out: Path) -> str:
    records = [json.loads(p.read_text()) for p in sorted((out / "jobs").glob("*.json"))]
    df = pd.DataFrame(records)
    order = ["full", *sorted({v for v in df["variant"] if v != "full"}, key=int)]
    lines = ["# MNP fitted on the full train split vs on a sample (fit_parquet)", "",
             "AUC-PR on the test split, mean ± std (ddof=0) over model seeds "
             f"{sorted(df['seed'].unique().tolist())}; the sample is all labeled anomalies plus n unlabeled "
             "rows; fit time includes the pass over the Parquet file; one thread. "
             f"Machine: {records[0]['environment']['processor']}, {records[0]['environment']['cpu_count']} "
             f"cores. Command: `python scripts/sampled_fit.py` (see its docstring).", "",
             "| data set | train rows (unlabeled) | " + " | ".join(
                 f"AUC-PR {v if v == 'full' else 'n=' + format(int(v), ',')}" for v in order)
             + " | " + " | ".join(f"fit s {v}" for v in order) + " |",
             "|---|---|" + "---|" * (2 * len(order))]
    for name in dict.fromkeys(df["dataset"]):
        sub = df[df["dataset"] == name]
        cells = []
        for v in order:
            s = sub.loc[sub["variant"] == v, "auc_pr"]
            cells.append(f"{s.mean():.3f} ± {s.std(ddof=0):.3f} ({len(s)})" if len(s) else "—")
        for v in order:
            s = sub.loc[sub["variant"] == v, "fit_time"]
            cells.append(f"{s.mean():.1f}" if len(s) else "—")
        first = sub.iloc[0]
        lines.append(f"| {name} | {first['n_train']:,} ({first['n_unlabeled_train']:,}) | "
                     + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000])
    parser.add_argument("--seeds", type=int, nargs="*", default=[42, 43, 44])
    parser.add_argument("--out", default="results/serving/sampled_fit")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    if args.summary_only:
        write_summary(Path(args.out))
        return
    run(args.datasets, args.sizes, args.seeds, Path(args.out), args.data_root)


if __name__ == "__main__":
    main()
