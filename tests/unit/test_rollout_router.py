"""The traffic router in front of two fake model servers on loopback: weights, stickiness, faults, admin API."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from slipway.errors import SlipwayError
from slipway.rollout.assignment import assign_variant, bucket
from slipway.rollout.router import TrafficRouter, Variant, extract_predictions, serve_asgi, serve_router, summarize
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.unit


def _fake_model(probability: float) -> Starlette:
    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        n = len(body.get("instances", [1]))
        return JSONResponse(
            {"predictions": [{"churn_probability": probability}] * n},
            headers={"x-seen-request-id": request.headers.get("x-request-id", "")},
        )

    return Starlette(routes=[Route("/v1/models/churn:predict", predict, methods=["POST"])])


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[str, str]]:
    with serve_asgi(_fake_model(0.2), free_port()) as a, serve_asgi(_fake_model(0.8), free_port()) as b:
        yield a, b


def test_assignment_is_stable_across_processes() -> None:
    ids = [f"user-{i}" for i in range(20)]
    here = [assign_variant(u, {"canary": 30, "primary": 70}, salt="exp") for u in ids]
    code = (
        "from slipway.rollout.assignment import assign_variant\n"
        f"print(','.join(assign_variant(u, {{'canary': 30, 'primary': 70}}, salt='exp') for u in {ids!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True
    ).stdout.strip()
    assert other.split(",") == here
    assert 0.0 <= bucket("x") < 100.0 and bucket("x") != bucket("x", salt="other")


def test_assignment_follows_weights_and_canary_growth_only_moves_users_in() -> None:
    users = [str(i) for i in range(20_000)]
    at10 = Counter(assign_variant(u, {"canary": 10, "primary": 90}) for u in users)
    assert abs(at10["canary"] / len(users) - 0.10) < 0.01
    canary10 = {u for u in users if assign_variant(u, {"canary": 10, "primary": 90}) == "canary"}
    canary25 = {u for u in users if assign_variant(u, {"canary": 25, "primary": 75}) == "canary"}
    assert canary10 < canary25 and abs(len(canary25) / len(users) - 0.25) < 0.01
    with pytest.raises(ValueError):
        assign_variant("u", {"a": 0})


def test_router_splits_records_and_extracts_predictions(backends: tuple[str, str]) -> None:
    a, b = backends
    router = TrafficRouter([Variant("canary", b, 25), Variant("primary", a, 75)], seed=3)
    with serve_router(router, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        seen = Counter()
        for _ in range(200):
            r = client.post("/v1/models/churn:predict", json={"instances": [{"x": 1}]})
            assert r.status_code == 200
            variant = r.headers["x-slipway-variant"]
            seen[variant] += 1
            assert r.json()["predictions"][0]["churn_probability"] == (0.8 if variant == "canary" else 0.2)
            assert r.headers["x-seen-request-id"] == r.headers["x-request-id"]  # propagated to the backend
        stats = client.get("/router/stats").json()
    assert 25 <= seen["canary"] <= 80  # binomial(200, 0.25): mean 50, sd 6
    assert stats["variants"]["canary"]["requests"] == seen["canary"]
    assert stats["variants"]["canary"]["prediction_mean"] == pytest.approx(0.8)
    assert stats["variants"]["primary"]["errors"] == 0


def test_sticky_routing_by_header_or_body(backends: tuple[str, str]) -> None:
    a, b = backends
    router = TrafficRouter([Variant("treatment", b, 50), Variant("control", a, 50)], sticky=True, salt="exp")
    with serve_router(router, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        for user in ("alice", "bob", "carol", "dave"):
            expected = assign_variant(user, {"treatment": 50, "control": 50}, salt="exp")
            for _ in range(3):
                by_header = client.post("/v1/models/churn:predict", json={}, headers={"x-user-id": user})
                by_body = client.post("/v1/models/churn:predict", json={"instances": [{"user_id": user}]})
                assert by_header.headers["x-slipway-variant"] == expected
                assert by_body.headers["x-slipway-variant"] == expected
    users = {o.user_id for o in router.recorder.since(0)}
    assert users == {"alice", "bob", "carol", "dave"}


def test_fault_injection_and_unreachable_backend(backends: tuple[str, str]) -> None:
    a, _ = backends
    dead = f"http://127.0.0.1:{free_port()}"
    router = TrafficRouter(
        [Variant("canary", a, 50, fault_error_rate=0.5, fault_latency_s=0.02), Variant("primary", dead, 50)],
        seed=1,
    )
    with serve_router(router, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        codes = Counter(
            (r.headers["x-slipway-variant"], r.status_code)
            for r in (client.post("/v1/models/churn:predict", json={"instances": [{}]}) for _ in range(120))
        )
    assert codes[("primary", 502)] > 30 and not any(v == "primary" and c != 502 for v, c in codes)
    injected = codes[("canary", 503)] / (codes[("canary", 503)] + codes[("canary", 200)])
    assert 0.25 < injected < 0.75  # binomial(~60, 0.5)
    summary = summarize(router.recorder.since(0))
    assert summary["canary"]["p50_ms"] >= 20.0  # the injected delay is part of the recorded latency
    assert summary["primary"]["error_rate"] == 1.0


def test_admin_api_weights_labels_and_token(backends: tuple[str, str]) -> None:
    a, b = backends
    router = TrafficRouter([Variant("canary", b, 0), Variant("primary", a, 100)], admin_token="t0ken")
    auth = {"Authorization": "Bearer t0ken"}
    with serve_router(router, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.put("/router/weights", json={"weights": {"canary": 50, "primary": 50}}).status_code == 401
        bad = client.put("/router/weights", json={"weights": {"canary": 60, "primary": 60}}, headers=auth)
        assert bad.status_code == 400 and "sum to 100" in bad.json()["error"]
        unknown = client.put("/router/weights", json={"weights": {"nope": 100}}, headers=auth)
        assert unknown.status_code == 400 and "unknown variant" in unknown.json()["error"]
        ok = client.put("/router/weights", json={"weights": {"canary": 100}}, headers=auth)
        assert ok.json()["weights"] == {"canary": 100.0, "primary": 0.0}
        r = client.post("/v1/models/churn:predict", json={"instances": [{}]})
        assert r.headers["x-slipway-variant"] == "canary"
        rid = r.headers["x-request-id"]
        labels = client.post("/router/labels", json={"labels": [{"request_id": rid, "label": 1}]}, headers=auth)
        assert labels.json() == {"accepted": 1}
        assert client.post("/router/labels", json={"labels": [{"id": 1}]}, headers=auth).status_code == 400
        assert client.get("/router/stats").status_code == 401
    assert router.recorder.label_of(rid) == 1.0
    with pytest.raises(SlipwayError, match="distinct names"):
        TrafficRouter([Variant("a", a, 50), Variant("a", b, 50)])


def test_extract_predictions_from_v1_and_v2() -> None:
    assert extract_predictions(b'{"predictions": [{"churn_probability": 0.3, "churn": "No"}, 0.5]}') == [0.3, 0.5]
    assert extract_predictions(b'{"outputs": [{"name": "p", "data": [0.1, 0.9]}]}') == [0.1, 0.9]
    assert extract_predictions(b'{"predictions": [{"items": ["a"]}]}') == []
    assert extract_predictions(b"not json") == []


def test_local_backend_windows_join_delayed_labels(backends: tuple[str, str]) -> None:
    from slipway.rollout.backends import LocalRouterBackend
    from slipway.rollout.router import Observation

    a, b = backends
    router = TrafficRouter([Variant("canary", b, 10), Variant("primary", a, 90)])
    backend = LocalRouterBackend(router)
    router.recorder.add(Observation(router.recorder.next_seq(), 0.0, "primary", "old", 200, 0.01, [0.9]))
    backend.begin_window()  # observations before the window are not evidence of this step
    for i, (variant, status, preds) in enumerate(
        [("canary", 200, [0.8]), ("canary", 503, []), ("canary", 200, [0.2, 0.7]), ("primary", 200, [0.6])]
    ):
        router.recorder.add(
            Observation(router.recorder.next_seq(), 0.0, variant, f"r{i}", status, 0.01 * (i + 1), preds)
        )
    router.recorder.add_labels({"r0": 1, "r2:1": 0, "r3": 1, "old": 0})
    primary, canary = backend.observe()
    assert (canary.requests, canary.errors) == (3, 1)
    assert list(canary.predictions) == [0.8, 0.2, 0.7]
    assert list(canary.labels) == [1.0, 0.0] and canary.accuracy == 0.5  # 0.8 → 1 right, 0.7 → 0 wrong
    assert primary.requests == 1 and primary.accuracy == 1.0
    assert canary.p99_s == pytest.approx(0.0298, abs=1e-3)
