"""The churn KServe predictor: in-process app (v1, v2, bad input, auth) and the real server as a subprocess."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, feature_schema
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

ROW: dict[str, Any] = {
    "gender": "Female",
    "SeniorCitizen": 0,
    "Partner": "Yes",
    "Dependents": "No",
    "tenure": 12,
    "PhoneService": "Yes",
    "MultipleLines": "No",
    "InternetService": "Fiber optic",
    "OnlineSecurity": "No",
    "OnlineBackup": "Yes",
    "DeviceProtection": "No",
    "TechSupport": "No",
    "StreamingTV": "Yes",
    "StreamingMovies": "No",
    "Contract": "Month-to-month",
    "PaperlessBilling": "Yes",
    "PaymentMethod": "Electronic check",
    "MonthlyCharges": 70.35,
    "TotalCharges": 845.5,
}


def _write_model_dir(folder: Path) -> Path:
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    n = 200
    data: dict[str, Any] = {}
    for col in FEATURE_COLUMNS:
        if col in CATEGORICAL_FEATURES:
            data[col] = rng.choice(CATEGORICAL_FEATURES[col], size=n)
        else:
            kind, lo, hi = NUMERIC_FEATURES[col]
            hi = min(hi, 200)
            data[col] = rng.integers(lo, hi + 1, size=n) if kind == "integer" else rng.uniform(lo, hi, size=n)
    frame = pd.DataFrame(data, columns=FEATURE_COLUMNS)
    y = np.where(frame["Contract"] == "Month-to-month", "Yes", "No")
    y[:5] = "Yes"
    y[5:10] = "No"
    cats = list(CATEGORICAL_FEATURES)
    nums = list(NUMERIC_FEATURES)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", "passthrough", nums)]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    pipe.fit(frame, y)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.joblib"
    joblib.dump(pipe, model_path)
    meta = {
        "name": "churn",
        "version": 1,
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "created_at": datetime.now(UTC).isoformat(),
        "training_data_sha256": "0" * 64,
        "code_version": "test",
        "feature_schema": feature_schema(),
    }
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_model_dir(tmp_path_factory.mktemp("churn-model"))


@pytest.fixture(scope="module")
def loaded_model(model_dir: Path):  # type: ignore[no-untyped-def]
    from slipway.serving.churn_model import ChurnModel

    model = ChurnModel("churn", model_dir)
    assert model.load()
    return model


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(loaded_model):  # type: ignore[no-untyped-def]
    from slipway.serving.churn_model import create_app

    return create_app(loaded_model)


def test_health_ready(app: Any) -> None:
    assert _call(app, "GET", "/v2/health/ready").status_code == 200


def test_v1_predict(app: Any) -> None:
    other = dict(ROW, Contract="Two year", tenure=60)
    r = _call(app, "POST", "/v1/models/churn:predict", json={"instances": [ROW, other]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    for p in preds:
        assert 0.0 <= p["churn_probability"] <= 1.0
        assert p["churn"] in ("Yes", "No")


def test_v2_columnar_predict(app: Any) -> None:
    inputs = []
    for col in FEATURE_COLUMNS:
        value = ROW[col]
        dtype = "BYTES" if isinstance(value, str) else ("INT64" if isinstance(value, int) else "FP64")
        inputs.append({"name": col, "shape": [2], "datatype": dtype, "data": [value, value]})
    r = _call(app, "POST", "/v2/models/churn/infer", json={"id": "req-1", "inputs": inputs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1"
    out = body["outputs"][0]
    assert out["name"] == "churn_probability" and out["datatype"] == "FP64"
    assert len(out["data"]) == 2 and all(0.0 <= p <= 1.0 for p in out["data"])


def test_v2_single_input_without_id(app: Any) -> None:
    row = [ROW[c] for c in FEATURE_COLUMNS]
    inp = {"name": "input-0", "shape": [1, len(row)], "datatype": "BYTES", "data": [row]}
    r = _call(app, "POST", "/v2/models/churn/infer", json={"inputs": [inp]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["id"], str) and body["id"]
    assert 0.0 <= body["outputs"][0]["data"][0] <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"content": b"this is not json", "headers": {"content-type": "application/json"}}, ""),
        ({"content": b"garbage", "headers": {"content-type": "text/plain"}}, ""),
        ({"json": {"foo": 1}}, "instances"),
        ({"json": {"instances": []}}, "no instances"),
        ({"json": {"instances": [{k: v for k, v in ROW.items() if k != "tenure"}]}}, "missing"),
        ({"json": {"instances": [dict(ROW, extra=1)]}}, "unknown field"),
        ({"json": {"instances": [dict(ROW, Contract="Forever")]}}, "unknown category"),
        ({"json": {"instances": [dict(ROW, tenure="twelve")]}}, "must be a integer"),
        ({"json": {"instances": [dict(ROW, MonthlyCharges=-5.0)]}}, "outside the allowed range"),
        ({"json": {"instances": [dict(ROW, tenure=1.5)]}}, "must be an integer"),
        ({"json": {"instances": [dict(ROW, gender=1)]}}, "must be a string"),
        ({"json": {"instances": ["not an object"]}}, "expected an object"),
        ({"json": [1, 2, 3]}, ""),
    ],
)
def test_v1_bad_input_is_4xx(app: Any, kwargs: dict[str, Any], fragment: str) -> None:
    r = _call(app, "POST", "/v1/models/churn:predict", **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.text
    if fragment:
        assert fragment in r.json()["error"]


def test_v1_nan_is_4xx(app: Any) -> None:
    body = '{"instances": [' + json.dumps(ROW)[:-1] + ', "x": 0}]}'
    body = body.replace('"TotalCharges": 845.5', '"TotalCharges": NaN').replace(', "x": 0', "")
    r = _call(app, "POST", "/v1/models/churn:predict", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)


def test_v2_bad_category_is_4xx(app: Any) -> None:
    inputs = [
        {"name": c, "shape": [1], "datatype": "BYTES" if isinstance(ROW[c], str) else "FP64", "data": [ROW[c]]}
        for c in FEATURE_COLUMNS
    ]
    inputs[FEATURE_COLUMNS.index("Contract")]["data"] = ["Forever"]
    r = _call(app, "POST", "/v2/models/churn/infer", json={"id": "x", "inputs": inputs})
    assert r.status_code == 400, r.text
    assert "unknown category" in r.text


def test_bearer_token(loaded_model) -> None:  # type: ignore[no-untyped-def]
    from slipway.serving.churn_model import create_app

    secured = create_app(loaded_model, bearer_token="s3cret")
    assert _call(secured, "GET", "/v2/health/ready").status_code == 200
    assert _call(secured, "POST", "/v1/models/churn:predict", json={"instances": [ROW]}).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert _call(secured, "POST", "/v1/models/churn:predict", json={"instances": [ROW]}, headers=bad).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    r = _call(secured, "POST", "/v1/models/churn:predict", json={"instances": [ROW]}, headers=good)
    assert r.status_code == 200, r.text


def test_real_server_subprocess(model_dir: Path) -> None:
    from slipway.serving.process import running_model_server

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SLIPWAY_SERVING_TOKEN", None)
    with running_model_server(model_dir, "churn", free_port(), env=env, timeout=60) as base:
        r = httpx.post(f"{base}/v1/models/churn:predict", json={"instances": [ROW]}, timeout=10)
        assert r.status_code == 200, r.text
        assert 0.0 <= r.json()["predictions"][0]["churn_probability"] <= 1.0
