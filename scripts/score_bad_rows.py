"""``deepod-mnp score`` on an 8M-row Parquet table with 0.1 % bad rows, under each bad-row policy.

Data: the Pendigits copy bundled with deepod-mnp (6,870 real rows, 16 features) drawn with replacement
(seed 0) to ``--rows`` rows, with an ``id`` column, written with 1Mi-row groups (pandas' default). A
clean copy, and a dirty one in which ``--bad-share`` of the rows (drawn without replacement, seed 0)
have one bad value in one random feature: NaN, +inf, -inf, 1e39 (beyond float32) and null in turn.
Model: MNP with its defaults fitted on Pendigits, 1 % of its anomalies labeled (seed 42); the scores
are not evaluated here, only counted and timed.

Runs (each a fresh ``deepod-mnp score --keep id --label --threads 1`` process; wall time, and peak
RSS as the VmHWM of its ``/proc/self/status`` at exit): the clean table (default policy), then the
dirty one with ``--invalid error``, ``skip`` and ``quarantine``. Checks that rows read = rows
scored + rows rejected, that the rejected rows are exactly the bad ones, and that the quarantine file
holds them. Writes ``OUT.json`` and ``OUT.md``.

    python scripts/score_bad_rows.py --out results/serving/score_bad_rows
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from serving_figures_data import fit_mnp, machine, run_measured, write_resampled

from deepod_mnp.datasets import load_pendigits
from deepod_mnp.serving.stream import read_summary, rejected_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--bad-share", type=float, default=0.001)
    parser.add_argument("--out", type=Path, default=Path("results/serving/score_bad_rows"))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the tables go (default: a temporary directory)")
    args = parser.parse_args()
    X, y = load_pendigits()
    names = [f"f{j}" for j in range(X.shape[1])]
    results = {"machine": machine(), "rows": args.rows, "bad_share": args.bad_share,
               "data": "bundled Pendigits (6,870 x 16) drawn with replacement, seed 0; 1Mi-row groups",
               "runs": []}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        model = fit_mnp(X, y, names)
        model.save_model(tmp / "mnp.pt")
        write_resampled(X, names, tmp / "clean.parquet", args.rows)
        bad = write_resampled(X, names, tmp / "dirty.parquet", args.rows, bad_share=args.bad_share)
        n_bad = len(bad["bad_ids"])
        results["bad_rows"] = n_bad
        results["bad_kinds"] = {k: int((bad["bad_kinds"] == k).sum()) for k in np.unique(bad["bad_kinds"])}
        print(f"tables written: {args.rows:,} rows, {n_bad:,} bad", flush=True)
        runs = (("clean", "error"), ("dirty", "error"), ("dirty", "skip"), ("dirty", "quarantine"))
        for table, policy in runs:
            out = tmp / f"{table}-{policy}" / "scores.parquet"
            cmd = ["score", "--model", str(tmp / "mnp.pt"), "--data", str(tmp / f"{table}.parquet"),
                   "--out", str(out), "--keep", "id", "--label", "--threads", "1", "--no-progress",
                   "--invalid", policy]
            run = run_measured(cmd)
            message = (run["stderr"].strip().splitlines() or [""])[-1] if run["returncode"] else run["stdout"]
            row = {"table": table, "policy": policy, "exit": run["returncode"], "seconds": run["seconds"],
                   "peak_rss_mb": run["peak_rss_mb"], "message": message.strip().replace(str(tmp), "TMP")}
            if run["returncode"] == 0:
                summary = read_summary(out)
                by_kind: dict[str, int] = {}
                for key, count in summary.rejected_by.items():  # '<column>: <what>' -> what
                    by_kind[key.split(": ", 1)[1]] = by_kind.get(key.split(": ", 1)[1], 0) + count
                row.update(rows_read=summary.rows_read, rows_scored=summary.rows_scored,
                           rows_rejected=summary.rows_rejected, rejected_by_kind=by_kind,
                           rows_per_s=round(summary.rows_read / run["seconds"]))
                assert summary.rows_read == summary.rows_scored + summary.rows_rejected == args.rows
                assert summary.rows_rejected == (n_bad if table == "dirty" else 0)
                assert pq.read_metadata(out).num_rows == summary.rows_scored
                if policy == "quarantine":
                    rejected = pq.read_table(rejected_path(out), columns=["id", "row"])
                    assert np.array_equal(np.sort(rejected.column("id").to_numpy()), bad["bad_ids"])
                    row["quarantine_rows"] = rejected.num_rows
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = ["| table | --invalid | exit | rows read | scored | rejected | seconds | rows/s "
             "| peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        counts = [f"{r[k]:,}" if k in r else "—" for k in ("rows_read", "rows_scored", "rows_rejected",
                                                          "rows_per_s")]
        lines.append(f"| {r['table']} | {r['policy']} | {r['exit']} | {counts[0]} | {counts[1]} | "
                     f"{counts[2]} | {r['seconds']} | {counts[3]} | {r['peak_rss_mb']:,} |")
    errors = [f"- `{r['table']}` / `{r['policy']}`: {r['message']}" for r in results["runs"] if r["exit"]]
    errors += [f"- `{r['table']}` / `{r['policy']}` rejected by kind: {r['rejected_by_kind']}"
               for r in results["runs"] if r.get("rows_rejected")]
    args.out.with_suffix(".md").write_text("\n".join(lines + [""] + errors) + "\n", encoding="utf-8")
    print("\n".join(lines + errors))


if __name__ == "__main__":
    main()
