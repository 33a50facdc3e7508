"""The fast predictor as a real KServe ModelServer subprocess on the real Telco data: official v2/v1 clients, the
compiled path against sklearn, Feast enrichment, malformed-request flood, metrics, payload logs, hot reload."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, ID_COLUMN, feature_schema
from tests.conftest import REPO_ROOT, free_port
from tests.integration.test_churn_quality import load_curated

pytestmark = [pytest.mark.integration, pytest.mark.dataset]

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
N_FEAST = 200


class Stack:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def telco(telco_csv: Path) -> pd.DataFrame:
    return load_curated(telco_csv)


@pytest.fixture(scope="module")
def stack(telco: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two registered versions (v2 ships model.onnx), v1 served with payload logs and Feast enrichment."""
    from slipway.features import store as fs
    from slipway.registry import ModelRegistry
    from slipway.serving.fast import write_onnx_export
    from slipway.serving.process import running_model_server
    from slipway.storage import LocalArtifactStore
    from slipway.training.churn import build_pipeline, save_model, split_xy

    tmp = tmp_path_factory.mktemp("serving-fast")
    x, y = split_xy(telco)
    registry = ModelRegistry(LocalArtifactStore(tmp / "registry"))
    pipes = []
    for version, params in ((1, {"C": 1.0}), (2, {"C": 0.01})):
        pipe = build_pipeline("logistic_regression", params=params).fit(x, y)
        path = save_model(pipe, tmp / f"train{version}" / "model.joblib")
        extra = {}
        if version == 2:
            onnx = write_onnx_export(pipe, feature_schema()["features"], tmp / "train2" / "model.onnx")
            assert onnx is not None
            extra = {"model.onnx": onnx}
        registry.register(
            "churn",
            path,
            metrics={},
            params=params,
            training_data_sha256="0" * 64,
            feature_schema=feature_schema(),
            extra_files=extra,
        )
        pipes.append(pipe)
    model_dir = registry.download("churn", 1, tmp / "model")

    repo = tmp / "feature_repo"
    shutil.copytree(REPO_ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    fs.write_feature_source(telco.head(N_FEAST), repo, AS_OF)
    store = fs.open_store(repo)
    fs.apply_repo(store)
    fs.materialize(store, AS_OF + timedelta(hours=1))

    logs = tmp / "payload-root"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SLIPWAY_SERVING_TOKEN", None)
    args = ["--payload-log", str(logs), "--feast-repo", str(repo), "--variant", "stable"]
    port = free_port()
    with running_model_server(model_dir, "churn", port, env=env, timeout=120, extra_args=args) as base:
        yield Stack(base=base, port=port, registry=registry, model_dir=model_dir, pipes=pipes, logs=logs, x=x, tmp=tmp)


def _rows(telco: pd.DataFrame, start: int, n: int) -> list[dict[str, Any]]:
    return json.loads(telco[FEATURE_COLUMNS].iloc[start : start + n].to_json(orient="records"))


def _expected(stack: Stack, version: int, start: int, n: int) -> np.ndarray:
    return np.asarray(stack.pipes[version - 1].predict_proba(stack.x.iloc[start : start + n])[:, 1])


def test_probes(stack: Stack) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/churn/ready", "/v1/models/churn"):
        assert httpx.get(stack.base + path, timeout=10).status_code == 200, path
    assert httpx.get(stack.base + "/v2/models/nope/ready", timeout=10).status_code == 404


def test_tritonclient_v2_json_and_binary(stack: Stack, telco: pd.DataFrame) -> None:
    import tritonclient.http as triton

    n, start = 64, 1000
    frame = telco[FEATURE_COLUMNS].iloc[start : start + n]
    client = triton.InferenceServerClient(url=f"127.0.0.1:{stack.port}", network_timeout=30)
    try:
        for binary in (False, True):
            inputs = []
            for col in FEATURE_COLUMNS:
                if col in CATEGORICAL_FEATURES:
                    arr, dtype = frame[col].to_numpy(dtype=object), "BYTES"
                elif frame[col].dtype.kind == "i":
                    arr, dtype = frame[col].to_numpy(dtype=np.int64), "INT64"
                else:
                    arr, dtype = frame[col].to_numpy(dtype=np.float64), "FP64"
                inp = triton.InferInput(col, [n], dtype)
                inp.set_data_from_numpy(arr, binary_data=binary)
                inputs.append(inp)
            outputs = [triton.InferRequestedOutput("churn_probability", binary_data=binary)]
            result = client.infer("churn", inputs, outputs=outputs, request_id=f"triton-{binary}")
            got = result.as_numpy("churn_probability")
            assert got.shape == (n,)
            assert np.max(np.abs(got - _expected(stack, 1, start, n))) <= 1e-6
            response = result.get_response()
            assert response["id"] == f"triton-{binary}" and response["model_version"] == "1"

        bad = [triton.InferInput(c, [1], "FP64" if c not in CATEGORICAL_FEATURES else "BYTES") for c in FEATURE_COLUMNS]
        for inp, col in zip(bad, FEATURE_COLUMNS, strict=True):
            value = frame[col].iloc[:1].to_numpy(dtype=object if col in CATEGORICAL_FEATURES else np.float64)
            if col == "MonthlyCharges":
                value = np.array([np.nan])
            inp.set_data_from_numpy(value, binary_data=True)
        with pytest.raises(Exception, match="finite"):
            client.infer("churn", bad)
    finally:
        client.close()


def test_kserve_inference_rest_client(stack: Stack, telco: pd.DataFrame) -> None:
    from kserve import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    start, n = 2000, 5
    rows = _rows(telco, start, n)
    expected = _expected(stack, 1, start, n)

    async def go() -> tuple[Any, Any]:
        v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
        try:
            inputs = []
            for col in FEATURE_COLUMNS:
                values = [r[col] for r in rows]
                dtype = "BYTES" if col in CATEGORICAL_FEATURES else ("INT64" if isinstance(values[0], int) else "FP64")
                inputs.append(InferInput(name=col, shape=[n], datatype=dtype, data=values))
            r2 = await v2.infer(
                stack.base, InferRequest(model_name="churn", infer_inputs=inputs, request_id="kc-1"), "churn"
            )
            r1 = await v1.infer(stack.base, {"instances": rows}, "churn")
            return r2, r1
        finally:
            await v2.close()
            await v1.close()

    r2, r1 = asyncio.run(go())
    assert r2.id == "kc-1"  # the client drops model_version; tritonclient checks it above
    assert np.max(np.abs(r2.outputs[0].as_numpy() - expected)) <= 1e-6
    got = np.array([p["churn_probability"] for p in r1["predictions"]])
    assert np.max(np.abs(got - expected)) <= 1e-6 and r1["model_version"] == "1"


def test_feast_enrichment(stack: Stack, telco: pd.DataFrame) -> None:
    ids = telco[ID_COLUMN].head(3).tolist()
    url = f"{stack.base}/v1/models/churn:predict"
    r = httpx.post(url, json={"instances": [{"customer_id": i} for i in ids]}, timeout=10)
    assert r.status_code == 200, r.text
    got = [p["churn_probability"] for p in r.json()["predictions"]]
    assert np.max(np.abs(np.array(got) - _expected(stack, 1, 0, 3))) <= 1e-6

    # Given fields override stored ones: a two-year contract instead of the stored month-to-month one.
    row0 = telco.iloc[0]
    assert row0["Contract"] == "Month-to-month"
    what_if = httpx.post(url, json={"instances": [{"customer_id": ids[0], "Contract": "Two year"}]}, timeout=10)
    changed = dict(_rows(telco, 0, 1)[0], Contract="Two year")
    direct = httpx.post(url, json={"instances": [changed]}, timeout=10)
    assert what_if.json()["predictions"] == direct.json()["predictions"]

    unknown = httpx.post(url, json={"instances": [{"customer_id": "0000-NOBODY"}]}, timeout=10)
    assert unknown.status_code == 400
    assert "no online features for customer_id ['0000-NOBODY']" in unknown.json()["error"]
    not_materialised = telco[ID_COLUMN].iloc[N_FEAST + 5]
    assert httpx.post(url, json={"instances": [{"customerID": not_materialised}]}, timeout=10).status_code == 400


def _malformed(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    v1, v2 = "/v1/models/churn:predict", "/v2/models/churn/infer"
    col = [
        {"name": c, "shape": [1], "datatype": "BYTES" if c in CATEGORICAL_FEATURES else "FP64", "data": [row[c]]}
        for c in FEATURE_COLUMNS
    ]
    cases: list[tuple[str, dict[str, Any]]] = [
        (v1, {"content": b"not json"}),
        (v1, {"content": b'{"instances": [', "headers": {"content-type": "application/json"}}),
        (v1, {"content": b"garbage", "headers": {"content-type": "text/plain"}}),
        (v1, {"content": b"<xml/>", "headers": {"content-type": "application/xml"}}),
        (v1, {"json": {}}),
        (v1, {"json": {"instances": None}}),
        (v1, {"json": {"instances": "row"}}),
        (v1, {"json": {"instances": []}}),
        (v1, {"json": {"instances": [None]}}),
        (v1, {"json": {"instances": [[1, 2, 3]]}}),
        (v1, {"json": [1, 2]}),
        (v1, {"json": "string"}),
        (v1, {"json": 42}),
        (v1, {"json": {"instances": [{}]}}),
        (v1, {"json": {"instances": [{"customer_id": None}]}}),
        (v1, {"json": {"instances": [{"customer_id": ""}]}}),
        (v1, {"content": b'{"instances": [' + json.dumps(dict(row, tenure="NaN")).encode() + b"]}"}),
        (v1, {"content": json.dumps({"instances": [dict(row, TotalCharges=float("inf"))]}).encode()}),
        (v1, {"content": json.dumps({"instances": [dict(row, TotalCharges=float("nan"))]}).encode()}),
        ("/v1/models/nope:predict", {"json": {"instances": [row]}}),
        ("/v1/models/:predict", {"json": {"instances": [row]}}),
        ("/v2/models/nope/infer", {"json": {"inputs": col}}),
        (v2, {"content": b"not json", "headers": {"content-type": "application/json"}}),
        (v2, {"content": b"x", "headers": {"content-type": "text/plain"}}),
        (v2, {"json": {}}),
        (v2, {"json": {"inputs": []}}),
        (v2, {"json": {"inputs": None}}),
        (v2, {"json": {"inputs": "x"}}),
        (v2, {"json": {"inputs": [{"name": "a"}]}}),
        (v2, {"json": {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}}),
        (v2, {"json": {"inputs": [{"name": "a", "shape": "1", "datatype": "FP64", "data": [1.0]}]}}),
        (v2, {"json": {"inputs": [{"name": "a", "shape": [1], "datatype": "NOPE", "data": [1.0]}]}}),
        (v2, {"json": {"inputs": [{"name": "x", "shape": [2, 19], "datatype": "FP64", "data": [1.0, 2.0]}]}}),
        (v2, {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["{not json"]}]}}),
        (v2, {"json": {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [5]}]}}),
        (v2, {"json": {"inputs": col[:-1]}}),
        (v2, {"json": {"inputs": [*col, col[0]]}}),
        (v2, {"json": {"inputs": [*col[:-1], dict(col[-1], data=[1.0, 2.0], shape=[2])]}}),
        (v2, {"json": {"inputs": [*col[:-1], dict(col[-1], data=["lots"])]}}),
        (v2, {"json": {"inputs": [*col[:-1], dict(col[-1], data=[None])]}}),
        (v2, {"json": {"inputs": [*col, {"name": "extra", "shape": [1], "datatype": "FP64", "data": [1.0]}]}}),
        (v2, {"json": {"inputs": col}, "headers": {"inference-header-content-length": "999999"}}),
        (v2, {"json": {"inputs": col}, "headers": {"inference-header-content-length": "abc"}}),
        (v2, {"json": {"id": 5, "inputs": [{"name": "Contract", "shape": [1], "datatype": "BYTES", "data": [[]]}]}}),
    ]
    field_cases = [
        {k: v for k, v in row.items() if k != "tenure"},
        dict(row, extra=1),
        dict(row, Contract="Forever"),
        dict(row, Contract=None),
        dict(row, tenure="twelve"),
        dict(row, tenure=1.5),
        dict(row, tenure=True),
        dict(row, tenure=[12]),
        dict(row, tenure={"v": 12}),
        dict(row, tenure=-1),
        dict(row, tenure=10**30),
        dict(row, MonthlyCharges=-5.0),
        dict(row, gender=1),
        dict(row, gender=""),
        dict(row, SeniorCitizen=2),
    ]
    cases += [(v1, {"json": {"instances": [case]}}) for case in field_cases]
    cases += [(v1, {"json": {"instances": [row, case]}}) for case in field_cases[:5]]
    return cases


