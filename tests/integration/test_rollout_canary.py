"""Metric-gated canaries through the local router in front of two real KServe ModelServers (churn)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, feature_schema
from slipway.registry import ModelRegistry
from slipway.rollout.controller import CanaryController, CanaryPolicy, LocalRouterBackend
from slipway.rollout.local import churn_request_rows, traffic_driver, warm_up
from slipway.rollout.router import TrafficRouter, Variant, serve_router
from slipway.storage import LocalArtifactStore
from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# generous latency slack: this machine is shared and noisy; the injected fault adds 400 ms to every canary call
# A shared 2-core machine: one noisy window (a pause on a busy core) is judged again instead of rolling back.
POLICY = CanaryPolicy(min_requests=40, max_extensions=1, min_p99_increase_ms=100.0, failure_threshold=2)


def _register_versions(registry: ModelRegistry, tmp: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(churn_request_rows(300, 0), columns=FEATURE_COLUMNS)
    y = np.where(frame["Contract"] == "Month-to-month", "Yes", "No")
    y[:5], y[5:10] = "Yes", "No"
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
            ("num", "passthrough", list(NUMERIC_FEATURES)),
        ]
    )
    for c in (1.0, 0.8):  # v1 and a near-identical, healthy v2
        pipe = Pipeline([("prep", prep), ("clf", LogisticRegression(C=c, max_iter=500))]).fit(frame, y)
        path = tmp / f"model-{c}.joblib"
        joblib.dump(pipe, path)
        registry.register(
            "churn", path, metrics={}, params={"C": c}, training_data_sha256="0" * 64, feature_schema=feature_schema()
        )
    registry.set_stage("churn", 1, "production")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    from slipway.rollout.local import ServerSpec, running_servers

    tmp = tmp_path_factory.mktemp("canary")
    registry = ModelRegistry(LocalArtifactStore(tmp / "artifacts"))
    _register_versions(registry, tmp)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SLIPWAY_SERVING_TOKEN", None)
    # `python -m slipway.serving.churn_model` for both versions, started side by side
    specs = [
        ServerSpec("slipway.serving.churn_model", registry.download("churn", v, tmp / f"v{v}"), "churn", free_port())
        for v in (1, 2)
    ]
    with running_servers(specs, env=env, timeout=150) as (primary, canary):
        warm_up([primary, canary], "/v1/models/churn:predict", {"instances": churn_request_rows(1, 3)})
        yield primary, canary, tmp / "artifacts"


def _fresh_registry(artifacts: Path, tmp_path: Path) -> ModelRegistry:
    import shutil

    shutil.copytree(artifacts, tmp_path / "artifacts")
    return ModelRegistry(LocalArtifactStore(tmp_path / "artifacts"))


def _run(servers: tuple[str, str, Path], tmp_path: Path, **faults: float) -> tuple[Any, ModelRegistry, TrafficRouter]:
    primary_url, canary_url, artifacts = servers
    registry = _fresh_registry(artifacts, tmp_path)
    router = TrafficRouter(
        [Variant("canary", canary_url, 0, **faults), Variant("primary", primary_url, 100, version=1)], seed=5
    )
    with serve_router(router, free_port()) as base:
        controller = CanaryController(LocalRouterBackend(router), POLICY, registry=registry, model_name="churn")
        drive = traffic_driver(
            base,
            "/v1/models/churn:predict",
            [{"instances": [r]} for r in churn_request_rows(400, 7)],
            POLICY.min_requests,
        )
        result = controller.run(2, drive=drive)
    return result, registry, router


def test_healthy_canary_is_promoted(servers: tuple[str, str, Path], tmp_path: Path) -> None:
    result, registry, router = _run(servers, tmp_path)
    assert result.decision == "promoted", result.model_dump_json(indent=1)
    assert [s.percent for s in result.steps if s.verdict == "pass"] == [10, 25, 50, 100]
    first = result.steps[0]
    assert first.canary.requests >= POLICY.min_requests and first.canary.errors == 0
    assert first.canary.predictions == first.canary.requests  # probabilities recorded per request
    assert router.weights == {"canary": 100.0, "primary": 0.0}
    assert registry.production("churn").version == 2 and registry.get("churn", 1).stage == "archived"
    events = registry.history("churn")
    assert sum(e.kind == "canary-step" for e in events) == len(result.steps)
    assert events[-1].kind == "stage" or any(e.kind == "canary-decision" for e in events)


@pytest.mark.parametrize(
    ("faults", "failed_check"),
    [({"fault_error_rate": 0.3}, "error_rate"), ({"fault_latency_s": 0.4}, "p99_latency")],
)
def test_faulty_canary_is_rolled_back(
    servers: tuple[str, str, Path], tmp_path: Path, faults: dict[str, float], failed_check: str
) -> None:
    result, registry, router = _run(servers, tmp_path, **faults)
    assert result.decision == "rolled_back", result.model_dump_json(indent=1)
    assert result.steps[-1].percent == 10, result.steps[0].model_dump_json(indent=1)
    assert failed_check in [c.name for c in result.steps[-1].checks if c.status == "fail"]
    assert router.weights == {"canary": 0.0, "primary": 100.0}
    assert registry.get("churn", 2).stage == "rejected" and registry.production("churn").version == 1
    decision = next(e for e in registry.history("churn") if e.kind == "canary-decision")
    assert decision.message.startswith("rolled_back") and failed_check in decision.evidence["reason"]
