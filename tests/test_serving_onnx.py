"""ONNX export: ONNX Runtime alone gives decision_function's scores (to 1e-5 on float32 input)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_rows
from sklearn.preprocessing import StandardScaler

ort = pytest.importorskip("onnxruntime", reason="the 'onnx' extra (onnx, onnxscript, onnxruntime) is missing")
pytest.importorskip("onnxscript", reason="the 'onnx' extra (onnxscript) is missing")


def test_onnx_export_gives_decision_function_scores(serving_mnp, serving_data, tmp_path):
    from deepod_mnp.serving.onnx import OnnxScorer, export_onnx

    serving_mnp.scaler_ = StandardScaler().fit(serving_data.X)  # the raw-input graph must scale itself
    try:
        path = export_onnx(serving_mnp, tmp_path / "mnp.onnx")
    finally:
        del serving_mnp.scaler_
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("X", "tensor(float)", serving_mnp.n_features_in_)
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert (out.name, out.type, len(out.shape)) == ("score", "tensor(float)", 1)
    X = random_rows(5000, serving_mnp.n_features_in_)
    expected = serving_mnp.decision_function(StandardScaler().fit(serving_data.X).transform(X))
    for n in (1, 17, 5000):  # the batch dimension is free
        (got,) = session.run(["score"], {"X": X[:n]})
        assert got.dtype == np.float32 and got.shape == (n,)
        np.testing.assert_allclose(got, expected[:n], rtol=0, atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["deepod_mnp.feature_names"]) == list(serving_mnp.feature_names_in_)
    assert float(meta["deepod_mnp.threshold"]) == pytest.approx(serving_mnp.threshold_)
    scorer = OnnxScorer(path, threads=1)
    assert scorer.n_features_in_ == serving_mnp.n_features_in_ and scorer.model_name == "MNP"
    labels = scorer.predict(X)
    np.testing.assert_array_equal(labels, (scorer.decision_function(X) > serving_mnp.threshold_).astype(int))
    near = np.abs(expected - serving_mnp.threshold_) < 1e-5  # rounding may flip only these
    np.testing.assert_array_equal(labels[~near], (expected[~near] > serving_mnp.threshold_).astype(int))
    with pytest.raises(ValueError, match="X has 3 features, but OnnxScorer is expecting 7 features"):
        scorer.decision_function(X[:, :3])


@pytest.mark.parametrize("name", ["DevNetAnoOnly", "DeepSADAnoOnly"])
def test_onnx_export_of_anoonly_detectors(name, serving_data, tmp_path):
    from deepod_mnp.models.anoonly import DeepSADAnoOnly, DevNetAnoOnly
    from deepod_mnp.serving.onnx import OnnxScorer, export_onnx

    cls = {"DevNetAnoOnly": DevNetAnoOnly, "DeepSADAnoOnly": DeepSADAnoOnly}[name]
    model = cls(epochs=2, epoch_steps=5, device="cpu").fit(serving_data.X, serving_data.y)
    scorer = OnnxScorer(export_onnx(model, tmp_path / "m.onnx"))
    X = random_rows(3000, serving_data.X.shape[1])
    np.testing.assert_allclose(scorer.decision_function(X), model.decision_function(X), rtol=1e-5, atol=1e-5)
    assert scorer.model_name == name


def test_onnx_export_of_the_score_head_options(serving_data, tmp_path):
    """recon_norm='log' and head_features=True (a log and a second input product in the graph)."""
    from deepod_mnp import MNP
    from deepod_mnp.serving.onnx import export_onnx

    model = MNP(epochs=2, epoch_steps=4, pretrain_epochs=1, n_prototypes=2, device="cpu", random_state=0,
                recon_norm="log", head_features=True).fit(serving_data.X, serving_data.y)
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "head.onnx")),
                                   providers=["CPUExecutionProvider"])
    X = random_rows(2000, model.n_features_in_)
    (got,) = session.run(["score"], {"X": X})
    np.testing.assert_allclose(got, model.decision_function(X), rtol=0, atol=1e-5)


def _bad_inputs(model, X):
    """Inputs the detector refuses, each with how: (name, input)."""
    import pandas as pd
    import scipy.sparse as sp

    names = list(model.feature_names_in_)
    frame = pd.DataFrame(X, columns=names)
    nan, big = X.copy(), X.astype(np.float64)
    nan[3, 2] = np.nan
    big[5, 1] = 1e39  # finite in float64, beyond float32
    inf = X.copy()
    inf[0, 0] = np.inf
    return [("nan", nan), ("inf", inf), ("beyond float32", big), ("reordered columns", frame[names[::-1]]),
            ("unknown column", frame.rename(columns={names[0]: "zz"})), ("sparse", sp.csr_matrix(X)),
            ("too few columns", X[:, :3]), ("one dimension", X[0])]


@pytest.mark.filterwarnings("ignore:X does not have valid feature names", "ignore:overflow encountered")
def test_onnx_scorer_refuses_what_the_detector_refuses(serving_mnp, tmp_path):
    """NaN, 1e39, reordered or unknown columns, sparse input: the same error as decision_function (with the
    scorer's name), never a silent NaN or a score by position."""
    from deepod_mnp.serving.onnx import OnnxScorer, export_onnx

    scorer = OnnxScorer(export_onnx(serving_mnp, tmp_path / "m.onnx"))
    X = random_rows(20, serving_mnp.n_features_in_)
    for name, bad in _bad_inputs(serving_mnp, X):
        with pytest.raises((ValueError, TypeError)) as expected:
            serving_mnp.decision_function(bad)
        with pytest.raises(expected.type) as got:
            scorer.decision_function(bad)
        assert str(got.value) == str(expected.value).replace("MNP", "OnnxScorer"), name
    import pandas as pd

    frame = pd.DataFrame(X, columns=list(serving_mnp.feature_names_in_))
    np.testing.assert_allclose(scorer.decision_function(frame), serving_mnp.decision_function(frame),
                               rtol=0, atol=1e-5)