def test_malformed_requests_never_5xx(stack: Stack, telco: pd.DataFrame) -> None:
    row = _rows(telco, 0, 1)[0]
    cases = _malformed(row)
    assert len(cases) >= 50
    statuses = []
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        for path, kwargs in cases:
            r = client.post(path, **kwargs)
            statuses.append(r.status_code)
            assert 400 <= r.status_code < 500, (path, kwargs, r.status_code, r.text)
            assert r.json().get("error"), (path, r.text)
        # the server still answers correctly afterwards
        ok = client.post("/v1/models/churn:predict", json={"instances": [row]})
        assert ok.status_code == 200
    assert sum(s >= 500 for s in statuses) == 0
    metrics = httpx.get(f"{stack.base}/metrics", timeout=10).text
    count_400 = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("slipway_requests_total{") and 'status="400"' in line
    )
    assert count_400 >= statuses.count(400)
    assert 'slipway_requests_total{model="unknown"' in metrics  # unknown model names do not become labels
    assert 'slipway_model_info{model="churn",version="1"} 1.0' in metrics
    assert "slipway_request_latency_seconds_bucket{" in metrics and 'variant="stable"' in metrics
    assert 'slipway_predictions_total{model="churn",variant="stable",version="1"}' in metrics


def test_hot_reload_drops_no_request(stack: Stack, telco: pd.DataFrame) -> None:
    row = _rows(telco, 0, 1)[0]
    expected = {str(v): float(_expected(stack, v, 0, 1)[0]) for v in (1, 2)}
    assert abs(expected["1"] - expected["2"]) > 1e-3  # the versions are distinguishable
    results: list[tuple[float, float, int, str, float]] = []
    failures: list[str] = []
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=stack.base, timeout=30) as client:
            for _ in range(2000):  # bounded
                if stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    r = client.post("/v1/models/churn:predict", json={"instances": [row]})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                results.append(
                    (
                        sent,
                        time.monotonic(),
                        r.status_code,
                        body["model_version"],
                        body["predictions"][0]["churn_probability"],
                    )
                )

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        stack.registry.download("churn", 2, stack.model_dir)  # the new version lands in the served folder
        before = time.monotonic()
        r = httpx.post(f"{stack.base}/v2/repository/models/churn/load", timeout=60)
        loaded = time.monotonic()
        assert r.status_code == 200, r.text
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:5]
    versions = [v for _, _, _, v, _ in results]
    assert "1" in versions and "2" in versions, set(versions)
    assert all(v == "1" for _sent, done, _, v, _ in results if done < before)
    assert all(v == "2" for sent, _done, _, v, _ in results if sent > loaded)
    for _, _, _, version, p in results:
        assert abs(p - expected[version]) <= 1e-6
    assert len(results) >= 20
    metrics = httpx.get(f"{stack.base}/metrics", timeout=10).text
    assert 'slipway_model_info{model="churn",version="2"} 1.0' in metrics
    assert 'slipway_model_info{model="churn",version="1"}' not in metrics


