"""The benchmark harness: the protocol of ``PROTOCOL.md``, a resumable runner and reports."""
from __future__ import annotations

from deepod_mnp.benchmark.protocol import (
    METRICS,
    Split,
    auc_pr,
    auc_roc,
    average_precision,
    evaluate,
    make_split,
)
from deepod_mnp.benchmark.report import metric_table, results_frame, wilcoxon_table, write_report
from deepod_mnp.benchmark.runner import BenchmarkConfig, run_benchmark

__all__ = ["METRICS", "Split", "auc_pr", "auc_roc", "average_precision", "evaluate", "make_split",
           "BenchmarkConfig", "run_benchmark", "metric_table", "results_frame", "wilcoxon_table",
           "write_report"]
