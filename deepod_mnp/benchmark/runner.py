"""Run (data set, model, seed) jobs under the protocol, resumably and optionally in parallel.

Each job fits ``make_detector(model, random_state=seed)`` on the train split
with its weak labels and scores the test split. Its result is written to
``OUT/jobs/<dataset>__<model>__<seed>.json`` as soon as it finishes, and a job
whose file exists is skipped: an interrupted run resumes where it stopped, more
seeds or models can be added later, and rerunning a command rebuilds the same
table. A detector that raises is recorded with ``status='failed'`` and its
error; the run goes on.

Parallelism and timings
-----------------------
``n_jobs > 1`` runs jobs in joblib worker processes (the ``loky`` backend). Each
job limits torch (``torch.set_num_threads``) and BLAS/OpenMP (``threadpoolctl``)
to ``threads`` threads: the ``threads`` setting, else ``$OMP_NUM_THREADS`` when
set, else 1 (small networks fit faster on one thread; ``n_jobs`` fills the
other cores), so that workers do not oversubscribe the CPU. Fit and score
times therefore depend on ``n_jobs`` and on what runs beside each job: compare
timings only within one run (same ``n_jobs``, threads and machine), as
``PROTOCOL.md`` asks.

Clusters
--------
``backend='ray'`` sends the jobs to a Ray cluster as Ray tasks (``ray.remote``,
at most ``n_jobs`` at once, collected with ``ray.wait`` as they finish; Ray's
joblib backend cannot return results as they finish). Start the cluster first
(``ray start --head``), then run from a machine of it, or set ``RAY_ADDRESS``,
or call ``ray.init(address=...)`` yourself; install Ray with
``pip install 'deepod-mnp[ray]'``. Results are still written by the calling
process, so ``OUT`` need not be shared, and resume works as without Ray.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from deepod_mnp.benchmark.protocol import Split, evaluate, make_split, subsample_train
from deepod_mnp.benchmark.report import results_frame
from deepod_mnp.data import Dataset
from deepod_mnp.registry import DETECTORS, canonical_name, make_detector

logger = logging.getLogger(__name__)
FIT_THREADS_ENV = "DEEPOD_MNP_FIT_THREADS"  # read by BaseDetector._fit_threads

BACKENDS = ("loky", "ray")
RAY_HINT = "backend='ray' needs Ray: pip install 'deepod-mnp[ray]' (or pip install 'ray[default]')."
_VERSIONED = ("deepod-mnp", "deepod", "torch", "pyod", "scikit-learn", "numpy", "pandas")


@dataclass
class BenchmarkConfig:
    """What to run and how.

    Attributes
    ----------
    models : sequence of str
        Registry names (:data:`deepod_mnp.registry.DETECTORS`, case-insensitive).
    runs : int
        Model seeds ``first_seed .. first_seed + runs - 1``; the split is fixed.
    labeled_ratio : float
        Share of the train anomalies that is labeled (protocol step 4).
    first_seed : int
        First model seed (the protocol's is 42).
    device : str
        ``'auto'``, ``'cpu'`` or ``'cuda[:i]'``, for detectors that take one.
    model_params : dict
        Per-model parameter overrides, e.g. ``{'MNP': {'epochs': 5}}``.
    max_train : int, optional
        Subsample the train split to this many rows (quick runs only; off by default).
    n_jobs : int
        Jobs run at once (1: in this process).
    backend : {'loky', 'ray'}
        Where jobs run when ``n_jobs > 1``: ``'loky'``, joblib's worker
        processes; ``'ray'``, Ray tasks on a Ray cluster (the module's "Clusters").
    threads : int, optional
        torch / BLAS threads per job; default ``$OMP_NUM_THREADS`` when set,
        else 1.
    retry_failed : bool
        Run again the jobs recorded as failed instead of skipping them.
    """

    models: Sequence[str] = ("MNP", "DevNet", "RoSAS")
    runs: int = 5
    labeled_ratio: float = 0.01
    first_seed: int = 42
    device: str = "auto"
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_train: int | None = None
    n_jobs: int = 1
    backend: str = "loky"
    threads: int | None = None
    retry_failed: bool = False

    def __post_init__(self) -> None:
        self.models = list(dict.fromkeys(canonical_name(m) for m in self.models))
        if not self.models:
            raise ValueError(f"No model to run; name at least one of {sorted(DETECTORS)}.")
        self.model_params = {canonical_name(m): dict(p) for m, p in self.model_params.items()}
        if self.runs < 1 or self.n_jobs < 1:
            raise ValueError(f"runs and n_jobs must be >= 1; got runs={self.runs}, n_jobs={self.n_jobs}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}; choose from {BACKENDS}.")
        if self.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ImportError(RAY_HINT)

    @property
    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.runs))

    @property
    def threads_per_job(self) -> int:
        """``threads``, else ``$OMP_NUM_THREADS`` when set, else 1.

        One thread per job is the default because the detectors' networks are
        small: more threads per process slow each fit down (MNP on Pendigits
        took 21.6 s with 2 threads and 9.6 s with 1 on a 2-core machine); use
        ``n_jobs`` to occupy more cores.
        """
        env = os.environ.get("OMP_NUM_THREADS", "")
        default = int(env) if env.isdigit() and int(env) > 0 else 1
        return self.threads or default

    def settings(self, model: str) -> dict[str, Any]:
        """What a stored job must share with this config to be reused (as stored in JSON)."""
        return json.loads(json.dumps({"labeled_ratio": self.labeled_ratio, "max_train": self.max_train,
                                      "params": self.model_params.get(model, {})}, default=_json_default))


class SettingsMismatchError(ValueError):
    """``OUT/jobs`` holds a record of the same job run with other settings (raised before any job runs)."""


@dataclass(frozen=True)
class Job:
    dataset: str
    model: str
    seed: int


def job_path(out_dir: str | os.PathLike, job: Job) -> Path:
    """``OUT/jobs/<dataset>__<model>__<seed>.json`` (unsafe characters replaced by '-')."""
    safe = [re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(part)) for part in (job.dataset, job.model, job.seed)]
    return Path(out_dir) / "jobs" / ("__".join(safe) + ".json")


def read_job(path: str | os.PathLike) -> dict[str, Any]:
    """A job record; raises (``OSError``, ``ValueError``) when it cannot be read."""
    with open(path, encoding="utf-8") as fh:
        record = json.load(fh)
    if not isinstance(record, dict):
        raise ValueError(f"a job record is a JSON object, not {type(record).__name__}")
    return record


def read_job_or_none(path: str | os.PathLike) -> dict[str, Any] | None:
    """The job record at ``path``, or None (with a warning naming the file) when it is unreadable.

    An unreadable record (truncated or corrupt JSON, e.g. written by another
    tool or copied half-way) counts as a job not done: the runner runs it again
    and replaces the file.
    """
    try:
        return read_job(path)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        logger.warning("Unreadable job record %s (%s: %s); treated as not done.", path,
                       type(exc).__name__, exc)
        return None


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` atomically: a complete file appears at ``path`` or nothing changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, default=_json_default)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_default(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)


def environment(device: str = "cpu") -> dict[str, Any]:
    """The machine and library versions a job ran with (protocol step 7)."""
    import torch

    versions = {}
    for dist in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    env = {"host": platform.node(), "platform": platform.platform(),
           "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "python": sys.version.split()[0], "versions": versions}
    uses_cuda = device != "cpu" and torch.cuda.is_available()
    env["gpu"] = torch.cuda.get_device_name(0) if uses_cuda else None
    return env


@contextlib.contextmanager
def limited_threads(n: int) -> Iterator[None]:
    """Limit torch intra-op threads and BLAS/OpenMP pools to ``n`` inside the block.

    Our detectors' ``fit`` sets its own thread count (one, unless
    ``DEEPOD_MNP_FIT_THREADS`` says otherwise; ``BaseDetector._fit_threads``):
    the variable is set to ``n`` inside the block, so every detector of a job
    fits with the job's threads.
    """
    import torch
    from threadpoolctl import threadpool_limits

    old, old_env = torch.get_num_threads(), os.environ.get(FIT_THREADS_ENV)
    torch.set_num_threads(n)
    os.environ[FIT_THREADS_ENV] = str(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)
        if old_env is None:
            os.environ.pop(FIT_THREADS_ENV, None)
        else:
            os.environ[FIT_THREADS_ENV] = old_env


def _failure(exc: BaseException) -> dict[str, Any]:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"status": "failed", "error": str(exc)[:2000] or repr(exc), "error_type": type(exc).__name__,
            "traceback": "".join(tb)[-4000:]}


def run_job(job: Job, data: dict[str, np.ndarray], *, device: str = "auto",
            params: dict[str, Any] | None = None, threads: int = 1) -> dict[str, Any]:
    """Fit one detector on the train split and score the test split; never raises.

    Weakly supervised detectors get the weak labels; unsupervised ones
    (``supervision='unsupervised'`` in the registry) get ``y=None``.

    Parameters
    ----------
    job : Job
        Data set name, model name and model seed.
    data : dict
        ``X_train``, ``y_train_semi``, ``X_test`` and ``y_test`` of a :class:`Split`.
    device : str
        Passed to :func:`deepod_mnp.registry.make_detector`.
    params : dict, optional
        Parameter overrides of the detector.
    threads : int
        torch / BLAS threads for this job.

    Returns
    -------
    dict
        The job record: metrics (``auc_pr``, ``ap``, ``auc_roc``), ``fit_time``
        and ``score_time`` in seconds, sizes, ``status`` and, on failure,
        ``error``, ``error_type`` and ``traceback``.
    """
    record: dict[str, Any] = {
        **asdict(job), "status": "ok", "auc_pr": None, "ap": None, "auc_roc": None,
        "fit_time": None, "score_time": None, "n_train": int(len(data["X_train"])),
        "n_labeled": int(np.sum(data["y_train_semi"])), "n_test": int(len(data["X_test"])),
        "n_features": int(data["X_train"].shape[1]), "device": device, "device_requested": device,
        "threads": threads,
        "params": params or {}, "n_prototypes": None, "chosen": None, "selection_rule": None,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(device), "warnings": [], "error": None, "error_type": None}
    with limited_threads(threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            detector = make_detector(job.model, random_state=job.seed, device=device, **(params or {}))
            record["device"] = _device_used(detector)
            weak = DETECTORS[job.model].supervision == "weak"
            start = time.perf_counter()
            detector.fit(data["X_train"], data["y_train_semi"] if weak else None)
            record["fit_time"] = time.perf_counter() - start
            start = time.perf_counter()
            scores = detector.decision_function(data["X_test"])
            record["score_time"] = time.perf_counter() - start
            record.update(evaluate(data["y_test"], scores))
            record["n_prototypes"] = getattr(detector, "n_prototypes_", None)
            # what a selecting detector chose, and by which rule
            record["chosen"] = getattr(detector, "best_candidate_", None)
            record["selection_rule"] = getattr(detector, "selection_rule_", None)
            record["device"] = _device_used(detector)
        except Exception as exc:  # noqa: BLE001 - a crashing detector is a result, not the end of the run
            record.update(_failure(exc))
    record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:10]
    return record


def _device_used(detector: Any) -> str:
    """``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...: where ``detector`` runs (MNP's ``device_`` once fitted).

    ``'auto'`` before MNP's fit resolves it; ``'cpu'`` for detectors without a
    device (PyOD's IForest).
    """
    device = str(getattr(detector, "device_", None) or getattr(detector, "device", None) or "cpu")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device


def job_data(split: Split) -> dict[str, np.ndarray]:
    """The arrays of a split that a job needs (never the validation data)."""
    return {"X_train": split.X_train, "y_train_semi": split.y_train_semi,
            "X_test": split.X_test, "y_test": split.y_test}


def _stored_settings(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in ("labeled_ratio", "max_train", "params")}


def reuse_jobs(sources: Sequence[str | os.PathLike], jobs: Sequence[Job], config: BenchmarkConfig,
               out_dir: str | os.PathLike) -> int:
    """Copy into ``out_dir`` the successful records of ``jobs`` that another run already made.

    A record is reused only when its job (data set, model, seed) and its
    settings (labeled ratio, ``max_train``, parameters) are those ``config``
    would run, so the result is the one a fresh run would store, up to timing.

    Returns
    -------
    int
        Number of records copied.
    """
    copied = 0
    for job in jobs:
        target = job_path(out_dir, job)
        if target.exists():
            continue
        for source in sources:
            path = job_path(source, job)
            if not path.exists():
                continue
            record = read_job_or_none(path)
            if record is None:
                continue
            if record.get("status") == "ok" and _stored_settings(record) == config.settings(job.model):
                _write_json(target, {**record, "reused_from": str(source)})
                copied += 1
                break
    return copied


def _is_done(path: Path, config: BenchmarkConfig, job: Job) -> bool:
    if not path.exists():
        return False
    record = read_job_or_none(path)
    if record is None:
        return False
    stored = _stored_settings(record)
    if stored != config.settings(job.model):
        raise SettingsMismatchError(f"{path} was run with {stored}, not {config.settings(job.model)}; "
                         "use another output directory for other settings.")
    return not (config.retry_failed and record.get("status") != "ok")


@contextlib.contextmanager
def _parallel_backend(backend: str) -> Iterator[dict[str, Any]]:
    """Yield the ``Parallel`` keyword arguments of a joblib ``backend`` (Ray runs in :func:`_execute_ray`)."""
    yield {"backend": backend}


def _execute(calls: list[tuple[Job, dict[str, np.ndarray], dict[str, Any]]],
             config: BenchmarkConfig) -> Iterator[dict[str, Any]]:
    """Run the calls in this process (``n_jobs=1``), through joblib or on Ray; yield records as they end."""
    if config.n_jobs == 1 or len(calls) <= 1:
        for job, data, kwargs in calls:
            yield run_job(job, data, **kwargs)
        return
    if config.backend == "ray":
        yield from _execute_ray(calls, config)
        return
    with _parallel_backend(config.backend) as backend_kwargs:
        parallel = joblib.Parallel(n_jobs=config.n_jobs, return_as="generator_unordered", **backend_kwargs)
        yield from parallel(joblib.delayed(run_job)(job, data, **kwargs) for job, data, kwargs in calls)


def _crash_record(job: Job, kwargs: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """The record of a job whose Ray task died (worker killed, out of memory, lost node)."""
    return {**asdict(job), "auc_pr": None, "ap": None, "auc_roc": None, "fit_time": None,
            "score_time": None, "device": kwargs.get("device"), "threads": kwargs.get("threads"),
            "params": kwargs.get("params", {}), "n_prototypes": None, "warnings": [], **_failure(exc)}


def _execute_ray(calls: list[tuple[Job, dict[str, np.ndarray], dict[str, Any]]],
                 config: BenchmarkConfig) -> Iterator[dict[str, Any]]:
    """Run the calls as Ray tasks, at most ``n_jobs`` at once, yielding records in completion order.

    Joins the running Ray instance (``ray.init()`` finds a local ``ray start``
    cluster or ``$RAY_ADDRESS``; a process that called ``ray.init`` itself keeps
    its instance). The data set's arrays are put in Ray's object store once and
    shared by its jobs. Each task asks for ``threads`` CPUs and is not retried:
    a task that dies becomes a ``status='failed'`` record like a detector that
    raises.
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_HINT) from exc
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    task = ray.remote(run_job).options(num_cpus=calls[0][2].get("threads", 1), max_retries=0)
    data_refs: dict[int, Any] = {}
    todo = list(calls)[::-1]
    running: dict[Any, tuple[Job, dict[str, Any]]] = {}
    while todo or running:
        while todo and len(running) < config.n_jobs:
            job, data, kwargs = todo.pop()
            if id(data) not in data_refs:
                data_refs[id(data)] = ray.put(data)
            running[task.remote(job, data_refs[id(data)], **kwargs)] = (job, kwargs)
        (ref,), _ = ray.wait(list(running), num_returns=1)
        job, kwargs = running.pop(ref)
        try:
            yield ray.get(ref)
        except ray.exceptions.RayError as exc:
            yield _crash_record(job, kwargs, exc)


def _dataset_split(dataset: Dataset, config: BenchmarkConfig) -> Split:
    split = make_split(dataset.X, dataset.y, labeled_ratio=config.labeled_ratio,
                       test_anomalies=dataset.test_anomalies)
    return subsample_train(split, config.max_train)


def _store(record: dict[str, Any], config: BenchmarkConfig, out_dir: str | os.PathLike) -> None:
    record.update(labeled_ratio=config.labeled_ratio, max_train=config.max_train, n_jobs=config.n_jobs,
                  backend=config.backend if config.n_jobs > 1 else "serial")
    _write_json(job_path(out_dir, Job(record["dataset"], record["model"], record["seed"])), record)
    result = f"AUC-PR {record['auc_pr']:.3f}" if record["status"] == "ok" else record["status"]
    logger.info("%s %s seed %s: %s", record["dataset"], record["model"], record["seed"], result)


def run_benchmark(datasets: Sequence[Dataset], config: BenchmarkConfig, out_dir: str | os.PathLike,
                  *, progress: bool = True, reuse: Sequence[str | os.PathLike] = (),
                  desc: str = "jobs") -> pd.DataFrame:
    """Run every missing (data set, model, seed) job and return the results of all requested jobs.

    Parameters
    ----------
    datasets : sequence of Dataset
        Data sets (their ``name`` identifies them in ``OUT/jobs``).
    config : BenchmarkConfig
        Models, seeds and run settings.
    out_dir : path-like
        Output directory; job records go to ``out_dir/jobs``.
    progress : bool, default=True
        Show a tqdm progress bar over the jobs.
    reuse : sequence of path-like
        Output directories of earlier runs whose matching records are copied
        instead of rerun (see :func:`reuse_jobs`).
    desc : str
        Label of the progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per requested job (see :func:`deepod_mnp.benchmark.report.results_frame`).
    """
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"Data set names must be unique; got {names}.")
    # seed-major order (every model once, then the next seed), so the progress bar's average time per job,
    # and with it its ETA, is right after the first round instead of after the slow model's turn
    jobs = {d.name: [Job(d.name, m, s) for s in config.seeds for m in config.models] for d in datasets}
    if reuse:
        n_reused = reuse_jobs(reuse, [j for js in jobs.values() for j in js], config, out_dir)
        logger.info("Reused %d record(s) from %s.", n_reused, ", ".join(map(str, reuse)))
    pending = {name: [j for j in js if not _is_done(job_path(out_dir, j), config, j)]
               for name, js in jobs.items()}
    n_pending = sum(map(len, pending.values()))
    logger.info("%d job(s) to run, %d already done.", n_pending, sum(map(len, jobs.values())) - n_pending)
    with tqdm(total=n_pending, desc=desc, unit="job", disable=not progress, smoothing=0) as bar:
        for dataset in datasets:
            if not pending[dataset.name]:
                continue
            data = job_data(_dataset_split(dataset, config))
            calls = [(job, data, {"device": config.device, "params": config.model_params.get(job.model, {}),
                                  "threads": config.threads_per_job}) for job in pending[dataset.name]]
            for record in _execute(calls, config):
                _store(record, config, out_dir)
                bar.update()
    records = [read_job(job_path(out_dir, j)) for js in jobs.values() for j in js]
    return results_frame(records)
