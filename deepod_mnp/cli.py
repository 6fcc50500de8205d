"""Command line of deepod-mnp: ``bench``, ``experiment``, ``report`` and ``demo``.

Only this module prints; the library reports through :mod:`logging`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from deepod_mnp.benchmark.experiments import EXPERIMENTS, run_experiment
from deepod_mnp.benchmark.report import aggregate, load_records, metric_table, results_frame, write_report
from deepod_mnp.benchmark.runner import BACKENDS, BenchmarkConfig, run_benchmark
from deepod_mnp.data import SHORTCUTS, Dataset, describe, load_dataset, load_unseen_pairs
from deepod_mnp.registry import DETECTORS

# The MNP paper's Table 2 (1% labeled, mean of 5 runs; model selection on labeled validation data).
PAPER_PENDIGITS = {"MNP": {"auc_pr": 0.856, "auc_roc": 0.986}, "DevNet": {"auc_pr": 0.766}}


def _parse_params(text: str | None) -> dict[str, dict[str, Any]]:
    """``--params``: a JSON object ``{"MODEL": {"param": value}}``, inline or in a file."""
    if not text:
        return {}
    source = Path(text).read_text(encoding="utf-8") if Path(text).is_file() else text
    try:
        params = json.loads(source)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise argparse.ArgumentTypeError(
            '--params must map model names to objects, e.g. {"MNP": {"epochs": 5}}.')
    return params


def _parse_models(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    return list(DETECTORS) if [n.lower() for n in names] == ["all"] else names


def _dataset_line(dataset: Dataset) -> str:
    n, d = dataset.X.shape
    return (f"{dataset.name}: {n:,} rows x {d} features, {dataset.y.mean():.1%} anomalies "
            f"({describe(dataset.info)})")


DATA_HELP = ("a .npz path, 'path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V][,onehot=C]', "
             f"or a shortcut ({', '.join(SHORTCUTS)})")


def _parse_floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``bench`` and ``experiment``: where results go and how jobs run."""
    parser.add_argument("--out", required=True, help="output directory (job records go under OUT)")
    parser.add_argument("--data-root", default=None,
                        help="where shortcuts and relative paths are looked up "
                             "(default: $DEEPOD_MNP_DATA or ../shared/data)")
    parser.add_argument("--n-jobs", type=int, default=1, help="jobs at once (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/BLAS threads per job (default: $OMP_NUM_THREADS, else 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="loky",
                        help="joblib backend for --n-jobs > 1; 'ray' runs on a Ray cluster")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default auto)")
    parser.add_argument("--params", type=_parse_params, default={},
                        help='per-model overrides as JSON or a JSON file, e.g. \'{"MNP": {"epochs": 5}}\'')
    parser.add_argument("--max-train", type=int, default=None,
                        help="subsample the train split to N rows (quick runs only; off by default)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun jobs recorded as failed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config(args: argparse.Namespace, models: Sequence[str], labeled_ratio: float = 0.01) -> BenchmarkConfig:
    return BenchmarkConfig(models=models, runs=args.runs, labeled_ratio=labeled_ratio, device=args.device,
                           model_params=args.params, max_train=args.max_train, n_jobs=args.n_jobs,
                           backend=args.backend, threads=args.threads, retry_failed=args.retry_failed)


def _load_all(specs: Sequence[str], root: str | None) -> list[Dataset]:
    datasets = [load_dataset(spec, root) for spec in specs]
    for dataset in datasets:
        print(_dataset_line(dataset))
    return datasets


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepod-mnp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run detectors on data sets under the BENCHMARK.md protocol")
    bench.add_argument("--data", nargs="+", required=True, metavar="SPEC", help=DATA_HELP)
    bench.add_argument("--models", type=_parse_models, default=["MNP", "DevNet", "RoSAS"],
                       help="comma-separated registry names, or 'all' "
                            f"(default MNP,DevNet,RoSAS; known: {','.join(DETECTORS)})")
    bench.add_argument("--runs", type=int, default=5, help="model seeds 42..42+runs-1 (default 5)")
    bench.add_argument("--labeled-ratio", type=float, default=0.01, help="labeled share of train anomalies")
    _add_run_options(bench)

    exp = sub.add_parser("experiment", help="one of the paper's experiments (ratio, unseen, ablation, "
                                            "prototypes): results, summary and figure")
    exp.add_argument("name", choices=list(EXPERIMENTS), help="; ".join(
        f"{e.name}: {e.description.split(':')[0]}" for e in EXPERIMENTS.values()))
    exp.add_argument("--data", nargs="+", default=None, metavar="SPEC",
                     help=DATA_HELP + "; default: the experiment's own (unseen: the 12 UNSW-NB15 pairs)")
    exp.add_argument("--models", type=_parse_models, default=None,
                     help="comma-separated registry names (default: the experiment's own)")
    exp.add_argument("--runs", type=int, default=3, help="model seeds 42..42+runs-1 (default 3)")
    exp.add_argument("--ratios", type=_parse_floats, default=None,
                     help="ratio experiment: labeled ratios, e.g. 0.005,0.01,0.02,0.05,0.1")
    exp.add_argument("--ks", type=_parse_ints, default=None, help="prototypes experiment: e.g. 1,2,3,5,10")
    exp.add_argument("--reuse", nargs="*", default=[], metavar="DIR",
                     help="earlier output directories whose records with identical settings are reused")
    _add_run_options(exp)

    report = sub.add_parser("report", help="rebuild the summary, tables and figure from OUT/jobs")
    report.add_argument("--out", required=True, help="a directory written by 'deepod-mnp bench'")

    demo = sub.add_parser("demo", help="MNP vs DevNet on the bundled Pendigits data (about 2 minutes)")
    demo.add_argument("--out", default=None, help="keep the results here (default: a temporary directory)")
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default auto)")

    return parser


