"""Command line of deepod-mnp: ``fit``, ``info``, ``score``, ``bench``, ``experiment``, ``report``, ``demo``.

Only this module prints; the library reports through :mod:`logging`. Importing
it loads neither torch, DeepOD nor pandas (``--help`` answers at once); each
command imports what it needs. A usage error (a missing file or column, an
unknown model, an ``--out`` that is a file, records of other settings) is one
line on stderr and exit status 2, before any job runs.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import textwrap
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from deepod_mnp.data import DATA_ENV, SHORTCUTS
from deepod_mnp.registry import DETECTORS, canonical_name

if TYPE_CHECKING:
    import pandas as pd

    from deepod_mnp.benchmark.runner import BenchmarkConfig
    from deepod_mnp.data import Dataset

# The MNP paper's Table 2 (1% labeled, mean of 5 runs; model selection on labeled validation data).
PAPER_PENDIGITS = {"MNP": {"auc_pr": 0.856, "auc_roc": 0.986}, "DevNet": {"auc_pr": 0.766}}
# Names of deepod_mnp.benchmark.runner.BACKENDS and .experiments.EXPERIMENTS, kept here so that --help does
# not import them (tests/test_cli.py checks that they agree).
BACKENDS = ("loky", "ray")
EXPERIMENT_HELP = {
    "ratio": "labeled-anomaly ratio 0.5%..10% and the contamination it implies (paper Fig. 3)",
    "unseen": "12 UNSW-NB15 seen/unseen attack-type pairs (paper Table 3)",
    "ablation": "one MNP component switched off at a time (paper Table 4)",
    "prototypes": "number of prototypes k = 1..10 and 'auto' (paper Fig. 4)",
}
DATA_HELP = ("an .npz path (arrays X and y); a CSV spec 'path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V]"
             "[,onehot=C]' (text columns are one-hot encoded); or a shortcut: "
             f"{', '.join(SHORTCUTS)}. Shortcuts and relative paths are looked up under the data root; "
             "'pendigits' falls back to the copy bundled with the package")
MAIN_EPILOG = f"""\
examples:
  deepod-mnp fit --data fraud.csv:label=is_fraud --out fraud.pt   # fit on your file, save the model
  deepod-mnp info fraud.pt                            # what the saved model was fitted on
  deepod-mnp score --model fraud.pt --data new.csv --out scores.parquet --label
  deepod-mnp demo                                     # MNP vs DevNet on the bundled data, ~2 min
  deepod-mnp bench --data pendigits --models MNP,DevNet --runs 3 --out runs/pendigits
  deepod-mnp bench --data my.csv:label=is_fraud --models MNP,IForest --out runs/fraud
  deepod-mnp report --out runs/pendigits              # rebuild summary.md from the job records
  deepod-mnp experiment ratio --out runs/ratio --data-root ~/data

Data: shortcuts (gamma, bank, backdoor, ...) are files under the data root,
--data-root DIR or ${DATA_ENV}; README, 'Where each data set comes from', says
where to get each. The protocol (split, scaling, labeled ratio, seeds, metrics)
is PROTOCOL.md in the repository. 'deepod-mnp COMMAND --help' for each command.
"""
BENCH_EPILOG = """\
examples:
  deepod-mnp bench --data pendigits --models MNP,DevNet,IForest --runs 3 --out runs/pd
  deepod-mnp bench --data gamma bank --data-root ~/data --models all --n-jobs 2 --out runs/all
  deepod-mnp bench --data fraud.csv:label=FraudFound_P,drop=PolicyNumber --out runs/vi
  deepod-mnp bench --data pendigits --params '{"MNP": {"epochs": 3}}' --out runs/pd-e3

Each (data set, model, seed) job is written to OUT/jobs/ as it ends: rerunning
the same command resumes, and more seeds or models can be added later. OUT gets
results.csv, results.json, summary.md (tables, Wilcoxon tests, failed runs,
machine) and comparison.png.
"""


FIT_EPILOG = """\
examples:
  deepod-mnp fit --data fraud.csv:label=is_fraud,drop=id --out fraud.pt
  deepod-mnp fit --data fraud.csv:label=is_fraud --holdout 0.2 --out fraud.pt
  deepod-mnp fit --data claims.parquet:label=status,anomaly=fraud --out claims.pt
  deepod-mnp fit --data fraud.csv:label=is_fraud --params '{"contamination": 0.02}' --out fraud.pt
  deepod-mnp info fraud.pt
  deepod-mnp score --model fraud.pt --data new.csv --out scores.parquet --label

