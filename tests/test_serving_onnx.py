"""ONNX export: ONNX Runtime alone gives decision_function's scores (to 1e-5 on float32 input)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_MNP, random_rows

ort = pytest.importorskip("onnxruntime", reason="the 'onnx' extra (onnx, onnxscript, onnxruntime) is missing")
pytest.importorskip("onnxscript", reason="the 'onnx' extra (onnxscript) is missing")


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # the 3-column array below
def test_onnx_export_gives_decision_function_scores(serving_data, tmp_path):
    """MNP with its default input scaling, fitted on raw units: the graph takes the raw rows and scales
    them itself."""
    import pandas as pd

    from deepod_mnp import MNP
    from deepod_mnp.serving.onnx import OnnxScorer, export_onnx

    columns = [f"f{i}" for i in range(serving_data.X.shape[1])]
    model = MNP(**TINY_MNP).fit(pd.DataFrame(serving_data.X * 100 + 50, columns=columns), serving_data.y)
    path = export_onnx(model, tmp_path / "mnp.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("X", "tensor(float)", model.n_features_in_)
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert (out.name, out.type, len(out.shape)) == ("score", "tensor(float)", 1)
    X = random_rows(5000, model.n_features_in_) * 100 + 50
    expected = model.decision_function(pd.DataFrame(X, columns=columns))
    for n in (1, 17, 5000):  # the batch dimension is free
        (got,) = session.run(["score"], {"X": X[:n]})
        assert got.dtype == np.float32 and got.shape == (n,)
        np.testing.assert_allclose(got, expected[:n], rtol=0, atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["deepod_mnp.feature_names"]) == columns
    assert float(meta["deepod_mnp.threshold"]) == pytest.approx(model.threshold_)
    scorer = OnnxScorer(path, threads=1, chunk_rows=700, workers=3)  # several chunks side by side
    assert scorer.n_features_in_ == model.n_features_in_ and scorer.model_name == "MNP"
    frame = pd.DataFrame(X, columns=columns)
    np.testing.assert_allclose(scorer.decision_function(frame), expected, rtol=0, atol=1e-5)
    labels = scorer.predict(frame)
    np.testing.assert_array_equal(labels, (scorer.decision_function(frame) > model.threshold_).astype(int))
    near = np.abs(expected - model.threshold_) < 1e-5  # rounding may flip only these
    np.testing.assert_array_equal(labels[~near], (expected[~near] > model.threshold_).astype(int))
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


@pytest.mark.parametrize("params", [{"recon_norm": "log"}, {"act": "Tanh", "bias": False}],
                         ids=["log-recon-norm", "tanh-no-bias"])
def test_onnx_export_of_mnp_options(serving_data, tmp_path, params):
    """recon_norm='log' (a log of each member's error in the graph), another activation, no biases."""
    from deepod_mnp import MNP
    from deepod_mnp.serving.onnx import export_onnx

    model = MNP(**{**TINY_MNP, **params}).fit(serving_data.X, serving_data.y)
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
