"""Peak memory of ``deepod-mnp score`` from 1M to 10M rows, on one Parquet file of 1Mi-row groups and on a
directory of files.

Data: ADBench ALOI (``../shared/data/adbench_pool/1_ALOI.npz``: 49,534 real rows, 27 features) drawn
with replacement (seed 0) to N rows, with an ``id`` column, written with 1Mi-row groups (pandas'
default): ``file`` is one file; ``directory`` is files of ``--file-rows`` rows each. Model: MNP with its
defaults fitted on ALOI, 1 % of its anomalies labeled (seed 42). Each run is a fresh
``deepod-mnp score --keep id --label --threads 1`` process; its peak resident memory is the VmHWM of
``/proc/self/status`` at exit, the table is written by this process beforehand.

``--code DIR`` measures another version of the package (``PYTHONPATH=DIR``), e.g. the one before
bounded reads: ``mkdir /tmp/before && git archive COMMIT deepod_mnp | tar -x -C /tmp/before``.

    python scripts/score_memory_layouts.py --out results/serving/score_memory_layouts
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from serving_figures_data import ROOT, fit_mnp, machine, run_measured, write_resampled

DATA = ROOT.parent / "shared" / "data" / "adbench_pool" / "1_ALOI.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--layouts", nargs="+", default=["file", "directory"], choices=["file", "directory"])
    parser.add_argument("--file-rows", type=int, default=500_000,
                        help="rows per file of the directory layout")
    parser.add_argument("--code", type=Path, default=None, help="PYTHONPATH of the measured command")
    parser.add_argument("--out", type=Path, default=Path("results/serving/score_memory_layouts"))
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA} is missing (../shared/data beside the repository)")
    with np.load(DATA) as npz:
        X, y = npz["X"], npz["y"].astype(int)
    names = [f"f{j}" for j in range(X.shape[1])]
    env = {"PYTHONPATH": str(args.code.resolve())} if args.code else {}
    results = {"machine": machine(), "code": "this checkout" if not args.code else "--code (another version)",
               "data": "ADBench ALOI (49,534 x 27) drawn with replacement, seed 0; 1Mi-row groups",
               "file_rows": args.file_rows, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fit_mnp(X, y, names).save_model(tmp / "mnp.pt")
        for layout in args.layouts:
            for n in args.rows:
                data = tmp / f"{layout}-{n}" if layout == "directory" else tmp / f"{layout}-{n}.parquet"
                files = -(-n // args.file_rows) if layout == "directory" else 1
                write_resampled(X, names, data, n, files=files)
                out = tmp / "scores.parquet"
                cmd = ["score", "--model", str(tmp / "mnp.pt"), "--data", str(data), "--out",
                       str(out), "--keep", "id", "--label", "--threads", "1", "--no-progress"]
                run = run_measured(cmd, env=env)
                if run["returncode"]:
                    raise SystemExit(run["stderr"])
                row = {"layout": layout, "rows": n, "files": files, "seconds": run["seconds"],
                       "peak_rss_mb": run["peak_rss_mb"], "rows_per_s": round(n / run["seconds"])}
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                out.unlink()
                if layout == "directory":
                    for f in data.iterdir():
                        f.unlink()
                    data.rmdir()
                else:
                    data.unlink()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = ["| layout | rows | files | seconds | rows/s | peak RSS (MB) | vs. the smallest |",
             "|---|---|---|---|---|---|---|"]
    for layout in args.layouts:
        runs = [r for r in results["runs"] if r["layout"] == layout]
        for r in runs:
            growth = r["peak_rss_mb"] / runs[0]["peak_rss_mb"] - 1
            lines.append(f"| {layout} | {r['rows']:,} | {r['files']} | {r['seconds']} | "
                         f"{r['rows_per_s']:,} | {r['peak_rss_mb']:,} | {growth:+.0%} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