The label column marks the known anomalies (1, or the values given by
anomaly=V); every other row is unlabeled, not necessarily normal. Text columns
are one-hot encoded by the model itself (saved with it), so 'score' takes new
rows as raw as this file; a category it never saw scores as all zeros.
predict() and 'score --label' flag the rows scoring above the model's
threshold, which the top 'contamination' share (default 0.1, i.e. 10%) of the
training rows exceed: set it to the anomaly rate you expect (e.g.
'{"contamination": 0.01}').
"""


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported as one line, exit status 2."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's examples as written; wraps help text as usual."""


def _para(text: str) -> str:
    """A description paragraph, wrapped as the help formatter would (it keeps descriptions as written)."""
    return textwrap.fill(text, width=79)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """Turn the library's errors about bad inputs into :class:`UsageError`."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError,
            ImportError) as exc:
        raise UsageError(str(exc).replace("\n", " ")) from exc


def _json_object(text: str | None, shape: str = 'a JSON object, e.g. {"epochs": 5}') -> dict[str, Any]:
    """``--params``' JSON object, inline or in a file (``{}`` when absent); ``shape`` says what it must be."""
    if not text:
        return {}
    source = Path(text).read_text(encoding="utf-8") if Path(text).is_file() else text
    try:
        params = json.loads(source)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise argparse.ArgumentTypeError(f"--params must be {shape}.")
    return params


def _parse_params(text: str | None) -> dict[str, dict[str, Any]]:
    """``--params``: a JSON object ``{"MODEL": {"param": value}}``, inline or in a file."""
    shape = 'an object mapping model names to objects, e.g. {"MNP": {"epochs": 5}}'
    params = _json_object(text, shape)
    if not all(isinstance(v, dict) for v in params.values()):
        raise argparse.ArgumentTypeError(f"--params must be {shape}.")
    return params


