"""Speed and scale benchmark of MNP (run by hand; not part of the tests).

Measures, in one run on one machine (PROTOCOL.md "Speed" and "Scale"):

(a) fit time of MNP vs DeepOD DevNet with its library defaults, and vs DevNet
    with MNP's epoch budget (MNP's ``epochs`` and its resolved ``epoch_steps``),
    on real data under the protocol. DeepOD's ``epoch_steps`` only caps the
    batches of an epoch (DevNet runs ``min(n_train / batch_size, epoch_steps + 1)``),
    while MNP always runs ``epoch_steps``; both keep their own batch sizes;
(b) MNP scoring throughput (rows/s) of ``decision_function`` on 1,000,000 x D
    float32 rows for D = 16, 64, 200, with a model fitted on a small synthetic
    set of that D;
(c) MNP fit time and peak resident memory (``resource.getrusage`` maxrss, in a
    fresh subprocess per size, so that torch's allocations count) at N = 10k,
    100k and 1M synthetic rows of D = 100 float32.

Synthetic data serve only (b) and (c), where the data's content does not
matter; quality claims come from ``deepod-mnp bench`` on real data.

Examples
--------
    python scripts/speed.py --data pendigits gamma bank backdoor --threads 2
    python scripts/speed.py --skip fit --sizes 10000 100000 --out runs/speed_small.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch

from deepod_mnp.benchmark.protocol import make_split, semi_labels
from deepod_mnp.benchmark.runner import Job, environment, job_data, limited_threads, run_job
from deepod_mnp.data import load_dataset
from deepod_mnp import MNP
from deepod_mnp.method.sampling import resolve_epoch_steps


def synthetic(n: int, dim: int, *, anomaly_ratio: float = 0.02, labeled_ratio: float = 0.01,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 rows in [0, 1]: normals from 4 Gaussian clusters, anomalies uniform; weak labels."""
    rng = np.random.default_rng(seed)
    n_anomalies = max(2, int(n * anomaly_ratio))
    centers = rng.uniform(0.2, 0.8, size=(4, dim)).astype(np.float32)
    normals = centers[rng.integers(0, 4, n - n_anomalies)]
    normals += rng.normal(0, 0.05, size=normals.shape).astype(np.float32)
    X = np.concatenate([normals, rng.uniform(0, 1, size=(n_anomalies, dim)).astype(np.float32)])
    y_true = np.r_[np.zeros(n - n_anomalies, dtype=np.int64), np.ones(n_anomalies, dtype=np.int64)]
    return np.clip(X, 0, 1), semi_labels(y_true, labeled_ratio)


def fit_comparison(specs: list[str], *, data_root: str | None, threads: int, device: str) -> list[dict]:
    """(a) Fit times of MNP, DevNet (defaults) and DevNet with MNP's epoch budget per data set."""
    mnp = MNP()
    rows = []
    for spec in specs:
        dataset = load_dataset(spec, data_root)
        data = job_data(make_split(dataset.X, dataset.y))
        steps = resolve_epoch_steps(mnp.epoch_steps, int(np.sum(data["y_train_semi"] == 0)), mnp.batch_size)
        variants = {"MNP": ("MNP", {}), "DevNet": ("DevNet", {}),
                    "DevNet (MNP epochs)": ("DevNet", {"epochs": mnp.epochs, "epoch_steps": steps})}
        for label, (model, params) in variants.items():
            record = run_job(Job(dataset.name, model, 42), data, device=device, params=params,
                             threads=threads)
            rows.append({"dataset": dataset.name, "variant": label, "n_train": record["n_train"],
                         "n_features": record["n_features"], "fit_time": record["fit_time"],
                         "auc_pr": record["auc_pr"], "status": record["status"], "error": record["error"]})
            print(f"  {dataset.name} {label}: fit {record['fit_time']} s, AUC-PR {record['auc_pr']}",
                  flush=True)
    return rows


def _scoring_model(dim: int, n_rows: int, device: str) -> tuple[MNP, np.ndarray]:
    """An MNP (default ensemble) fitted briefly on synthetic rows of dimension D, and rows to score."""
    X_fit, y_fit = synthetic(5000, dim)
    model = MNP(epochs=1, pretrain_epochs=1, n_prototypes=4, device=device).fit(X_fit, y_fit)
    X = np.random.default_rng(1).random((n_rows, dim), dtype=np.float32)
    model.decision_function(X[:10_000])  # warm-up
    return model, X


def scoring_throughput(dims: list[int], *, n_rows: int, repeats: int, threads: int,
                       device: str) -> list[dict]:
    """(b) Rows per second of ``MNP.decision_function`` on ``n_rows`` x D float32."""
    rows = []
    with limited_threads(threads):
        for dim in dims:
            model, X = _scoring_model(dim, n_rows, device)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model.decision_function(X)
                times.append(time.perf_counter() - start)
            rows.append({"n_features": dim, "n_rows": n_rows, "best_s": min(times),
                         "median_s": float(np.median(times)), "rows_per_s": n_rows / min(times)})
            print(f"  D={dim}: {rows[-1]['rows_per_s']:,.0f} rows/s", flush=True)
            del X
    return rows


