"""``deepod-mnp bench --backend ray`` on a real local Ray instance: records, progress, crashes, resume."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import deepod_mnp.benchmark.runner as runner
from deepod_mnp.cli import main

ray = pytest.importorskip("ray", reason="Ray is not installed (the dev extra installs it)")

PARAMS = {"MNP": {"epochs": 1, "pretrain_epochs": 1, "epoch_steps": 8, "n_prototypes": 2}}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(400, 5)), rng.normal(3, 1, size=(40, 5))])
    path = tmp_path_factory.mktemp("ray") / "tiny.npz"
    np.savez(path, X=X, y=np.r_[np.zeros(400), np.ones(40)].astype(int))
    return path


def _records(out) -> dict[int, dict]:
    return {r["seed"]: r for r in (json.loads(p.read_text()) for p in (out / "jobs").glob("*.json"))}


def _args(npz, out, *extra) -> list[str]:
    return ["bench", "--data", str(npz), "--models", "MNP", "--runs", "2", "--out", str(out),
            "--params", json.dumps(PARAMS), "--device", "cpu", "--threads", "1", "--n-jobs", "2",
            "--backend", "ray", *extra]


class _Bar:
    """Records what the runner's progress bar is told."""

    totals: list = []
    updates: list = []

    def __init__(self, *args, total=None, **kwargs) -> None:
        _Bar.totals.append(total)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        _Bar.updates.append(n)


def _crash_on_seed_43(job, data, **kwargs):
    if job.seed == 43:
        os._exit(3)  # the Ray worker process dies mid-job
    return _real_run_job(job, data, **kwargs)


_real_run_job = runner.run_job


def test_ray_backend_runs_records_and_resumes(local_ray, npz, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "tqdm", _Bar)
    _Bar.totals, _Bar.updates = [], []
    assert main(_args(npz, out)) == 0
    assert _Bar.totals == [2] and _Bar.updates == [1, 1]  # one update per finished job
    records = [json.loads(p.read_text()) for p in sorted((out / "jobs").glob("*.json"))]
    assert [(r["model"], r["seed"], r["status"], r["backend"]) for r in records] == [
        ("MNP", 42, "ok", "ray"), ("MNP", 43, "ok", "ray")]
    assert all(0.0 < r["auc_pr"] <= 1.0 and r["n_jobs"] == 2 for r in records)
    # the same seed gives the same result as a serial run in this process
    serial = tmp_path / "serial"
    assert main([*_args(npz, serial)[:-4], "--n-jobs", "1"]) == 0
    serial_pr = {seed: r["auc_pr"] for seed, r in _records(serial).items()}
    assert {r["seed"]: r["auc_pr"] for r in records} == pytest.approx(serial_pr, abs=1e-12)
    # resume: nothing is rerun, the records stay as they are
    before = {p.name: p.read_text() for p in (out / "jobs").glob("*.json")}
    monkeypatch.setattr(runner, "_execute_ray", lambda *a: pytest.fail("a finished job was rerun"))
    _Bar.totals, _Bar.updates = [], []
    assert main(_args(npz, out)) == 0
    assert _Bar.totals == [0] and _Bar.updates == []
    assert {p.name: p.read_text() for p in (out / "jobs").glob("*.json")} == before


def test_a_dead_ray_worker_is_a_failed_record_and_can_be_retried(local_ray, npz, tmp_path, monkeypatch):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship the crashing job by value
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "run_job", _crash_on_seed_43)
    assert main(_args(npz, out, "--no-progress")) == 0
    status = _records(out)
    assert status[42]["status"] == "ok"
    assert status[43]["status"] == "failed" and "Worker" in status[43]["error_type"] + status[43]["error"]
    monkeypatch.setattr(runner, "run_job", _real_run_job)
    assert main(_args(npz, out, "--no-progress", "--retry-failed")) == 0
    status = {seed: r["status"] for seed, r in _records(out).items()}
    assert status == {42: "ok", 43: "ok"}
