"""A bounded load test of a fitted MNP served by ``mlflow models serve`` on 127.0.0.1.

The model: MNP with its defaults fitted on the Pendigits copy bundled with deepod-mnp (6,870 real rows,
16 features), 1 % of its anomalies labeled (seed 42), packaged by ``save_mlflow_model`` and served by
``local_server`` (one uvicorn worker, torch at one thread; stopped at the end whatever happens).

For each batch size (1, 100 and 10,000 rows of Pendigits, drawn with replacement, seed 0) a fixed
number of requests (``--requests``) goes out from a fixed number of client threads (``--concurrency``),
after a few warm-up requests; the bodies (MLflow's ``dataframe_split`` JSON) are encoded beforehand.
It reports requests/s, rows/s and the p50/p99 latency, and checks every reply's scores against
``decision_function``. Then it sends malformed requests and records the status and message of each,
and checks that the server still answers. The client runs on the same machine as the server; the only
address it talks to is 127.0.0.1. Writes ``OUT.json`` and ``OUT.md``.

    python scripts/load_test_mlflow.py --out results/serving/mlflow_load
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from serving_figures_data import fit_mnp, machine

from deepod_mnp.datasets import load_pendigits
from deepod_mnp.serving.mlflow_model import DEFAULT_MAX_ROWS, local_server, save_mlflow_model

TIMEOUT = 120  # seconds per request


def _body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(frame.columns),
                                           "data": frame.to_numpy().tolist()}}).encode()


def _bad_requests(frame: pd.DataFrame) -> list[tuple[str, bytes, str]]:
    """(what, body, content type) of each malformed request."""
    text = frame.head(4).astype(object)
    text.iloc[1, 2] = "12 pixels"
    nulls = frame.head(4).copy()
    nulls.iloc[2, 5] = np.nan
    records = frame.head(3).to_dict("records")
    records[1]["f5"] = None
    over = frame.sample(DEFAULT_MAX_ROWS + 1, replace=True, random_state=1)
    return [
        ("a feature column missing", _body(frame.head(4).drop(columns=["f7"])), "application/json"),
        ("text in a numeric column", _body(text), "application/json"),
        ("NaN in one row", _body(nulls), "application/json"),
        ("null in one record", json.dumps({"dataframe_records": records}).encode(), "application/json"),
        ("empty body", b"", "application/json"),
        ("truncated JSON", _body(frame.head(4))[:-7], "application/json"),
        ("JSON without a data key", b'{"data": [[1, 2, 3]]}', "application/json"),
        ("a list instead of a table", b"[1, 2, 3]", "application/json"),
        ("CSV with a missing column", frame.head(4).drop(columns=["f0"]).to_csv(index=False).encode(),
         "text/csv"),
        ("unsupported content type", b"f0=1&f1=2", "application/x-www-form-urlencoded"),
        (f"{DEFAULT_MAX_ROWS + 1:,} rows (over max_rows)", _body(over), "application/json"),
    ]


def _load(url: str, bodies: list[bytes], expected: list[np.ndarray], n_requests: int,
          concurrency: int) -> dict[str, float]:
    sessions = threading.local()
    latencies = np.empty(n_requests)
    failures: list[str] = []

    def one(i: int) -> None:
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
        k = i % len(bodies)
        start = time.perf_counter()
        reply = sessions.s.post(f"{url}/invocations", data=bodies[k], timeout=TIMEOUT,
                                headers={"Content-Type": "application/json"})
        latencies[i] = time.perf_counter() - start
        if reply.status_code != 200:
            failures.append(f"{reply.status_code}: {reply.text[:200]}")
            return
        scores = np.array([p["score"] for p in reply.json()["predictions"]])
        if not np.allclose(scores, expected[k], rtol=0, atol=1e-6):
            failures.append("scores differ from decision_function")

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n_requests)))
    wall = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} request(s) failed, e.g. {failures[0]}")
    return {"requests": n_requests, "seconds": round(wall, 2), "requests_per_s": round(n_requests / wall, 1),
            "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--requests", type=int, nargs="+", default=[2_000, 1_000, 100],
                        help="requests per batch size (one number per --batches entry)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("results/serving/mlflow_load"))
    args = parser.parse_args()
    X, y = load_pendigits()
    names = [f"f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    model = fit_mnp(X, y, names)
    rng = np.random.default_rng(0)
    results = {"machine": machine(), "concurrency": args.concurrency, "server": "mlflow models serve, "
               "--env-manager local, 1 uvicorn worker, torch 1 thread", "load": [], "bad_requests": []}
    with tempfile.TemporaryDirectory() as tmp, \
            local_server(save_mlflow_model(model, Path(tmp) / "mnp")) as url:
        for batch, n_requests in zip(args.batches, args.requests):
            frames = [frame.iloc[rng.integers(0, len(frame), batch)].reset_index(drop=True) for _ in range(8)]
            bodies = [_body(f) for f in frames]
            expected = [model.decision_function(f) for f in frames]
            _load(url, bodies, expected, min(20, n_requests), args.concurrency)  # warm-up, not counted
            row = {"batch_rows": batch, **_load(url, bodies, expected, n_requests, args.concurrency)}
            row["rows_per_s"] = round(row["requests_per_s"] * batch)
            results["load"].append(row)
            print(json.dumps(row), flush=True)
        for what, body, content_type in _bad_requests(frame):
            start = time.perf_counter()
            reply = requests.post(f"{url}/invocations", data=body, headers={"Content-Type": content_type},
                                  timeout=TIMEOUT)
            try:
                message = reply.json().get("message", reply.text)
            except ValueError:
                message = reply.text
            message = " ".join(str(message).split())
            # MLflow puts the parsed data before the model's own error: keep the error
            message = message.rsplit("Error: ", 1)[-1] if message.startswith("Failed to predict") else message
            row = {"request": what, "status": reply.status_code,
                   "ms": round(1000 * (time.perf_counter() - start)), "message": message[:300]}
            results["bad_requests"].append(row)
            print(json.dumps(row), flush=True)
        alive = requests.post(f"{url}/invocations", data=_body(frame.head(3)), timeout=TIMEOUT,
                              headers={"Content-Type": "application/json"})
        results["alive_after_bad_requests"] = alive.status_code == 200 and requests.get(
            f"{url}/ping", timeout=TIMEOUT).status_code == 200
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"Concurrency {args.concurrency}; {results['server']}.", "",
             "| rows per request | requests | seconds | requests/s | rows/s | p50 (ms) | p99 (ms) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['batch_rows']:,} | {r['requests']:,} | {r['seconds']} | {r['requests_per_s']} | "
              f"{r['rows_per_s']:,} | {r['p50_ms']} | {r['p99_ms']} |" for r in results["load"]]
    lines += ["", "| malformed request | status | ms | error message (start) |", "|---|---|---|---|"]
    lines += [f"| {r['request']} | {r['status']} | {r['ms']} | {r['message'][:160].replace('|', '/')} |"
              for r in results["bad_requests"]]
    lines += ["", f"Server alive and right after them: {results['alive_after_bad_requests']}."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
