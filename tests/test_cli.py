"""The ``deepod-mnp bench`` command end to end on a tiny data set (and resuming it)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import types

import numpy as np
import pandas as pd
import pytest

import deepod_mnp.benchmark.runner as runner
from deepod_mnp.cli import main
from deepod_mnp.registry import DETECTORS, DetectorSpec

MNP_PARAMS = {"MNP": {"epochs": 1, "pretrain_epochs": 1, "epoch_steps": 8, "n_prototypes": 2}}


class Broken:
    """A detector that cannot be fitted."""

    def __init__(self, random_state: int = 42) -> None:
        self.random_state = random_state

    def fit(self, X, y=None):
        raise RuntimeError("boom: this detector always fails")


def register_broken(monkeypatch) -> None:
    module = types.ModuleType("fake_detectors")
    module.Broken = Broken
    monkeypatch.setitem(sys.modules, "fake_detectors", module)
    spec = DetectorSpec("Broken", "fake_detectors", "Broken", has_device=False)
    monkeypatch.setitem(DETECTORS, "Broken", spec)


def bench_args(npz, out, runs=2, params=MNP_PARAMS) -> list[str]:
    return ["bench", "--data", str(npz), "--models", "IForest,MNP,Broken", "--runs", str(runs),
            "--out", str(out), "--params", json.dumps(params), "--device", "cpu", "--threads", "1",
            "--no-progress"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """Run the benchmark once: ``(npz path, output dir, printed text)``."""
    tmp = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(400, 5)), rng.normal(3, 1, size=(40, 5))])
    X[:, 4] = 1.0  # constant: the protocol drops it
    np.savez(tmp / "tiny.npz", X=X, y=np.r_[np.zeros(400), np.ones(40)].astype(int))
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        register_broken(mp)
        assert main(bench_args(tmp / "tiny.npz", tmp / "out")) == 0
    return tmp / "tiny.npz", tmp / "out", printed.getvalue()


def test_output_files_are_written(bench_run):
    _, out, _ = bench_run
    assert sorted(p.name for p in (out / "jobs").iterdir()) == sorted(
        f"tiny__{m}__{s}.json" for m in ("IForest", "MNP", "Broken") for s in (42, 43))
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = pd.read_csv(out / "results.csv")
    # models in registry order (MNP first), names unknown to the registry last
    assert len(results) == 6 and results["model"].unique().tolist() == ["MNP", "IForest", "Broken"]
    assert json.loads((out / "results.json").read_text())[0]["dataset"] == "tiny"


def test_results_hold_the_protocol_and_metrics(bench_run):
    _, out, _ = bench_run
    results = pd.read_csv(out / "results.csv")
    ok = results[results["model"].isin(["IForest", "MNP"])]
    assert (ok["status"] == "ok").all()
    assert ok["auc_pr"].between(0, 1).all() and ok["auc_roc"].between(0, 1).all()
    assert (ok["fit_time"] > 0).all() and (ok["score_time"] > 0).all()
    # 440 rows, 40 anomalies: train 240 + 24, test 140 + 14; the constant column is dropped
    assert set(ok["n_train"]) == {264} and set(ok["n_test"]) == {152} and set(ok["n_features"]) == {4}
    assert set(ok["n_labeled"]) == {1}
    mnp = json.loads((out / "jobs" / "tiny__MNP__42.json").read_text())
    assert mnp["params"] == MNP_PARAMS["MNP"] and mnp["seed"] == 42 and mnp["threads"] == 1
    assert mnp["environment"]["versions"]["deepod"]


def test_crashing_detector_is_recorded_as_failed(bench_run):
    _, out, _ = bench_run
    results = pd.read_csv(out / "results.csv")
    broken = results[results["model"] == "Broken"]
    assert broken["status"].tolist() == ["failed", "failed"]
    assert broken["error_type"].tolist() == ["RuntimeError"] * 2
    assert broken["error"].str.contains("boom").all() and broken["auc_pr"].isna().all()
    summary = (out / "summary.md").read_text()
    failed_section = summary.split("## Failed runs")[1].split("##")[0]
    assert failed_section.count("RuntimeError") == 2


def test_summary_tables(bench_run):
    _, out, printed = bench_run
    summary = (out / "summary.md").read_text()
    results = pd.read_csv(out / "results.csv")
    mnp = results.loc[results["model"] == "MNP", "auc_pr"]
    row = next(line for line in summary.split("## AUC-PR")[1].splitlines() if line.startswith("| tiny |"))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    assert cells[1] == f"{mnp.mean():.3f} ± {mnp.std(ddof=0):.3f}" and cells[3] == "failed"
    assert "| Average |" in summary and "## AUC-ROC" in summary and "## Fit time" in summary
    assert "| IForest | 1 |" in summary and "n/a" in summary.split("## Wilcoxon")[1]
    assert f"Summary: {out / 'summary.md'}" in printed
    assert "| data set | MNP | IForest | Broken |" in printed
    assert "tiny: 440 rows x 5 features" in printed


def test_rerun_skips_finished_jobs(bench_run, monkeypatch):
    npz, out, _ = bench_run
    register_broken(monkeypatch)
    before = (out / "results.csv").read_text()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished job was run again")

    monkeypatch.setattr(runner, "run_job", must_not_run)
    assert main(bench_args(npz, out)) == 0
    assert (out / "results.csv").read_text().split("\n")[1:] == before.split("\n")[1:]


def test_more_runs_run_only_the_new_seed(bench_run, tmp_path, monkeypatch):
    npz, out, _ = bench_run
    register_broken(monkeypatch)
    shutil.copytree(out, tmp_path / "out")
    calls = []
    real = runner.run_job
    monkeypatch.setattr(runner, "run_job", lambda job, *a, **k: calls.append(job) or real(job, *a, **k))
    assert main(bench_args(npz, tmp_path / "out", runs=3)) == 0
    assert sorted((j.model, j.seed) for j in calls) == [("Broken", 44), ("IForest", 44), ("MNP", 44)]
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 9


def test_other_settings_in_the_same_directory_are_refused(bench_run, monkeypatch):
    npz, out, _ = bench_run
    register_broken(monkeypatch)
    with pytest.raises(ValueError, match="use another output directory"):
        main(bench_args(npz, out, params={"MNP": {"epochs": 2}}))


def test_bad_params_and_models_are_usage_errors(bench_run, capsys):
    npz, out, _ = bench_run
    with pytest.raises(SystemExit):
        main(["bench", "--data", str(npz), "--out", str(out), "--params", "{not json"])
    assert "--params is not valid JSON" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown model 'NoSuch'"):
        main(["bench", "--data", str(npz), "--out", str(out), "--models", "NoSuch"])


@pytest.mark.skipif(runner.importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray_says_how_to_install(bench_run):
    npz, out, _ = bench_run
    with pytest.raises(ImportError, match=r"pip install 'deepod-mnp\[ray\]'"):
        main(["bench", "--data", str(npz), "--out", str(out), "--n-jobs", "2", "--backend", "ray"])