def _parse_saveable(text: str) -> str:
    """``fit --model``: a registry name (any case) of a detector that deepod-mnp can save."""
    saveable = [k for k, spec in DETECTORS.items() if spec.saveable]
    try:
        name = canonical_name(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose from {', '.join(saveable)}") \
            from None
    if not DETECTORS[name].saveable:
        raise argparse.ArgumentTypeError(
            f"{name} is a benchmark peer that deepod-mnp cannot save safely (its models would need pickle, "
            f"which runs code when loaded); 'fit' saves {', '.join(saveable)}; compare peers with "
            "'deepod-mnp bench'")
    return name


def _parse_models(text: str) -> list[str]:
    """``--models``: comma-separated registry names (any case) or ``all``; unknown names are a usage error."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    if [n.lower() for n in names] == ["all"]:
        return list(DETECTORS)
    known, unknown = [], []
    for name in names:
        try:
            known.append(canonical_name(name))
        except ValueError:
            unknown.append(name)
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(DETECTORS)} or 'all'")
    return known


def _parse_floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _dataset_line(dataset: Dataset) -> str:
    from deepod_mnp.data import describe

    n, d = dataset.X.shape
    return (f"{dataset.name}: {n:,} rows x {d} features, {dataset.y.mean():.1%} anomalies "
            f"({describe(dataset.info)})")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``bench`` and ``experiment``: where results go and how jobs run."""
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory; job records go to DIR/jobs (required)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help=f"where shortcuts and relative data paths are looked up (default: ${DATA_ENV}; "
                             "in a git checkout, shared/data beside it)")
    parser.add_argument("--n-jobs", type=int, default=1, metavar="N", help="jobs run at once (default: 1)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch/BLAS threads per job (default: $OMP_NUM_THREADS, else 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="loky",
                        help="where jobs run with --n-jobs > 1: 'loky' (joblib's worker processes) or 'ray' "
                             "(Ray tasks on a running Ray cluster) (default: loky)")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu or cuda[:i]; auto = CUDA when available (default: auto)")
    parser.add_argument("--params", type=_parse_params, default={}, metavar="JSON",
                        help='per-model parameter overrides as JSON or a JSON file, e.g. '
                             '\'{"MNP": {"epochs": 5}}\' (default: none, library defaults)')
    parser.add_argument("--max-train", type=int, default=None, metavar="N",
                        help="subsample the train split to N rows, for quick runs only (default: off)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun the jobs recorded as failed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deepod-mnp", formatter_class=_Formatter, epilog=MAIN_EPILOG,
                     description=_para("MNP (Multi-Normal Prototypes) weakly supervised anomaly detection: "
                                       "fit a model on your table and score new rows with it; "
                                       "benchmarks, the paper's experiments and a demo."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit a detector on every row of a file and save it (then: info, score)",
                         description=_para("Fit one of deepod-mnp's detectors on every row of a labeled "
                                           "file (or on all but a held-out part, with --holdout) and save "
                                           "it as a checksummed checkpoint that 'deepod-mnp score' and "
                                           "'deepod-mnp info' read. The model carries its preprocessing: "
                                           "the encoding of text columns and the input scaling."),
                         formatter_class=_Formatter, epilog=FIT_EPILOG)
    fit.add_argument("--data", required=True, metavar="SPEC",
                     help="a CSV spec 'path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V][,onehot=C]', the same "
                          "for Parquet ('path.parquet:label=COL,...'), an .npz path (arrays X and y) or a "
                          "shortcut of 'bench'; text columns stay text: the model encodes them (required)")
    fit.add_argument("--out", required=True, metavar="FILE", help="the checkpoint to write, e.g. model.pt "
                                                                  "(required)")
    saveable = [k for k, spec in DETECTORS.items() if spec.saveable]
    fit.add_argument("--model", type=_parse_saveable, default="MNP",
                     help=f"the detector: {', '.join(saveable)} (default: MNP)")
    fit.add_argument("--params", type=_json_object, default={}, metavar="JSON",
                     help='parameters as JSON or a JSON file, e.g. \'{"contamination": 0.02}\' '
                          "(default: the detector's defaults)")
    fit.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                     help="hold out this share of the rows (stratified by the label), fit on the rest and "
                          "report AUC-PR and AUC-ROC on it against the file's labels; the saved model is "
                          "the one fitted on the rest (default: off, fit on every row)")
    fit.add_argument("--seed", type=int, default=42, help="random_state of the detector and of --holdout's "
                                                          "split (default: 42)")
    fit.add_argument("--device", default="auto",
                     help="auto, cpu or cuda[:i]; auto = CUDA when available (default: auto)")
    fit.add_argument("--threads", type=int, default=None, metavar="N",
                     help="torch threads while fitting (default: 1, the fastest for these small networks)")
    fit.add_argument("--data-root", default=None, metavar="DIR",
                     help=f"where shortcuts and relative data paths are looked up (default: ${DATA_ENV})")
    fit.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    info = sub.add_parser("info", help="the model card of a saved model: what it was fitted on, and how",
                          description=_para("Print the model card of a checkpoint: detector and parameters, "
                                            "training rows and columns, labeled anomalies, the encoding of "
                                            "text columns with their categories, the input scaling, the "
                                            "threshold and contamination, fit time, versions and the "
                                            "file's sha256. The same as deepod_mnp.model_card(path)."),
                          formatter_class=_Formatter,
                          epilog="examples:\n  deepod-mnp info fraud.pt\n  deepod-mnp info fraud.pt --json\n")
    info.add_argument("model", metavar="MODEL", help="a checkpoint written by 'deepod-mnp fit' or save_model")
    info.add_argument("--json", action="store_true", help="print the card as JSON (every list in full)")

    from deepod_mnp.serving import cli as serving_cli  # `deepod-mnp score`; argparse only

    serving_cli.add_parser(sub)

    bench = sub.add_parser("bench", help="run detectors on data sets under the protocol of PROTOCOL.md",
                           description=_para("Fit every model with every seed on each data set's train "
                                             "split (weak labels: the first ceil(r * n) train anomalies) and "
                                             "score the test split, as PROTOCOL.md says."),
                           formatter_class=_Formatter, epilog=BENCH_EPILOG)
    bench.add_argument("--data", nargs="+", required=True, metavar="SPEC", help=DATA_HELP + " (required)")
    bench.add_argument("--models", type=_parse_models, default=["MNP", "DevNet", "RoSAS"],
                       help=f"comma-separated registry names, or 'all' ({', '.join(DETECTORS)}; "
                            "default: MNP,DevNet,RoSAS)")
    bench.add_argument("--runs", type=int, default=5, help="model seeds 42..42+RUNS-1 (default: 5)")
    bench.add_argument("--labeled-ratio", type=float, default=0.01, metavar="R",
                       help="share of the train anomalies that is labeled (default: 0.01)")
    _add_run_options(bench)

    exp = sub.add_parser("experiment", help="one of the paper's experiments: results, summary and figure",
                         description=_para("One of the MNP paper's experiments under the same protocol, "
                                           "with the paper's figures beside ours in OUT/summary.md."),
                         formatter_class=_Formatter,
                         epilog="experiments:\n"
                         + "".join(f"  {k:<11} {v}\n" for k, v in EXPERIMENT_HELP.items())
                         + "\nexamples:\n  deepod-mnp experiment ratio --out runs/ratio --ratios 0.01,0.05\n"
                           "  deepod-mnp experiment unseen --out runs/unseen --reuse runs/main\n")
    exp.add_argument("name", choices=list(EXPERIMENT_HELP), metavar="NAME",
                     help=f"the experiment: {', '.join(EXPERIMENT_HELP)}")
    exp.add_argument("--data", nargs="+", default=None, metavar="SPEC",
                     help=DATA_HELP + " (default: the experiment's own; unseen: the 12 UNSW-NB15 pairs)")
    exp.add_argument("--models", type=_parse_models, default=None,
                     help="comma-separated registry names (default: the experiment's own)")
    exp.add_argument("--runs", type=int, default=3, help="model seeds 42..42+RUNS-1 (default: 3)")
    exp.add_argument("--ratios", type=_parse_floats, default=None,
                     help="ratio experiment: labeled ratios (default: 0.005,0.01,0.02,0.05,0.1)")
    exp.add_argument("--ks", type=_parse_ints, default=None,
                     help="prototypes experiment: fixed k values (default: 1..10)")
    exp.add_argument("--reuse", nargs="*", default=[], metavar="DIR",
                     help="earlier output directories whose records with identical settings are copied "
                          "instead of rerun (default: none)")
    _add_run_options(exp)

    report = sub.add_parser("report", help="rebuild the summary, tables and figure from OUT/jobs",
                            description=_para("Rebuild results.csv, results.json, summary.md and "
                                              "comparison.png from the job records in OUT/jobs alone (e.g. "
                                              "after copying records of several machines into one "
                                              "folder). An unreadable record is left out with a warning "
                                              "naming it."),
                            formatter_class=_Formatter,
                            epilog="example:\n  deepod-mnp report --out runs/pendigits\n")
    report.add_argument("--out", required=True, metavar="DIR",
                        help="a directory written by 'deepod-mnp bench' or 'experiment' (required)")

    demo = sub.add_parser("demo", help="MNP vs DevNet on the bundled Pendigits data (about a minute)",
                          description=_para("MNP against DeepOD's DevNet (library defaults) on the Pendigits "
                                            "copy bundled with the package, seeds 42-44, one labeled "
                                            "anomaly, beside the paper's figures."),
                          formatter_class=_Formatter,
                          epilog="example:\n  deepod-mnp demo --out runs/demo --device cpu\n")
    demo.add_argument("--out", default=None, metavar="DIR",
                      help="keep the results here (default: a temporary directory)")
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default: auto)")

    return parser


