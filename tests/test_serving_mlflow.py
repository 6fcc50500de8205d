"""A fitted MNP as an MLflow pyfunc model, served by a real ``mlflow models serve`` on 127.0.0.1.

One server for the module (it starts in about 10 s), always stopped at the end; every request has a
timeout. Malformed requests must get a 4xx with a message, and the server must keep serving after them.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data, random_rows

pytest.importorskip("mlflow", reason="MLflow is not installed (the 'serve' extra; the dev extra installs it)")

from deepod_mnp import MNP  # noqa: E402
from deepod_mnp.serving.mlflow_model import local_server, log_mlflow_model, save_mlflow_model  # noqa: E402

FEATURES = ["amount", "age", "hour", "count", "ratio"]
MAX_ROWS = 2_000  # the test server's limit; DEFAULT_MAX_ROWS is 100,000


@pytest.fixture(scope="module")
def model():
    data = make_weak_data(n_per_mode=60, n_features=len(FEATURES), seed=21)
    return MNP(**TINY_MNP).fit(pd.DataFrame(data.X * 100, columns=FEATURES), data.y)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return save_mlflow_model(model, tmp_path_factory.mktemp("mlflow") / "mnp", max_rows=MAX_ROWS)


@pytest.fixture(scope="module")
def server(model_dir):
    with local_server(model_dir, startup_timeout=120) as url:
        yield url


def _post(url: str, body: bytes | str, content_type: str = "application/json") -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"{url}/invocations", data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except json.JSONDecodeError:
            return exc.code, {"message": text}


def _split(frame: pd.DataFrame) -> str:
    split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
    return json.dumps({"dataframe_split": split})


def _rows(n: int, seed: int = 7) -> pd.DataFrame:
    return pd.DataFrame(random_rows(n, len(FEATURES), seed).astype(np.float64) * 100, columns=FEATURES)


def test_the_model_directory_holds_checkpoint_schema_threshold_and_card(model, model_dir):
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(str(model_dir))
    inputs = loaded.metadata.get_input_schema()
    assert inputs.input_names() == FEATURES
    assert [t.name for t in inputs.input_types()] == ["double"] * len(FEATURES)
    meta = loaded.metadata.metadata["deepod_mnp"]
    assert meta["threshold"] == model.threshold_ and meta["feature_names"] == FEATURES
    assert meta["max_rows"] == MAX_ROWS
    card = meta["model_card"]  # deepod_mnp.model_card of the checkpoint
    assert card["detector"] == "MNP" and card["training"]["rows"] == len(model.decision_scores_)
    assert card["parameters"]["n_prototypes"] == TINY_MNP["n_prototypes"]
    assert card["input"]["columns"] == FEATURES and card["threshold"]["threshold"] == model.threshold_
    import hashlib

    checkpoint = model_dir / "artifacts" / "checkpoint.pt"
    assert card["file"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert (model_dir / "artifacts" / "checkpoint.pt").is_file()
    rows = _rows(50)
    np.testing.assert_allclose(loaded.predict(rows)["score"], model.decision_function(rows), rtol=0,
                               atol=1e-6)


def test_served_scores_equal_decision_function(model, server):
    rows = _rows(777)
    status, reply = _post(server, _split(rows[FEATURES[::-1]]))  # columns in another order: matched by name
    assert status == 200
    got = pd.DataFrame(reply["predictions"])
    np.testing.assert_allclose(got["score"], model.decision_function(rows), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["label"], model.predict(rows))
    status, reply = _post(server, rows.to_csv(index=False), "text/csv")  # CSV too
    assert status == 200
    np.testing.assert_allclose(pd.DataFrame(reply["predictions"])["score"], model.decision_function(rows),
                               rtol=0, atol=1e-6)


def _malformed() -> dict[str, tuple[bytes | str, str, str]]:
    rows = _rows(5)
    wrong_type = rows.astype(object)
    wrong_type.loc[2, "age"] = "forty"
    records = rows.to_dict(orient="records")
    records[3]["hour"] = None
    huge = _rows(MAX_ROWS + 1, seed=3)
    return {
        "missing column": (_split(rows.drop(columns=["hour"])), "application/json", "hour"),
        "wrong type": (_split(wrong_type), "application/json", "age"),
        "empty body": (b"", "application/json", ""),
        "not JSON": (b"{'dataframe_split':", "application/json", ""),
        "no data key": (json.dumps({"rows": [[1, 2, 3, 4, 5]]}), "application/json", ""),
        "missing value": (json.dumps({"dataframe_records": records}), "application/json",
                          "row 3: column 'hour'"),
        "NaN": (json.dumps({"dataframe_split": {"columns": FEATURES,
                                                "data": [[1.0, float("nan"), 3, 4, 5]]}}),
                "application/json", "row 0: column 'age' is NaN"),
        "huge batch": (_split(huge), "application/json", f"at most {MAX_ROWS:,}"),
        "wrong content type": (b"amount=1", "application/x-www-form-urlencoded", ""),
    }


@pytest.mark.parametrize("case", list(_malformed()))
def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving(case, model, server):
    body, content_type, needle = _malformed()[case]
    status, reply = _post(server, body, content_type)
    assert 400 <= status < 500, (status, reply)
    assert needle in json.dumps(reply), reply
    rows = _rows(3)  # still alive and right
    status, reply = _post(server, _split(rows))
    assert status == 200
    np.testing.assert_allclose(pd.DataFrame(reply["predictions"])["score"], model.decision_function(rows),
                               rtol=0, atol=1e-6)


def test_model_fitted_without_names_takes_a_tensor(tmp_path):
    import mlflow.pyfunc

    data = make_weak_data(n_per_mode=50, n_features=3, seed=2)
    model = MNP(**TINY_MNP).fit(data.X, data.y)
    loaded = mlflow.pyfunc.load_model(str(save_mlflow_model(model, tmp_path / "m")))
    X = random_rows(40, 3)
    np.testing.assert_allclose(loaded.predict(X)["score"], model.decision_function(X), rtol=0, atol=1e-6)


def test_text_columns_the_model_encodes_are_strings_in_the_schema(tmp_path):
    import mlflow.pyfunc

    rng = np.random.default_rng(1)
    data = make_weak_data(n_per_mode=50, n_features=2, seed=6)
    table = pd.DataFrame(data.X, columns=["a", "b"])
    table["shop"] = rng.choice(["north", "south"], len(table))
    model = MNP(**TINY_MNP).fit(table, data.y)
    loaded = mlflow.pyfunc.load_model(str(save_mlflow_model(model, tmp_path / "m")))
    schema = loaded.metadata.get_input_schema()
    assert [(n, t.name) for n, t in zip(schema.input_names(), schema.input_types())] == [
        ("a", "double"), ("b", "double"), ("shop", "string")]
    rows = table.head(30).copy()
    rows.loc[3, "shop"] = "west"  # unseen: a category of its own, no error
    np.testing.assert_allclose(loaded.predict(rows)["score"], model.decision_function(rows), rtol=0,
                               atol=1e-6)


def test_log_and_register(model, tmp_path, monkeypatch):
    """The registry holds it: a local file store here (a tracking server in production)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    try:
        info = log_mlflow_model(model, registered_model_name="mnp-test")
        assert info.registered_model_version == 1
        loaded = mlflow.pyfunc.load_model("models:/mnp-test/1")
        rows = _rows(20)
        np.testing.assert_allclose(loaded.predict(rows)["score"], model.decision_function(rows), rtol=0,
                                   atol=1e-6)
    finally:
        mlflow.set_tracking_uri(None)
