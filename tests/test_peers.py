"""The boosted-classifier peers and XGBOD: ranking, determinism, missing libraries, and ``bench``."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import make_weak_data
from sklearn.metrics import roc_auc_score

from deepod_mnp.benchmark import peers
from deepod_mnp.benchmark.runner import Job, run_job
from deepod_mnp.registry import DETECTORS, make_detector

PEERS = {"CatBoost": ("catboost", peers.CatBoostPeer), "LightGBM": ("lightgbm", peers.LightGBMPeer),
         "XGBoost": ("xgboost", peers.XGBoostPeer), "XGBOD": ("xgboost", peers.XGBODPeer)}


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _needs(name: str):
    module = PEERS[name][0]
    return pytest.mark.skipif(not _installed(module), reason=f"{module} is not installed (extra 'boost')")


@pytest.fixture(scope="module")
def data():
    # 40 of 60 anomalies labeled: enough for a classifier to learn where they lie
    return make_weak_data(n_per_mode=100, n_anomalies=60, n_labeled=40, seed=3)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_needs(n)) for n in PEERS])
def test_peer_ranks_planted_anomalies_and_is_deterministic(name, data):
    det = make_detector(name, random_state=7, n_jobs=1)
    assert isinstance(det, PEERS[name][1]) and DETECTORS[name].supervision == "weak"
    scores = det.fit(data.X, data.y).decision_function(data.X)
    assert scores.shape == (len(data.X),) and np.all(np.isfinite(scores))
    unlabeled = data.y == 0  # the planted anomalies nobody labeled must rank above the normals
    assert roc_auc_score(data.y_true[unlabeled], scores[unlabeled]) > 0.9
    again = make_detector(name, random_state=7, n_jobs=1).fit(data.X, data.y).decision_function(data.X)
    np.testing.assert_array_equal(scores, again)
    np.testing.assert_array_equal(det.decision_scores_, scores)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_needs(n)) for n in ("CatBoost", "XGBoost")])
def test_peer_configuration_is_the_documented_one(name, data):
    det = make_detector(name, random_state=5, n_jobs=1).fit(data.X, data.y)
    params = det.estimator_.get_params()
    if name == "CatBoost":
        assert params["auto_class_weights"] == "Balanced" and params["random_seed"] == 5
        assert params["thread_count"] == 1 and "iterations" not in params  # library default
    else:
        n_pos = int(data.y.sum())
        assert params["scale_pos_weight"] == pytest.approx((len(data.y) - n_pos) / n_pos)
        assert params["random_state"] == 5 and params["n_estimators"] is None  # library default


def test_peer_checks_its_input(data):
    det = peers.LightGBMPeer(n_jobs=1)
    with pytest.raises(ValueError, match="needs the weak labels"):
        det.fit(data.X, None)
    with pytest.raises(ValueError, match="both labeled anomalies and unlabeled"):
        det.fit(data.X, np.zeros(len(data.X)))
    with pytest.raises(ValueError, match="0 \\(unlabeled\\) or 1"):
        det.fit(data.X, np.full(len(data.X), 2))
    with pytest.raises(ValueError, match="n_jobs"):
        peers.LightGBMPeer(n_jobs=0).fit(data.X, data.y)


def _block(monkeypatch, module: str) -> None:
    """Make ``import module`` fail as it does when the package is not installed."""
    for key in [k for k in sys.modules if k == module or k.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setitem(sys.modules, module, None)  # import raises ModuleNotFoundError


@pytest.mark.parametrize("name", list(PEERS))
def test_missing_library_names_the_extra(name, data, monkeypatch):
    module = PEERS[name][0]
    _block(monkeypatch, module)
    if name == "XGBOD":
        _block(monkeypatch, "pyod.models.xgbod")
    det = make_detector(name)  # building needs no library; fitting does
    with pytest.raises(peers.PeerNotInstalledError, match=r"deepod-mnp\[boost\]") as info:
        det.fit(data.X, data.y)
    assert module in str(info.value) and isinstance(info.value, ImportError)


def test_bench_records_a_missing_peer_as_failed(data, monkeypatch):
    _block(monkeypatch, "catboost")
    split = {"X_train": data.X, "y_train_semi": data.y, "X_test": data.X, "y_test": data.y_true}
    record = run_job(Job("synthetic", "CatBoost", 42), split, device="cpu")
    assert record["status"] == "failed" and record["error_type"] == "PeerNotInstalledError"
    assert "not installed" in record["error"] and "deepod-mnp[boost]" in record["error"]
    json.dumps(record, default=str)  # storable


def test_group_summary_counts_wins_and_skips_models_without_results():
    import pandas as pd

    from deepod_mnp.benchmark.report import group_summary, group_summary_markdown, results_frame

    rows = [{"dataset": d, "model": m, "seed": s, "status": "ok", "auc_pr": v + 0.01 * s, "fit_time": 1.0}
            for d, (a, b) in {"x": (0.9, 0.5), "y": (0.4, 0.6), "z": (0.7, 0.2)}.items()
            for m, v in (("MNP", a), ("CatBoost", b)) for s in (0, 1)]
    rows.append({"dataset": "x", "model": "DevNet", "seed": 0, "status": "failed", "auc_pr": None,
                 "fit_time": None})
    df = results_frame(rows)
    table = group_summary(df, {"all": ["x", "y", "z"], "two": ["x", "y"]}).set_index(["group", "model"])
    cat = table.loc[("all", "CatBoost")]
    assert (cat["wins"], cat["ties"], cat["losses"], cat["n_datasets"]) == (2, 0, 1, 3)
    assert cat["mean"] == pytest.approx((0.505 + 0.605 + 0.205) / 3)
    assert table.loc[("two", "MNP"), "mean"] == pytest.approx((0.905 + 0.405) / 2)
    assert table.loc[("all", "DevNet"), "n_datasets"] == 0
    text = group_summary_markdown(df, {"all": ["x", "y", "z"]})
    assert "| CatBoost | 3 |" in text and "2-0-1" in text and "DevNet" not in text
    assert isinstance(df, pd.DataFrame)