def scoring_profile(dim: int, *, n_rows: int, threads: int, device: str) -> dict[str, Any]:
    """Where (b)'s time goes at one D: torch's operator profile of ``decision_function``, and the
    rows/s of one member's bare forward pass (no input checks, no ensemble)."""
    from torch.profiler import ProfilerActivity, profile

    with limited_threads(threads):
        model, X = _scoring_model(dim, n_rows, device)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.decision_function(X)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
        ops = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in top]
        member = model.net.members[0]
        start = time.perf_counter()
        with torch.inference_mode():
            for chunk in torch.from_numpy(X).split(model.inference_batch_size):
                member(chunk)
        member_rate = n_rows / (time.perf_counter() - start)
    print(f"  D={dim}: one member's bare forward {member_rate:,.0f} rows/s", flush=True)
    return {"n_features": dim, "n_rows": n_rows, "ops": ops, "one_member_rows_per_s": member_rate}


def _scale_worker(n: int, dim: int, threads: int, device: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: fit MNP (defaults) on n x dim synthetic rows."""
    with limited_threads(threads):
        X, y = synthetic(n, dim)
        rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        MNP(device=device).fit(X, y)
        fit_time = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"n_rows": n, "n_features": dim, "fit_time": fit_time, "data_mb": X.nbytes / 2**20,
            "peak_rss_before_fit_mb": rss_data, "peak_rss_mb": peak}


def scale(sizes: list[int], *, dim: int, threads: int, device: str, timeout: float) -> list[dict]:
    """(c) Fit time and peak memory per size, each in its own subprocess."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "_scale-worker", "--n", str(n), "--dim", str(dim),
               "--threads", str(threads), "--device", device]
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = (getattr(exc, "stderr", "") or "")[-500:]
            rows.append({"n_rows": n, "n_features": dim, "error": f"{type(exc).__name__}: {tail}"})
        print(f"  N={n:,}: {rows[-1]}", flush=True)
    return rows


def _table(rows: list[dict], columns: list[str]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return "—" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _fit_ratios(rows: list[dict]) -> list[dict]:
    by = {(r["dataset"], r["variant"]): r["fit_time"] for r in rows}
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mnp, devnet = by.get((dataset, "MNP")), by.get((dataset, "DevNet"))
        out.append({"dataset": dataset, "MNP / DevNet fit time": mnp / devnet if mnp and devnet else None})
    return out


def report(results: dict[str, Any]) -> str:
    """Markdown tables of a results dict."""
    env = results["environment"]
    parts = [f"# MNP speed and scale ({env['host']}, {env['processor']}, {results['threads']} thread(s), "
             f"device {results['device']})", "", "Versions: " + ", ".join(
                 f"{k} {v}" for k, v in env["versions"].items()), ""]
    if results.get("fit"):
        parts += ["## (a) Fit time on real data (protocol split, seed 42)", "",
                  _table(results["fit"], ["dataset", "variant", "n_train", "n_features", "fit_time", "auc_pr",
                                          "status"]), "", _table(_fit_ratios(results["fit"]),
                                                                  ["dataset", "MNP / DevNet fit time"]), ""]
    if results.get("score"):
        parts += ["## (b) Scoring throughput", "",
                  _table(results["score"], ["n_features", "n_rows", "best_s", "median_s", "rows_per_s"]), ""]
    if results.get("profile"):
        prof = results["profile"]
        parts += [f"## (b) Scoring profile at D = {prof['n_features']} ({prof['n_rows']:,} rows)", "",
                  _table(prof["ops"], ["op", "self_cpu_share", "calls"]), "",
                  f"One member's bare forward pass: {prof['one_member_rows_per_s']:,.0f} rows/s.", ""]
    if results.get("scale"):
        parts += ["## (c) Fit time and peak memory vs N", "",
                  _table(results["scale"], ["n_rows", "n_features", "fit_time", "data_mb",
                                            "peak_rss_before_fit_mb", "peak_rss_mb", "error"]), ""]
    return "\n".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "_scale-worker"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--data", nargs="*", default=["pendigits", "gamma", "bank", "backdoor"],
                        help="data specs for (a) (see deepod_mnp.data.load_dataset)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=joblib.cpu_count(),
                        help="torch/BLAS threads (default: all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dims", type=int, nargs="*", default=[16, 64, 200])
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=100, help="D of the scale runs (c)")
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per scale subprocess")
    parser.add_argument("--skip", nargs="*", default=[], choices=["fit", "score", "scale"])
    parser.add_argument("--profile", type=int, metavar="D",
                        help="also profile scoring at this D (operator shares, one member's rows/s)")
    parser.add_argument("--out", default="runs/speed.json", help="results JSON (Markdown goes beside it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mode == "_scale-worker":
        print(json.dumps(_scale_worker(args.n, args.dim, args.threads, args.device)))
        return 0
    results: dict[str, Any] = {"environment": environment(args.device), "threads": args.threads,
                               "device": args.device}
    if "fit" not in args.skip:
        print("(a) fit time vs DevNet", flush=True)
        results["fit"] = fit_comparison(args.data, data_root=args.data_root, threads=args.threads,
                                        device=args.device)
    if "score" not in args.skip:
        print("(b) scoring throughput", flush=True)
        results["score"] = scoring_throughput(args.dims, n_rows=args.score_rows, repeats=args.repeats,
                                              threads=args.threads, device=args.device)
    if args.profile:
        print(f"(b) scoring profile at D={args.profile}", flush=True)
        results["profile"] = scoring_profile(args.profile, n_rows=args.score_rows, threads=args.threads,
                                             device=args.device)
    if "scale" not in args.skip:
        print("(c) fit time and memory vs N", flush=True)
        results["scale"] = scale(args.sizes, dim=args.dim, threads=args.threads, device=args.device,
                                 timeout=args.timeout)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    markdown = report(results)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print("\n" + markdown + f"\nWritten: {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
