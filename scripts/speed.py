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
(e) scoring paths on 1,000,000 x D float32 rows (``--paths``): ``decision_function``
    as shipped, the fused torch scorer (``deepod_mnp.serving.fused``, its
    threads spent as Python workers over chunks of one intra-op thread each)
    and ONNX Runtime on the exported model (threads as workers, or as
    ONNX Runtime's intra-op threads);
    with the FLOPs per row, the machine's measured GEMM FLOP/s and the rows/s
    limit they imply; best of ``--repeats`` runs, taken round robin over the
    paths so that each sees the same load on a shared machine;
(f) streaming memory (``--stream-rows``): peak resident memory of
    ``deepod-mnp score`` on Parquet files of growing row counts (fresh
    subprocess each);
(c) MNP fit time and peak resident memory (``resource.getrusage`` maxrss, in a
    fresh subprocess per size, so that torch's allocations count) at N = 10k,
    100k and 1M synthetic rows of D = 100 float32.

Synthetic data serve only (b) and (c), where the data's content does not
matter; quality claims come from ``deepod-mnp bench`` on real data.

Examples
--------
    python scripts/speed.py --data pendigits gamma bank backdoor --threads 2
    python scripts/speed.py --skip fit --sizes 10000 100000 --out runs/speed_small.json
    python scripts/speed.py --skip fit score scale --paths --threads 2 --out results/speed/scoring_paths.json
    python scripts/speed.py --skip fit score scale --stream-rows 1000000 4000000 \
        --out results/serving/stream.json
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

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import make_split, semi_labels
from deepod_mnp.benchmark.runner import Job, environment, job_data, limited_threads, run_job
from deepod_mnp.data import load_dataset


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
        steps = mnp._epoch_steps(int(np.sum(data["y_train_semi"] == 0)))  # 'auto' resolved
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


def gemm_rate(threads: int, *, size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 GEMM rate (FLOP/s) of torch.mm on size x size matrices, best of ``repeats``."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    best = float("inf")
    with limited_threads(threads):
        torch.mm(a, b)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _best_rate(fn, n_rows: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_rows / min(times)


def scoring_paths(dims: list[int], *, n_rows: int, repeats: int, threads: int) -> list[dict]:
    """(e) Rows/s of each scoring path, its largest score difference to ``decision_function``,
    FLOPs per row and the limit implied by the measured GEMM rate."""
    import tempfile

    from deepod_mnp.serving.fused import FusedMNP, flops_per_row, fused_scores
    from deepod_mnp.serving.onnx import OnnxScorer, export_onnx

    peak = gemm_rate(threads)
    rows = []
    for dim in dims:
        with limited_threads(1):
            model, X = _scoring_model(dim, n_rows, "cpu")
        fused = FusedMNP.from_model(model)
        flops = flops_per_row(fused)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "mnp.onnx")
            paths = _paths(model, X, fused, OnnxScorer(path, threads=1, workers=threads),
                           OnnxScorer(path, threads=threads, chunk_rows=16_384), threads, fused_scores)
            with limited_threads(threads):
                reference = _unfused(model, X)
            diffs, rates = {}, {name: 0.0 for name in paths}
            for name, (torch_threads, fn) in paths.items():
                with limited_threads(torch_threads):
                    diffs[name] = float(np.max(np.abs(fn() - reference)))  # also the warm-up
            for _ in range(repeats):  # round robin: every path sees the same (shared) machine
                for name, (torch_threads, fn) in paths.items():
                    with limited_threads(torch_threads):
                        rates[name] = max(rates[name], _best_rate(fn, n_rows, 1))
            for name in paths:
                rate, diff = rates[name], diffs[name]
                rows.append({"n_features": dim, "path": name, "rows_per_s": rate, "max_abs_diff": diff,
                             "flops_per_row": flops, "gflops": rate * flops / 1e9,
                             "gemm_gflops": peak / 1e9, "limit_rows_per_s": peak / flops})
                print(f"  D={dim} {name}: {rate:,.0f} rows/s (max |diff| {diff:.1e})", flush=True)
    return rows


def _unfused(model, X: np.ndarray) -> np.ndarray:
    """``decision_function`` with the fused path switched off: what it did before (the members one by
    one through ``MNPEnsemble.forward``, with the same validation, chunks and worker threads)."""
    import deepod_mnp.models.mnp as mnp_module

    real = mnp_module.fused_for
    mnp_module.fused_for = lambda model: None
    try:
        return model.decision_function(X)
    finally:
        mnp_module.fused_for = real


def _paths(model, X, fused, ort_workers, ort_intra, threads, fused_scores) -> dict[str, tuple]:
    """Scoring path name -> (torch threads while it runs, a function scoring all of X)."""
    return {
        "decision_function, unfused (before)": (threads, lambda: _unfused(model, X)),
        "decision_function (fused hot path)": (threads, lambda: model.decision_function(X)),
        "fused torch, workers": (1, lambda: fused_scores(fused, X, workers=threads)),
        "ONNX Runtime, workers": (1, lambda: ort_workers.decision_function(X)),
        "ONNX Runtime, intra-op threads": (1, lambda: ort_intra.decision_function(X)),
    }


def _write_stream_data(path: Path, n: int, dim: int) -> None:
    """n x dim random float32 rows as Parquet files of 250,000 rows, written block by block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cols = [f"x{i}" for i in range(dim)]
    for i, start in enumerate(range(0, n, 250_000)):
        part = rng.random((min(250_000, n - start), dim), dtype=np.float32)
        pq.write_table(pa.table({c: part[:, j] for j, c in enumerate(cols)}), path / f"p{i:04d}.parquet")


def _stream_worker(data: str, dim: int, threads: int, chunk_rows: int) -> dict[str, Any]:
    """Runs in a fresh interpreter: fit a small MNP, then stream-score the Parquet directory ``data``."""
    import tempfile

    import pandas as pd

    from deepod_mnp.serving.stream import score_table

    with limited_threads(threads), tempfile.TemporaryDirectory() as tmp:
        X_fit, y_fit = synthetic(5000, dim)
        cols = [f"x{i}" for i in range(dim)]
        model = MNP(epochs=1, pretrain_epochs=1, n_prototypes=4, device="cpu").fit(
            pd.DataFrame(X_fit, columns=cols), y_fit)
        model.decision_function(X_fit[:10_000])  # warm-up
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        n_out = score_table(model, data, Path(tmp) / "scores.parquet", label=True, chunk_rows=chunk_rows,
                            progress=False).rows_scored
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n_rows": n_out, "n_features": dim, "chunk_rows": chunk_rows, "seconds": seconds,
            "rows_per_s": n_out / seconds, "peak_rss_before_scoring_mb": rss_before, "peak_rss_mb": peak,
            "data_mb": n_out * dim * 4 / 2**20}


def stream_memory(sizes: list[int], *, dim: int, threads: int, chunk_rows: int, timeout: float) -> list[dict]:
    """(f) Peak memory of streaming scoring per table size, each in its own subprocess."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    rows = []
    import tempfile

    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            _write_stream_data(Path(tmp) / "rows", n, dim)  # here, so the worker's peak is scoring's own
            cmd = [sys.executable, __file__, "_stream-worker", "--data", str(Path(tmp) / "rows"),
                   "--dim", str(dim), "--threads", str(threads), "--chunk-rows", str(chunk_rows)]
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                                      check=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                tail = (getattr(exc, "stderr", "") or "")[-500:]
                rows.append({"n_rows": n, "n_features": dim, "error": f"{type(exc).__name__}: {tail}"})
        print(f"  N={n:,}: {rows[-1]}", flush=True)
    return rows


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
    if results.get("paths"):
        parts += ["## (e) Scoring paths", "",
                  _table(results["paths"], ["n_features", "path", "rows_per_s", "max_abs_diff",
                                            "flops_per_row", "gflops", "gemm_gflops",
                                            "limit_rows_per_s"]), ""]
    if results.get("stream"):
        parts += ["## (f) Streaming scoring memory (deepod-mnp score, Parquet in and out)", "",
                  _table(results["stream"], ["n_rows", "n_features", "chunk_rows", "seconds",
                                             "rows_per_s", "data_mb", "peak_rss_before_scoring_mb",
                                             "peak_rss_mb", "error"]),
                  ""]
    if results.get("scale"):
        parts += ["## (c) Fit time and peak memory vs N", "",
                  _table(results["scale"], ["n_rows", "n_features", "fit_time", "data_mb",
                                            "peak_rss_before_fit_mb", "peak_rss_mb", "error"]), ""]
    return "\n".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "_scale-worker", "_stream-worker"],
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
    parser.add_argument("--paths", action="store_true",
                        help="(e) compare the scoring paths (shipped, fused torch, ONNX Runtime) at --dims")
    parser.add_argument("--stream-rows", type=int, nargs="*", default=[],
                        help="(f) streaming-scoring memory at these table sizes (D = --stream-dim)")
    parser.add_argument("--stream-dim", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=65_536, help="chunk of the streaming runs (f)")
    parser.add_argument("--out", default="runs/speed.json", help="results JSON (Markdown goes beside it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mode == "_scale-worker":
        print(json.dumps(_scale_worker(args.n, args.dim, args.threads, args.device)))
        return 0
    if args.mode == "_stream-worker":
        print(json.dumps(_stream_worker(args.data[0], args.dim, args.threads, args.chunk_rows)))
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
    if args.paths:
        print("(e) scoring paths", flush=True)
        results["paths"] = scoring_paths(args.dims, n_rows=args.score_rows, repeats=args.repeats,
                                         threads=args.threads)
    if args.stream_rows:
        print("(f) streaming memory", flush=True)
        results["stream"] = stream_memory(args.stream_rows, dim=args.stream_dim, threads=args.threads,
                                          chunk_rows=args.chunk_rows, timeout=args.timeout)
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
