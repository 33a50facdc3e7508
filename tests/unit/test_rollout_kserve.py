"""KServeBackend: exact InferenceService patches on a fake CustomObjectsApi, metrics from a fake Prometheus."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from slipway.errors import RolloutError
from slipway.rollout.backends import KServeBackend, PrometheusMetrics
from slipway.rollout.controller import CanaryController, CanaryPolicy

pytestmark = pytest.mark.unit

ISVC_ARGS = ("serving.kserve.io", "v1beta1", "slipway", "inferenceservices", "churn")


class FakeCustomObjectsApi:
    def __init__(self, isvc: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.isvc = isvc or {}
        self.fail = fail
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        assert (group, version, namespace, plural, name) == ISVC_ARGS
        return json.loads(json.dumps(self.isvc))

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> Any:
        assert (group, version, namespace, plural, name) == ISVC_ARGS
        if self.fail:
            raise RuntimeError("(403) Forbidden")
        self.patches.append(body)
        return body


class FakePrometheus:
    """Answers /api/v1/query from a table of (substring, value); records every query."""

    def __init__(self, answers: list[tuple[str, float]]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                outer.queries.append(query)
                if url.path != "/api/v1/query" or "bad" in query:
                    body, code = {"status": "error", "error": "parse error"}, 400
                else:
                    value = next((v for key, v in outer.answers if all(k in query for k in key.split("&"))), None)
                    result = [] if value is None else [{"metric": {}, "value": [1700000000, str(value)]}]
                    body, code = {"status": "success", "data": {"resultType": "vector", "result": result}}, 200
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakePrometheus:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answers(canary_errors: float, canary_p99: float) -> list[tuple[str, float]]:
    return [
        ('version="2"&status=~"5.."', canary_errors),
        ('version="1"&status=~"5.."', 1.0),
        ('version="2"&histogram_quantile', canary_p99),
        ('version="1"&histogram_quantile', 0.020),
        ('version="2"&slipway_requests_total', 400.0),
        ('version="1"&slipway_requests_total', 1600.0),
    ]


@pytest.fixture
def clock() -> Iterator[Any]:
    now = [1_700_000_000.0]

    def tick() -> float:
        now[0] += 30.0
        return now[0]

    yield tick


def test_prometheus_window_queries(clock: Any) -> None:
    with FakePrometheus(_answers(4.0, 0.025)) as prom:
        preds = (np.array([0.1, 0.2]), np.array([0.1]), np.array([0.0]))
        metrics = PrometheusMetrics(prom.url, "churn", prediction_source=lambda v, s, e: preds)
        window = metrics.window(2, 1000.0, 1060.0)
        assert (window.requests, window.errors, window.p99_s) == (400, 4, 0.025)
        assert list(window.predictions) == [0.1, 0.2] and window.accuracy == 1.0
        assert prom.queries[0] == 'sum(increase(slipway_requests_total{model="churn",version="2"}[60s]))'
        assert prom.queries[1] == (
            'sum(increase(slipway_requests_total{model="churn",version="2",status=~"5.."}[60s]))'
        )
        assert prom.queries[2] == (
            "histogram_quantile(0.99, sum by (le) "
            '(rate(slipway_request_latency_seconds_bucket{model="churn",version="2"}[60s])))'
        )
        assert metrics.window(7, 0.0, 10.0).requests == 0  # empty vector: no traffic
        with pytest.raises(RolloutError, match="rejected"):
            metrics.query("bad(", 0.0)
    with pytest.raises(RolloutError, match="did not answer"):
        PrometheusMetrics(prom.url, "churn", timeout_s=0.5).query("up", 0.0)


def test_healthy_cluster_canary_patches_each_step_then_promotes(clock: Any) -> None:
    api = FakeCustomObjectsApi(
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "containers": [
                        {
                            "name": "kserve-container",
                            "image": "img",
                            "env": [{"name": "STORAGE_URI", "value": "s3://b/m/churn/v1"}],
                        }
                    ],
                }
            }
        }
    )
    with FakePrometheus(_answers(2.0, 0.022)) as prom:
        backend = KServeBackend(
            api,
            "churn",
            PrometheusMetrics(prom.url, "churn"),
            primary_version=1,
            storage_uri_prefix="s3://b/m/",
            clock=clock,
        )
        result = CanaryController(backend, CanaryPolicy(step_wait_s=0), sleep=lambda s: None).run(2)
    assert result.decision == "promoted"
    container = {
        "name": "kserve-container",
        "image": "img",
        "env": [{"name": "STORAGE_URI", "value": "s3://b/m/churn/v2"}],
    }
    assert api.patches == [
        {"spec": {"predictor": {"canaryTrafficPercent": 0, "containers": [container]}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 10}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 25}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 50}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 100}}},
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
    ]
    assert result.steps[0].canary.p99_ms == pytest.approx(22.0)


def test_failing_cluster_canary_is_rolled_back(clock: Any) -> None:
    api = FakeCustomObjectsApi({"spec": {"predictor": {"model": {"storageUri": "s3://b/m/churn/v1"}}}})
    with FakePrometheus(_answers(60.0, 0.021)) as prom:  # 15 % errors on the canary vs 0.06 % on the primary
        backend = KServeBackend(
            api,
            "churn",
            PrometheusMetrics(prom.url, "churn"),
            primary_version=1,
            storage_uri_prefix="s3://b/m",
            clock=clock,
        )
        result = CanaryController(backend, sleep=lambda s: None).run(2)
    assert result.decision == "rolled_back" and "error_rate" in result.reason
    assert api.patches == [
        {"spec": {"predictor": {"canaryTrafficPercent": 0, "model": {"storageUri": "s3://b/m/churn/v2"}}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 10}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
    ]


def test_patch_failure_is_a_clear_error() -> None:
    backend = KServeBackend(
        FakeCustomObjectsApi(fail=True), "churn", PrometheusMetrics("http://x", "churn"), primary_version=1
    )
    with pytest.raises(RolloutError, match="may patch inferenceservices"):
        backend.set_canary_percent(10)
