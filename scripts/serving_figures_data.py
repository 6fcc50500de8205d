"""Shared by the serving figure scripts: real rows resampled to N rows of Parquet, a fitted MNP, and a
child process measured for wall time and peak resident memory.

Not a benchmark by itself; imported by ``score_bad_rows.py``, ``score_memory_layouts.py`` and
``load_test_mlflow.py`` (run from the repository root: ``python scripts/NAME.py``).
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ROW_GROUP = 1_048_576  # pandas' and pyarrow's default maximum row group


def machine() -> dict[str, Any]:
    import torch

    from deepod_mnp import __version__

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "deepod_mnp": __version__,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_average_at_start": os.getloadavg()}


def fit_mnp(X: np.ndarray, y: np.ndarray, names: list[str], seed: int = 42) -> Any:
    """MNP with its defaults on ``X`` (a DataFrame with ``names``), 1 % of the anomalies labeled
    (at least one; drawn with ``seed``), the protocol's labeled ratio."""
    import torch

    from deepod_mnp import MNP

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    anomalies = np.flatnonzero(y == 1)
    weak = np.zeros(len(y), dtype=np.int64)
    weak[rng.choice(anomalies, max(1, math.ceil(0.01 * len(anomalies))), replace=False)] = 1
    return MNP(device="cpu", random_state=seed).fit(pd.DataFrame(X, columns=names), weak)


def write_resampled(X: np.ndarray, names: list[str], path: Path, n_rows: int, *, seed: int = 0,
                    files: int = 1, bad_share: float = 0.0) -> dict[str, Any]:
    """``n_rows`` rows of ``X`` drawn with replacement (``seed``) as Parquet with 1Mi-row groups and an
    ``id`` column: one file at ``path`` (``files=1``) or ``files`` files in the directory ``path``.

    With ``bad_share``, that share of the rows (drawn without replacement) gets one bad value in one
    feature, the kinds in turn: NaN, +inf, -inf, 1e39 (beyond float32) and null. Returns the bad rows'
    ids and kinds.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    bad_ids = np.sort(rng.choice(n_rows, int(round(bad_share * n_rows)), replace=False)) if bad_share else \
        np.empty(0, dtype=np.int64)
    kinds = np.array(["nan", "inf", "-inf", "1e39", "null"])[np.arange(len(bad_ids)) % 5]
    bad_cols = rng.integers(0, len(names), len(bad_ids))
    bounds = np.linspace(0, n_rows, files + 1).astype(np.int64)
    if files > 1:
        path.mkdir(parents=True)
    schema = pa.schema([("id", pa.int64()), *[(c, pa.float64()) for c in names]])
    for f in range(files):
        target = path / f"part-{f:04d}.parquet" if files > 1 else path
        with pq.ParquetWriter(str(target), schema) as writer:
            for start in range(bounds[f], bounds[f + 1], ROW_GROUP):
                stop = min(start + ROW_GROUP, bounds[f + 1])
                block = X[rng.integers(0, len(X), stop - start)].astype(np.float64)
                nulls = np.zeros_like(block, dtype=bool)
                lo, hi = np.searchsorted(bad_ids, [start, stop])
                for i, j, kind in zip(bad_ids[lo:hi] - start, bad_cols[lo:hi], kinds[lo:hi]):
                    if kind == "null":
                        nulls[i, j] = True
                    else:
                        block[i, j] = float(kind)
                arrays = [pa.array(np.arange(start, stop, dtype=np.int64))]
                arrays += [pa.array(block[:, j], mask=nulls[:, j] if nulls[:, j].any() else None)
                           for j in range(len(names))]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP)
    return {"bad_ids": bad_ids, "bad_kinds": kinds}


# Runs `deepod-mnp ARGS` and, at exit, writes the process's peak resident memory (VmHWM of
# /proc/self/status: the memory of this program since its exec, unlike ru_maxrss, which Linux carries
# over from the parent that forked it) to the file $PEAK_FILE.
_WRAPPER = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(kb)
atexit.register(peak)
sys.argv = ["deepod-mnp", *sys.argv[1:]]
runpy.run_module("deepod_mnp.cli", run_name="__main__")
"""


def run_measured(args: list[str], *, env: dict[str, str] | None = None,
                 timeout: float = 3600) -> dict[str, Any]:
    """Run ``deepod-mnp ARGS`` (absolute paths) in a fresh interpreter in a temporary directory; its exit
    code, wall time, peak resident memory and output."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file, out_file, err_file = (Path(tmp) / name for name in ("peak", "out", "err"))
        start = time.perf_counter()
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            try:
                code = subprocess.run([sys.executable, "-c", _WRAPPER, *args], stdout=out, stderr=err,
                                      env={**os.environ, **(env or {}), "PEAK_FILE": str(peak_file)},
                                      cwd=tmp, timeout=timeout).returncode  # cwd: not this checkout
            except subprocess.TimeoutExpired:
                code = None
        wall = time.perf_counter() - start
        peak = int(peak_file.read_text()) if peak_file.exists() else 0
        return {"returncode": code, "seconds": round(wall, 2), "peak_rss_mb": round(peak / 1024),
                "stdout": out_file.read_text(errors="replace"),
                "stderr": err_file.read_text(errors="replace")}