def _check_out(out: str | Path) -> Path:
    """``--out`` must be a directory (made if missing), checked before any job runs."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the directory ({exc.strerror or exc}).") from exc
    return path


def _config(args: argparse.Namespace, models: Sequence[str], labeled_ratio: float = 0.01) -> BenchmarkConfig:
    from deepod_mnp.benchmark.runner import BenchmarkConfig

    with _usage():
        return BenchmarkConfig(models=models, runs=args.runs, labeled_ratio=labeled_ratio, device=args.device,
                               model_params=args.params, max_train=args.max_train, n_jobs=args.n_jobs,
                               backend=args.backend, threads=args.threads, retry_failed=args.retry_failed)


def _load_all(specs: Sequence[str], root: str | None) -> list[Dataset]:
    from deepod_mnp.data import load_dataset

    with _usage():
        datasets = [load_dataset(spec, root) for spec in specs]
    for dataset in datasets:
        print(_dataset_line(dataset))
    return datasets


@contextlib.contextmanager
def _settings_checked() -> Iterator[None]:
    """Records of other settings in OUT are a usage error (raised before any job runs)."""
    from deepod_mnp.benchmark.runner import SettingsMismatchError

    try:
        yield
    except SettingsMismatchError as exc:
        raise UsageError(str(exc)) from exc


def _bench(args: argparse.Namespace) -> int:
    from deepod_mnp.benchmark.report import metric_table, write_report
    from deepod_mnp.benchmark.runner import run_benchmark

    out = _check_out(args.out)
    config = _config(args, args.models, args.labeled_ratio)
    datasets = _load_all(args.data, args.data_root)
    print(f"Models {', '.join(config.models)}; seeds {config.seeds}; labeled ratio {config.labeled_ratio}; "
          f"{config.n_jobs} job(s) at once, {config.threads_per_job} thread(s) each.")
    with _settings_checked():
        df = run_benchmark(datasets, config, out, progress=not args.no_progress)
    summary = write_report(df, out)
    n_failed = int((df["status"] != "ok").sum())
    print(f"\nSummary: {summary}" + (f" ({n_failed} failed run(s) listed there)" if n_failed else ""))
    print("\nTest AUC-PR (mean ± std over seeds)\n" + metric_table(df, "auc_pr"))
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from deepod_mnp.benchmark.experiments import EXPERIMENTS, run_experiment
    from deepod_mnp.data import load_unseen_pairs

    exp = EXPERIMENTS[args.name]
    out = _check_out(args.out)
    config = _config(args, args.models or exp.models)
    if args.name == "unseen" and not args.data:
        with _usage():
            datasets = load_unseen_pairs(args.data_root)
        for dataset in datasets:
            print(_dataset_line(dataset) + f"; {len(dataset.test_anomalies):,} unseen records")
    else:
        datasets = _load_all(args.data or exp.datasets, args.data_root)
    values = {"ratio": args.ratios, "prototypes": args.ks}.get(args.name)
    settings = exp.settings(values) if values else None
    print(f"Experiment {exp.name}: models {', '.join(config.models)}; seeds {config.seeds}; "
          f"{config.n_jobs} job(s) at once, {config.threads_per_job} thread(s) each.")
    with _settings_checked():
        df = run_experiment(exp, datasets, config, out, settings=settings, reuse=args.reuse,
                            progress=not args.no_progress)
    summary = out / "summary.md"
    n_failed = int((df["status"] != "ok").sum())
    print(f"\nSummary: {summary}" + (f" ({n_failed} failed run(s))" if n_failed else ""))
    print(summary.read_text(encoding="utf-8"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from deepod_mnp.benchmark.report import load_records, metric_table, results_frame, write_report

    jobs = Path(args.out) / "jobs"
    if not jobs.is_dir():
        raise UsageError(f"No job records: {jobs} is not a directory (run 'deepod-mnp bench --out "
                         f"{args.out} ...' first).")
    records = load_records(args.out)
    if not records:
        raise UsageError(f"No readable job records under {jobs}.")
    df = results_frame(records)
    print(f"Summary: {write_report(df, args.out)}")
    print("\nTest AUC-PR (mean ± std over seeds)\n" + metric_table(df, "auc_pr"))
    return 0


def _demo_table(df: pd.DataFrame) -> str:
    from deepod_mnp.benchmark.report import aggregate, format_std

    pr, roc, fit = (aggregate(df, c) for c in ("auc_pr", "auc_roc", "fit_time"))
    lines = ["| model | AUC-PR | AUC-ROC | fit time (s) | paper AUC-PR | paper AUC-ROC |",
             "|---|---|---|---|---|---|"]
    for key, row in pr.iterrows():
        model = str(key[1])
        paper = [f"{PAPER_PENDIGITS.get(model, {})[k]:.3f}" if k in PAPER_PENDIGITS.get(model, {}) else "—"
                 for k in ("auc_pr", "auc_roc")]
        cells = [f"{row['mean']:.3f} {format_std(row['std'], row['n_ok'])}", f"{roc.loc[key, 'mean']:.3f}",
                 f"{fit.loc[key, 'mean']:.1f}", *paper]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from deepod_mnp.benchmark.report import write_report
    from deepod_mnp.benchmark.runner import BenchmarkConfig, run_benchmark
    from deepod_mnp.data import Dataset
    from deepod_mnp.datasets import load_pendigits

    if args.out:
        _check_out(args.out)
    X, y = load_pendigits()
    info = {"source": "deepod_mnp.datasets (bundled)", "n_features": X.shape[1]}
    dataset = Dataset("pendigits", X, y, info)
    with _usage():
        config = BenchmarkConfig(models=["MNP", "DevNet"], runs=3, device=args.device)
    print(_dataset_line(dataset))
    print("MNP vs DeepOD DevNet (library defaults), seeds 42-44, 1% of train anomalies labeled "
          "(here: 1 anomaly), the protocol of PROTOCOL.md. Takes about a minute on 2 CPU cores.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        with _settings_checked():
            df = run_benchmark([dataset], config, out)
        failed = df[df["status"] != "ok"]
        for _, row in failed.iterrows():
            print(f"{row['model']} seed {row['seed']} failed: {row['error_type']}: {row['error']}")
        print("\nPendigits, test split\n" + _demo_table(df[df["status"] == "ok"]))
        print("\nThe paper's figures come from model selection on labeled validation data; ours use none.")
        if args.out:
            print(f"Summary: {write_report(df, out)}")
    return 0


def _check_model_out(out: str) -> Path:
    """``fit --out``: a file path (its folder made if missing), checked before the data is read."""
    path = Path(out).expanduser()
    if path.is_dir():
        raise UsageError(f"--out {out} is a directory; give the checkpoint's file name, e.g. "
                         f"{path / 'model.pt'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create its folder ({exc.strerror or exc}).") from exc
    return path


def _fit_params(args: argparse.Namespace) -> dict[str, Any]:
    """``--params`` for ``args.model``: flat, or as ``bench`` takes them (``{"MODEL": {...}}``)."""
    params = args.params
    if len(params) == 1 and isinstance(next(iter(params.values())), dict):
        key = next(iter(params))
        if key.lower() != args.model.lower():
            raise UsageError(f"--params are for {key}, but --model is {args.model}.")
        params = params[key]
    return params


def _table_lines(table: Any) -> list[str]:
    """What ``fit`` says about the file before fitting: rows, columns, labels, text columns."""
    import pandas as pd

    n, d = table.X.shape
    n_anomalies = int(table.y.sum())
    label = table.info.get("label")
    lines = [f"{table.name}: {n:,} rows x {d} columns, {n_anomalies:,} labeled anomalies "
             f"({n_anomalies / n:.2%})" + (f" in label column {label!r}" if label else "")]
    if isinstance(table.X, pd.DataFrame) and table.info["text"]:
        counts = ", ".join(f"{c} ({table.X[c].nunique(dropna=False)})" for c in table.info["text"][:12])
        more = f", ... ({len(table.info['text'])} in all)" if len(table.info["text"]) > 12 else ""
        lines.append(f"Text columns the model will one-hot encode (categories): {counts}{more}")
    return lines


def _check_table(table: Any) -> None:
    """Usage errors found in the table before any fitting: identifier-like text columns."""
    import pandas as pd

    from deepod_mnp.preprocessing import identifier_like

    if isinstance(table.X, pd.DataFrame):
        for column, n in identifier_like(table.X):
            raise UsageError(f"text column {column!r} has {n:,} distinct values in {len(table.X):,} rows: "
                             f"one-hot encoding would add a feature per value. Drop an identifier or free "
                             f"text (',drop={column}' in the spec); clean a numeric column that has a few "
                             "non-numeric entries.")


def _holdout_split(y: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Row indices (sorted) of the fitting part and the held-out part, stratified by ``y``."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise UsageError(f"--holdout must be a fraction between 0 and 1, got {fraction}.")
    n_anomalies = int(y.sum())
    if n_anomalies < 2:
        raise UsageError(f"--holdout needs at least 2 labeled anomalies (one to fit on, one to score); the "
                         f"label column marks {n_anomalies}.")
    fit_rows, held = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed)
    if not y[held].any() or not y[fit_rows].any():
        raise UsageError(f"--holdout {fraction} leaves no labeled anomaly on one side of the split "
                         f"({n_anomalies} in all); choose another fraction.")
    return np.sort(fit_rows), np.sort(held)


def _rows(X: Any, index: Any) -> Any:
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _fit(args: argparse.Namespace) -> int:
    import numpy as np

    from deepod_mnp.data import load_table
    from deepod_mnp.registry import make_detector

    out = _check_model_out(args.out)
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}.")
        os.environ["DEEPOD_MNP_FIT_THREADS"] = str(args.threads)  # read by every detector's fit
    params = _fit_params(args)
    with _usage():
        table = load_table(args.data, args.data_root)
    for line in _table_lines(table):
        print(line)
    _check_table(table)
    X, y = table.X, table.y
    held = None
    if args.holdout is not None:
        fit_rows, held = _holdout_split(y, args.holdout, args.seed)
        X, y = _rows(table.X, fit_rows), y[fit_rows]
        print(f"Holding out {args.holdout:.0%} of the rows ({len(held):,}, {int(table.y[held].sum()):,} "
              f"labeled anomalies), stratified by the label; fitting on the other {len(fit_rows):,}.")
    try:
        model = make_detector(args.model, random_state=args.seed, device=args.device,
                              **{"verbose": 0 if args.no_progress else 1, **params})
    except TypeError as exc:  # a parameter the detector does not take
        raise UsageError(f"--params: {exc}") from exc
    print(f"Fitting {args.model} on {len(y):,} rows ...")
    with warnings.catch_warnings(record=True) as caught, _usage():
        warnings.simplefilter("always")
        model.fit(X, y)
    for w in caught:
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            print(f"warning: {w.message}", file=sys.stderr)
    if "verbose" not in params:
        model.set_params(verbose=0)  # the progress bar was this command's; the saved model fits quietly
    model.fit_info_["data"] = args.data
    if held is not None:
        from sklearn.metrics import average_precision_score, roc_auc_score

        scores = model.decision_function(_rows(table.X, held))
        y_held = table.y[held]
        pr, roc = float(average_precision_score(y_held, scores)), float(roc_auc_score(y_held, scores))
        model.fit_info_["holdout"] = {"fraction": args.holdout, "rows": int(len(held)),
                                      "labeled_anomalies": int(y_held.sum()), "auc_pr": pr, "auc_roc": roc,
                                      "truth": "the file's label column"}
        print(f"Held-out {len(held):,} rows: AUC-PR {pr:.4f} (a random ranking scores {y_held.mean():.4f}), "
              f"AUC-ROC {roc:.4f}.\n  These use the file's labels as the truth: an anomaly that nobody "
              "labeled counts as normal, so they are as good as your labels. The saved model is the one "
              "fitted without the held-out rows; fit without --holdout to use every row.")
    model.save_model(out)
    threshold_share = float(np.mean(model.labels_))
    print(f"Fitted in {model.fit_info_['fit_seconds']:.1f} s. Saved {type(model).__name__} to {out}.")
    print(f"predict() and 'score --label' flag scores above threshold_ = {model.threshold_:.6g}: the top "
          f"{threshold_share:.1%} of the training rows (contamination={model.contamination}); set "
          "'{\"contamination\": RATE}' in --params to the anomaly rate you expect.")
    print(f"Next: deepod-mnp info {out}   |   deepod-mnp score --model {out} --data NEW.csv "
          "--out scores.parquet --label")
    return 0


def _info(args: argparse.Namespace) -> int:
    from deepod_mnp.saved import card_json, format_card, model_card

    with _usage():
        card = model_card(args.model)
    print(card_json(card) if args.json else format_card(card))
    return 0


def _score(args: argparse.Namespace) -> int:
    from deepod_mnp.serving import cli as serving_cli
    from deepod_mnp.serving.stream import ScoringError

    try:
        return serving_cli.run(args)
    except ScoringError as exc:  # one line naming the file, column or row; the traceback only with --verbose
        if args.verbose:
            traceback.print_exc()
        raise UsageError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepod-mnp`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 2 after a usage error (printed as one line on stderr).
    """
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handlers = {"bench": _bench, "experiment": _experiment, "report": _report, "demo": _demo,
                "score": _score, "fit": _fit, "info": _info}
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        print(f"deepod-mnp {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