def _bench(args: argparse.Namespace) -> int:
    config = _config(args, args.models, args.labeled_ratio)
    datasets = _load_all(args.data, args.data_root)
    print(f"Models {', '.join(config.models)}; seeds {config.seeds}; labeled ratio {config.labeled_ratio}; "
          f"{config.n_jobs} job(s) at once, {config.threads_per_job} thread(s) each.")
    df = run_benchmark(datasets, config, args.out, progress=not args.no_progress)
    summary = write_report(df, args.out)
    n_failed = int((df["status"] != "ok").sum())
    print(f"\nSummary: {summary}" + (f" ({n_failed} failed run(s) listed there)" if n_failed else ""))
    print("\nTest AUC-PR (mean ± std over seeds)\n" + metric_table(df, "auc_pr"))
    return 0


def _experiment(args: argparse.Namespace) -> int:
    exp = EXPERIMENTS[args.name]
    if args.name == "unseen" and not args.data:
        datasets = load_unseen_pairs(args.data_root)
        for dataset in datasets:
            print(_dataset_line(dataset) + f"; {len(dataset.test_anomalies):,} unseen records")
    else:
        datasets = _load_all(args.data or exp.datasets, args.data_root)
    values = {"ratio": args.ratios, "prototypes": args.ks}.get(args.name)
    settings = exp.settings(values) if values else None
    config = _config(args, args.models or exp.models)
    print(f"Experiment {exp.name}: models {', '.join(config.models)}; seeds {config.seeds}; "
          f"{config.n_jobs} job(s) at once, {config.threads_per_job} thread(s) each.")
    df = run_experiment(exp, datasets, config, args.out, settings=settings, reuse=args.reuse,
                        progress=not args.no_progress)
    summary = Path(args.out) / "summary.md"
    n_failed = int((df["status"] != "ok").sum())
    print(f"\nSummary: {summary}" + (f" ({n_failed} failed run(s))" if n_failed else ""))
    print(summary.read_text(encoding="utf-8"))
    return 0


def _report(args: argparse.Namespace) -> int:
    df = results_frame(load_records(args.out))
    if df.empty:
        raise SystemExit(f"No job records under {Path(args.out) / 'jobs'}.")
    print(f"Summary: {write_report(df, args.out)}")
    print("\nTest AUC-PR (mean ± std over seeds)\n" + metric_table(df, "auc_pr"))
    return 0


def _demo_table(df: pd.DataFrame) -> str:
    pr, roc, fit = (aggregate(df, c) for c in ("auc_pr", "auc_roc", "fit_time"))
    lines = ["| model | AUC-PR | AUC-ROC | fit time (s) | paper AUC-PR | paper AUC-ROC |",
             "|---|---|---|---|---|---|"]
    for key, row in pr.iterrows():
        model = str(key[1])
        paper = [f"{PAPER_PENDIGITS.get(model, {})[k]:.3f}" if k in PAPER_PENDIGITS.get(model, {}) else "—"
                 for k in ("auc_pr", "auc_roc")]
        cells = [f"{row['mean']:.3f} ± {row['std']:.3f}", f"{roc.loc[key, 'mean']:.3f}",
                 f"{fit.loc[key, 'mean']:.1f}", *paper]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from deepod_mnp.datasets import load_pendigits

    X, y = load_pendigits()
    info = {"source": "deepod_mnp.datasets (bundled)", "n_features": X.shape[1]}
    dataset = Dataset("pendigits", X, y, info)
    config = BenchmarkConfig(models=["MNP", "DevNet"], runs=3, device=args.device)
    print(_dataset_line(dataset))
    print("MNP vs DeepOD DevNet (library defaults), seeds 42-44, 1% of train anomalies labeled "
          "(here: 1 anomaly), BENCHMARK.md protocol. Takes about 2 minutes on 2 CPU cores.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        df = run_benchmark([dataset], config, out)
        failed = df[df["status"] != "ok"]
        for _, row in failed.iterrows():
            print(f"{row['model']} seed {row['seed']} failed: {row['error_type']}: {row['error']}")
        print("\nPendigits, test split\n" + _demo_table(df[df["status"] == "ok"]))
        print("\nThe paper's figures come from model selection on labeled validation data; ours use none.")
        if args.out:
            print(f"Summary: {write_report(df, out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepod-mnp`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return {"bench": _bench, "experiment": _experiment, "report": _report, "demo": _demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
