"""Fit time of MNP (library defaults) with torch's default thread count against one thread.

Usage::

    python scripts/fit_threads.py [--data pendigits gamma] [--repeats 3] [--data-root DIR]

Each fit runs in a fresh Python process (so that no thread pool is warm from
the previous one), alternating the two settings, on all rows of each data set
with 1% of its anomalies labeled (at least one), as ``deepod-mnp fit`` would
fit a user's file. ``default`` is torch's own choice (one thread per core;
``DEEPOD_MNP_FIT_THREADS=torch``, which keeps ``fit`` from setting its own);
``1`` is one thread, ``fit``'s default. Prints a Markdown table of the median
and range of the wall-clock fit time and the machine's load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
from deepod_mnp import MNP
from deepod_mnp.data import load_dataset
spec, root = sys.argv[1], sys.argv[2] or None
data = load_dataset(spec, root)
y = np.zeros_like(data.y)
anomalies = np.flatnonzero(data.y == 1)
y[anomalies[: max(1, int(np.ceil(0.01 * len(anomalies))))]] = 1
start = time.perf_counter()
model = MNP(device="cpu").fit(data.X, y)
print(json.dumps({"seconds": time.perf_counter() - start, "threads": model.fit_info_["torch_threads"],
                  "shape": list(data.X.shape)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["pendigits", "gamma"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", default="")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    rows = []
    for spec in args.data:
        times: dict[str, list[float]] = {"default": [], "1": []}
        info: dict = {}
        loads = []
        for _ in range(args.repeats):
            for setting in ("default", "1"):
                loads.append(os.getloadavg()[0])
                env["DEEPOD_MNP_FIT_THREADS"] = "torch" if setting == "default" else setting
                out = subprocess.run([sys.executable, "-c", CHILD, spec, args.data_root], env=env,
                                     check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                times[setting].append(result["seconds"])
                info[setting] = result
        for setting, values in times.items():
            rows.append((spec, "x".join(map(str, info[setting]["shape"])), info[setting]["threads"], setting,
                         np.median(values), min(values), max(values), np.mean(loads)))
    print(f"MNP().fit, library defaults; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {args.repeats} fresh processes per setting, alternating.\n")
    print("| data | rows x features | torch threads | setting | median fit (s) | min | max | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, shape, threads, setting, med, lo, hi, load in rows:
        print(f"| {spec} | {shape} | {threads} | {setting} | {med:.1f} | {lo:.1f} | {hi:.1f} | {load:.1f} |")


if __name__ == "__main__":
    main()
