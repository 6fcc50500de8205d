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
import torch

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


def test_fresh_run_goes_seed_by_seed(tmp_path, monkeypatch):
    # every model once per seed, so the progress bar's mean time per job (its ETA) is right early
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(200, 3)), rng.normal(3, 1, size=(20, 3))])
    np.savez(tmp_path / "small.npz", X=X, y=np.r_[np.zeros(200), np.ones(20)].astype(int))
    register_broken(monkeypatch)
    calls = []
    real = runner.run_job
    monkeypatch.setattr(runner, "run_job", lambda job, *a, **k: calls.append(job) or real(job, *a, **k))
    args = ["bench", "--data", str(tmp_path / "small.npz"), "--models", "IForest,Broken", "--runs", "2",
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    assert [(j.model, j.seed) for j in calls] == [("IForest", 42), ("Broken", 42), ("IForest", 43),
                                                  ("Broken", 43)]


def _usage_error(capsys, argv) -> str:
    """Run the CLI expecting a usage error: exit status 2 and exactly one line on stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def no_job_may_run(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a job ran before the usage error was found")

    monkeypatch.setattr(runner, "run_job", must_not_run)


def test_other_settings_in_the_same_directory_are_refused(bench_run, monkeypatch, capsys, no_job_may_run):
    npz, out, _ = bench_run
    register_broken(monkeypatch)
    err = _usage_error(capsys, bench_args(npz, out, params={"MNP": {"epochs": 2}}))
    assert "use another output directory" in err and "tiny__MNP__42.json" in err


def test_bad_params_and_models_are_usage_errors(bench_run, capsys, no_job_may_run):
    npz, out, _ = bench_run
    err = _usage_error(capsys, ["bench", "--data", str(npz), "--out", str(out), "--params", "{not json"])
    assert "--params is not valid JSON" in err
    err = _usage_error(capsys, ["bench", "--data", str(npz), "--out", str(out), "--models", "MNP,NoSuch"])
    assert "unknown model(s) 'NoSuch'" in err and "DevNet" in err


def test_missing_file_and_label_column_are_one_line_errors(tmp_path, capsys, no_job_may_run):
    err = _usage_error(capsys, ["bench", "--data", str(tmp_path / "absent.npz"),
                                "--out", str(tmp_path / "o")])
    assert err.startswith("deepod-mnp bench: error: No data file") and "absent.npz" in err
    err = _usage_error(capsys, ["bench", "--data", "gamma", "--data-root", str(tmp_path),
                                "--out", str(tmp_path / "o")])
    assert "ADBench" in err and str(tmp_path / "adbench" / "22_magic.gamma.npz") in err
    pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    err = _usage_error(capsys, ["bench", "--data", f"{tmp_path / 't.csv'}:label=class",
                                "--out", str(tmp_path / "o")])
    assert "['class'] not found" in err and "'a', 'y'" in err
    err = _usage_error(capsys, ["experiment", "ratio", "--data", str(tmp_path / "absent.npz"),
                                "--out", str(tmp_path / "o")])
    assert "No data file" in err


def test_out_naming_a_file_fails_before_any_job(bench_run, tmp_path, capsys, no_job_may_run):
    npz, _, _ = bench_run
    (tmp_path / "taken").write_text("not a directory")
    err = _usage_error(capsys, ["bench", "--data", str(npz), "--models", "IForest",
                                "--out", str(tmp_path / "taken")])
    assert "is a file, not a directory" in err
    err = _usage_error(capsys, ["bench", "--data", str(npz), "--models", "IForest",
                                "--out", str(tmp_path / "taken" / "sub")])
    assert "cannot create the directory" in err
    assert "is a file" in _usage_error(capsys, ["demo", "--out", str(tmp_path / "taken")])
    assert "No job records" in _usage_error(capsys, ["report", "--out", str(tmp_path)])


def test_corrupt_record_is_rerun_with_a_warning(bench_run, tmp_path, monkeypatch, caplog):
    npz, out, _ = bench_run
    register_broken(monkeypatch)
    shutil.copytree(out, tmp_path / "out")
    bad = tmp_path / "out" / "jobs" / "tiny__IForest__43.json"
    good = json.loads(bad.read_text())
    bad.write_text(bad.read_text()[:40])  # truncated, as by a crash or a bad copy
    calls = []
    real = runner.run_job
    monkeypatch.setattr(runner, "run_job", lambda job, *a, **k: calls.append(job) or real(job, *a, **k))
    with caplog.at_level("WARNING"):
        assert main(bench_args(npz, tmp_path / "out")) == 0
    assert [(j.model, j.seed) for j in calls] == [("IForest", 43)]
    assert any("Unreadable job record" in r.message and str(bad) in r.message for r in caplog.records)
    rerun = json.loads(bad.read_text())
    assert rerun["auc_pr"] == good["auc_pr"] and rerun["status"] == "ok"


def test_report_leaves_out_a_corrupt_record_with_a_warning(bench_run, tmp_path, caplog, capsys):
    _, out, _ = bench_run
    shutil.copytree(out, tmp_path / "out")
    bad = tmp_path / "out" / "jobs" / "tiny__MNP__42.json"
    bad.write_text("{\"dataset\": \"tiny\", ")
    with caplog.at_level("WARNING"):
        assert main(["report", "--out", str(tmp_path / "out")]) == 0
    assert any(str(bad) in r.message for r in caplog.records)
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == 5 and results[results["model"] == "MNP"]["seed"].tolist() == [43]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "± n/a" in summary  # MNP has one seed left


def test_records_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "jobs" / "a.json"
    runner._write_json(path, {"x": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        runner._write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left


def test_records_hold_the_device_used(bench_run):
    _, out, _ = bench_run
    mnp = json.loads((out / "jobs" / "tiny__MNP__42.json").read_text())
    forest = json.loads((out / "jobs" / "tiny__IForest__42.json").read_text())
    assert mnp["device"] == "cpu" and mnp["device_requested"] == "cpu" and forest["device"] == "cpu"
    X = np.random.default_rng(0).normal(size=(60, 3))
    data = {"X_train": X[:40], "y_train_semi": np.r_[np.zeros(39), 1].astype(int), "X_test": X[40:],
            "y_test": np.r_[np.zeros(18), 1, 1].astype(int)}
    record = runner.run_job(runner.Job("d", "MNP", 0), data, device="auto", params=MNP_PARAMS["MNP"])
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert record["status"] == "ok" and record["device_requested"] == "auto"
    assert record["device"].split(":")[0] == expected


def test_ray_backend_without_ray_says_how_to_install(bench_run, capsys, monkeypatch):
    """Ray is hidden (the dev extra installs it): the error a user without it meets."""
    find_spec = runner.importlib.util.find_spec
    monkeypatch.setattr(runner.importlib.util, "find_spec",
                        lambda name, *args: None if name == "ray" else find_spec(name, *args))
    npz, out, _ = bench_run
    err = _usage_error(capsys, ["bench", "--data", str(npz), "--out", str(out), "--n-jobs", "2",
                                "--backend", "ray"])
    assert "pip install 'deepod-mnp[ray]'" in err