def test_payload_logs_of_the_replaced_version(stack: Stack) -> None:
    from slipway.monitoring.payloads import read_payload_logs

    # The v1 logger was closed (flushed) by the reload in the previous test.
    now = datetime.now(UTC)
    frame = read_payload_logs(stack.logs, "churn", now - timedelta(hours=2), now + timedelta(hours=1))
    v1 = frame[frame["version"] == 1]
    assert len(v1) >= 64 + 5 + 3, len(v1)  # triton + kserve client + enrichment rows, at least
    assert set(v1["variant"]) == {"stable"}
    triton = v1[v1["request_id"] == "triton-False"]
    assert len(triton) == 64 and triton["row_id"].tolist()[:2] == ["triton-False:0", "triton-False:1"]
    assert set(FEATURE_COLUMNS) <= set(frame.columns)
    assert frame["prediction"].between(0, 1).all()


def test_in_process_metrics_route_is_open_with_auth(stack: Stack) -> None:
    from slipway.serving.churn_model import ChurnModel, create_app

    model = ChurnModel("churn", stack.model_dir)
    model.load()
    app = create_app(model, bearer_token="s3cret")

    async def go() -> tuple[int, int, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            metrics = (await c.get("/metrics")).status_code
            reload_no_token = (await c.post("/v2/repository/models/churn/load")).status_code
            reload_token = (
                await c.post("/v2/repository/models/churn/load", headers={"Authorization": "Bearer s3cret"})
            ).status_code
            return metrics, reload_no_token, reload_token

    assert asyncio.run(go()) == (200, 401, 200)
    assert model.version == "2" and model.predictor_kind == "onnx"  # v2 shipped a verified model.onnx


@pytest.mark.slow
def test_two_workers_and_sighup_reload(stack: Stack, telco: pd.DataFrame) -> None:
    import signal

    import psutil

    from slipway.serving.process import running_model_server

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SLIPWAY_SERVING_TOKEN", None)
    rows = _rows(telco, 0, 2)
    folder = stack.registry.download("churn", 2, stack.tmp / "workers-model")
    url = "/v1/models/churn:predict"
    with running_model_server(
        folder, "churn", free_port(), env=env, timeout=120, extra_args=["--workers", "2"]
    ) as base:
        supervisor = [
            p
            for p in psutil.process_iter(["cmdline"])
            if base.rsplit(":", 1)[1] in " ".join(p.info["cmdline"] or []) and "--workers" in (p.info["cmdline"] or [])
        ]
        assert len(supervisor) == 1
        workers = supervisor[0].children()
        assert len(workers) == 2
        for _ in range(20):  # a fresh connection each time: the kernel spreads them over both workers
            r = httpx.post(base + url, json={"instances": rows}, timeout=10)
            assert r.status_code == 200 and r.json()["model_version"] == "2"

        # SIGHUP to the supervisor reloads every worker from the folder (here: v1 written over v2).
        stack.registry.download("churn", 1, folder)
        supervisor[0].send_signal(signal.SIGHUP)
        deadline, streak = time.monotonic() + 60, 0
        while streak < 20 and time.monotonic() < deadline:  # 20 fresh connections in a row answered by v1
            r = httpx.post(base + url, json={"instances": rows}, timeout=10)
            assert r.status_code == 200
            streak = streak + 1 if r.json()["model_version"] == "1" else 0
            time.sleep(0.05)
        assert streak >= 20
        assert len(supervisor[0].children()) == 2  # reloaded in place, no worker restarted
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
