"""The paper's experiments: settings, the unseen-type split, record reuse, reports and the CLI."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from deepod_mnp import MNP
from deepod_mnp.benchmark import experiments as ex
from deepod_mnp.benchmark.paper import TABLE4
from deepod_mnp.benchmark.protocol import make_split
from deepod_mnp.benchmark.runner import BenchmarkConfig, Job, job_path, read_job, reuse_jobs, run_benchmark
from deepod_mnp.cli import main
from deepod_mnp.data import Dataset, load_unseen_pairs

TINY = {"MNP": {"epochs": 1, "pretrain_epochs": 1, "epoch_steps": 6, "n_ensemble": 1, "batch_size": 64,
                "anomaly_batch_size": 8}}


def blobs(n_normal: int = 300, n_anomaly: int = 30, seed: int = 0) -> Dataset:
    """Two normal modes and one anomaly cluster in 4-D (synthetic: for mechanics only)."""
    rng = np.random.default_rng(seed)
    half = n_normal // 2
    normal = np.vstack([rng.normal(0, 0.3, (half, 4)), rng.normal(3, 0.3, (n_normal - half, 4))])
    anomaly = rng.normal(-3, 0.3, (n_anomaly, 4))
    y = np.r_[np.zeros(n_normal), np.ones(n_anomaly)].astype(int)
    return Dataset("blobs", np.vstack([normal, anomaly]), y)


def config(**kw) -> BenchmarkConfig:
    return BenchmarkConfig(**{"models": ["MNP"], "runs": 1, "device": "cpu", "threads": 1,
                              "model_params": TINY, **kw})


# --- the unseen-type split ---

def test_unseen_anomalies_replace_the_test_anomalies():
    data = blobs()
    unseen = np.full((40, 4), 9.0) + np.arange(40)[:, None] / 100  # distinguishable rows
    split = make_split(data.X, data.y, test_anomalies=unseen)
    plain = make_split(data.X, data.y)
    # train and validation are untouched: the seen type is there, the unseen type is not
    np.testing.assert_array_equal(split.X_train, plain.X_train)
    np.testing.assert_array_equal(split.y_val, plain.y_val)
    assert split.X_train.max() <= 1.0 and split.X_test.max() > 1.0  # unseen rows lie outside the train range
    # the test split: the same normals, and the unseen type's 35% share as its only anomalies
    np.testing.assert_array_equal(split.X_test[split.y_test == 0], plain.X_test[plain.y_test == 0])
    test_anomalies = split.X_test[split.y_test == 1]
    # 40 -> 24 train / 16 rest; 16 -> 13 test / 3 val (0.05 / (0.35 + 0.05) rounds up past 1/8)
    assert len(test_anomalies) == 13
    assert np.all(test_anomalies > 1.0)  # none of the seen anomalies (scaled to [0, 1]) is left


def test_unseen_anomalies_must_match_the_features():
    data = blobs()
    with pytest.raises(ValueError, match="4 columns"):
        make_split(data.X, data.y, test_anomalies=np.zeros((10, 3)))


def write_unsw_like(path, rng) -> None:
    """A CSV with the raw UNSW-NB15 columns that the loader uses (and a BOM, as the real file)."""
    cats = ["Normal"] * 60 + ["DoS"] * 12 + ["Reconnaissance"] * 10 + ["Analysis"] * 8 + ["Backdoor"] * 6 + \
        ["Exploits"] * 5
    df = pd.DataFrame({"id": np.arange(len(cats)), "dur": rng.random(len(cats)),
                       "proto": rng.choice(["tcp", "udp"], len(cats)),
                       "service": rng.choice(["-", "dns"], len(cats)),
                       "state": rng.choice(["FIN", "INT", "CON"], len(cats)), "attack_cat": cats,
                       "label": [int(c != "Normal") for c in cats]})
    df.to_csv(path, index=False, encoding="utf-8-sig")


def test_unseen_pairs_from_a_unsw_like_csv(tmp_path):
    write_unsw_like(tmp_path / "unsw.csv", np.random.default_rng(0))
    pairs = load_unseen_pairs(tmp_path, path="unsw.csv")
    assert [p.name for p in pairs[:3]] == ["Reconnaissance->DoS", "Analysis->DoS", "Backdoor->DoS"]
    assert len(pairs) == 12 and len({p.name for p in pairs}) == 12
    by_name = {p.name: p for p in pairs}
    pair = by_name["Analysis->Backdoor"]
    assert pair.X.shape == (68, 1 + 2 + 2 + 3)  # dur, one-hot proto/service/state; id, label dropped
    assert pair.y.sum() == 8 and len(pair.test_anomalies) == 6
    assert {p.X.shape[1] for p in pairs} == {8}  # one encoding for every pair
    with pytest.raises(ValueError, match="missing"):
        load_unseen_pairs(tmp_path, types=["DoS", "Worms"], path="unsw.csv")


# --- settings ---

def test_ablation_switches_are_mnp_parameters():
    settings = ex.ablation_settings()
    assert [s.name for s in settings] == list(ex.ABLATIONS)
    known = MNP().get_params()
    for setting in settings[1:]:
        (param, value), = setting.params["MNP"].items()
        assert param in known and value != known[param]  # each switches one default off
    assert settings[0].params == {}


def test_ratio_and_prototype_settings():
    ratios = ex.ratio_settings([0.005, 0.1])
    assert [(s.name, s.labeled_ratio) for s in ratios] == [("ratio_0.005", 0.005), ("ratio_0.1", 0.1)]
    ks = ex.prototype_settings([1, 3])
    assert [s.params.get("MNP") for s in ks] == [{"n_prototypes": 1}, {"n_prototypes": 3}, None]
    assert ks[-1].value == "auto"


def test_contamination_falls_as_more_anomalies_are_labeled():
    data = blobs(n_normal=300, n_anomaly=60)
    n_train_anomalies, n_train = 36, 216  # 60% of each class
    for ratio in (0.01, 0.5, 1.0):
        labeled = int(np.ceil(ratio * n_train_anomalies))
        expected = (n_train_anomalies - labeled) / (n_train - labeled)
        assert ex.contamination(data, ratio) == pytest.approx(expected)


# --- running and reporting ---

@pytest.fixture(scope="module")
def prototypes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prototypes")
    df = ex.run_experiment("prototypes", [blobs()], config(), out, settings=ex.prototype_settings([1, 2]),
                           progress=False)
    return out, df


def test_settings_reach_the_detector(prototypes_run):
    out, df = prototypes_run
    assert list(df["setting"]) == ["k_1", "k_2", "k_auto"] and (df["status"] == "ok").all()
    record = read_job(job_path(out / "k_2", Job("blobs", "MNP", 42)))
    assert record["params"] == {**TINY["MNP"], "n_prototypes": 2}  # config's overrides plus the setting's
    assert list(df["n_prototypes"][:2]) == [1, 2]
    assert 2 <= df["n_prototypes"].iloc[2] <= 10  # the silhouette choice is recorded


def test_experiment_outputs(prototypes_run):
    """What each written file holds: the records, the table of their numbers, a figure of them."""
    import matplotlib.image

    out, df = prototypes_run
    loaded = ex.load_experiment(out)
    pd.testing.assert_series_equal(loaded["auc_pr"], df["auc_pr"])
    csv = pd.read_csv(out / "results.csv")
    np.testing.assert_allclose(csv["auc_pr"], df["auc_pr"])
    assert list(csv["setting"]) == ["k_1", "k_2", "k_auto"]
    records = json.loads((out / "results.json").read_text())
    assert [r["n_prototypes"] for r in records] == list(df["n_prototypes"])
    summary = (out / "summary.md").read_text()
    auc = dict(zip(df["setting"], df["auc_pr"]))  # one seed: the mean is the run's own figure
    assert f"| 1 | {auc['k_1']:.3f} |" in summary and f"| 2 | {auc['k_2']:.3f} |" in summary
    assert f"| auto AUC-PR | {auc['k_auto']:.3f} |" in summary
    assert f"| k chosen (per seed) | {df['n_prototypes'].iloc[2]} |" in summary
    assert f"blobs {max(auc['k_1'], auc['k_2']) - auc['k_1']:+.3f}" in summary  # the gain over k = 1
    image = matplotlib.image.imread(out / "prototypes.png")
    assert image.ndim == 3 and min(image.shape[:2]) > 200 and image.std() > 0.01  # drawn, not blank


def test_ablation_report_tests_each_variant_against_the_full_model():
    rows = []
    for d, base in enumerate([0.5, 0.6, 0.7, 0.8]):
        for seed in (1, 2):
            for setting, drop in (("full", 0.0), ("no_weights", 0.1), ("no_recon_loss", 0.0)):
                rows.append({"dataset": f"d{d}", "seed": seed, "model": "MNP", "status": "ok",
                             "setting": setting, "label": setting,
                             "auc_pr": base - drop + 0.01 * seed * (setting == "no_recon_loss")})
    df = pd.DataFrame(rows).astype({"setting": pd.CategoricalDtype(["full", "no_weights", "no_recon_loss"])})
    table = ex.ablation_table(df)
    assert table.loc["no_weights", "average AUC-PR"] == pytest.approx(0.55)
    assert table["paper"].to_dict() == {s: TABLE4[s] for s in table.index}  # each row's own paper figure
    assert table.loc["no_weights", "wins/losses vs full"] == "0/4"
    assert table.loc["no_weights", "p (runs)"] == pytest.approx(0.0078125)  # 8 pairs, all lower: 2 / 2^8
    assert table.loc["no_recon_loss", "wins/losses vs full"] == "4/0"
    assert np.isnan(table.loc["full", "p (data sets)"])
    summary = ex.ablation_summary(df)
    # 4 data sets: p = 2 / 2^4
    assert f"| no_weights | 0.550 | {TABLE4['no_weights']:.3f} | 0.1250 | 0.0078 | 0/4 |" in summary


def test_reuse_copies_only_records_with_the_same_settings(tmp_path):
    data = blobs()
    run_benchmark([data], config(), tmp_path / "first", progress=False)
    job = Job("blobs", "MNP", 42)
    assert reuse_jobs([tmp_path / "first"], [job], config(labeled_ratio=0.5), tmp_path / "other") == 0
    assert reuse_jobs([tmp_path / "first"], [job], config(), tmp_path / "second") == 1
    copied = read_job(job_path(tmp_path / "second", job))
    assert copied["auc_pr"] == read_job(job_path(tmp_path / "first", job))["auc_pr"]
    assert copied["reused_from"] == str(tmp_path / "first")


def test_experiment_cli_runs_and_resumes(tmp_path):
    data = blobs()
    np.savez(tmp_path / "blobs.npz", X=data.X, y=data.y)
    args = ["experiment", "ratio", "--data", str(tmp_path / "blobs.npz"), "--models", "MNP,IForest",
            "--ratios", "0.05,0.5", "--runs", "1", "--out", str(tmp_path / "out"),
            "--params", json.dumps(TINY), "--device", "cpu", "--no-progress"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    text = printed.getvalue()
    assert "## Mean test AUC-PR over data sets, by labeled ratio" in text
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(df["labeled_ratio"].unique()) == [0.05, 0.5] and len(df) == 4
    assert df.groupby("labeled_ratio")["n_labeled"].first().tolist() == [1, 9]  # ceil(r * 18)
    assert (tmp_path / "out" / "ratio.png").exists()
    stamp = (tmp_path / "out" / "ratio_0.5" / "jobs" / "blobs__MNP__42.json").stat().st_mtime_ns
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0  # every job is done: nothing is refitted
    assert (tmp_path / "out" / "ratio_0.5" / "jobs" / "blobs__MNP__42.json").stat().st_mtime_ns == stamp


def test_unseen_experiment_report(tmp_path):
    write_unsw_like(tmp_path / "unsw.csv", np.random.default_rng(1))
    pairs = load_unseen_pairs(tmp_path, types=["DoS", "Backdoor"], path="unsw.csv")
    df = ex.run_experiment("unseen", pairs, config(models=["MNP", "IForest"]), tmp_path / "out",
                           progress=False)
    assert (df["status"] == "ok").all() and set(df["dataset"]) == {"Backdoor->DoS", "DoS->Backdoor"}
    assert (df["n_test"] == df.groupby("dataset", observed=True)["n_test"].transform("first")).all()
    summary = (tmp_path / "out" / "summary.md").read_text()
    # the paper's Table 3 beside ours: DoS->Backdoor is 0.865 for MNP and 0.021 for IForest there
    row = next(line for line in summary.splitlines() if line.startswith("| DoS->Backdoor |"))
    assert row.endswith("| 0.865 | 0.021 |")
    assert "peer" in summary and "IForest" in summary
    assert (tmp_path / "out" / "unseen.png").exists()
