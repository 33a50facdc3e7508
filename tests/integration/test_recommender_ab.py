"""Two recommender versions served by real KServe ModelServers: the predictor's contract, and an A/B test
through the sticky router with click outcomes logged to JSONL and analysed with the planned z-test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from slipway.recommender.data import generate_interactions, split_last_n
from slipway.recommender.model import train_recommender
from slipway.recommender.training import register_recommender
from slipway.registry import ModelRegistry
from slipway.rollout.ab import OutcomeLogger, analyze_outcome_log, assign, plan_ab_test, render_report
from slipway.rollout.local import ServerSpec, running_servers
from slipway.rollout.router import TrafficRouter, Variant, serve_router
from slipway.storage import LocalArtifactStore
from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODULE = "slipway.serving.recommender_model"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    tmp = tmp_path_factory.mktemp("recsys")
    frame = generate_interactions(1200, 400, seed=21)
    train, test = split_last_n(frame, 2)
    registry = ModelRegistry(LocalArtifactStore(tmp / "artifacts"))
    dirs = []
    for algorithm in ("popularity", "item_knn"):  # v1 = control, v2 = treatment
        path = train_recommender(train, algorithm).save(tmp / f"{algorithm}.joblib")
        version = register_recommender(registry, "recommender", path, {}, {"algorithm": algorithm}, train)
        dirs.append(registry.download("recommender", version, tmp / f"v{version}"))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SLIPWAY_SERVING_TOKEN", None)
    specs = [
        ServerSpec(MODULE, dirs[0], "recommender", free_port(), ["--variant", "control"]),
        ServerSpec(MODULE, dirs[1], "recommender", free_port(), ["--variant", "treatment"]),
    ]
    with running_servers(specs, env=env, timeout=150) as (control, treatment):
        yield control, treatment, train, test


def _predict(base: str, body: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/models/recommender:predict", json=body, timeout=10)


def test_predictor_contract(served: tuple[str, str, pd.DataFrame, pd.DataFrame]) -> None:
    _, treatment, train, _ = served
    user = train["user_id"].iloc[0]
    seen = set(train.loc[train["user_id"] == user, "item_id"])
    r = _predict(
        treatment, {"instances": [{"user_id": user}, {"recent_items": ["i001", "nope"], "k": 3}, {"user_id": "new"}]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "2"
    known, fresh, cold = body["predictions"]
    assert len(known["items"]) == 10 and not seen & set(known["items"]) and not known["fallback"]
    assert len(fresh["items"]) == 3 and fresh["unknown_items"] == ["nope"]
    assert cold["fallback"] and cold["items"][0] == train["item_id"].value_counts().index[0]
    v2 = httpx.post(
        f"{treatment}/v2/models/recommender/infer",
        json={
            "id": "r1",
            "inputs": [{"name": "user_id", "shape": [2], "datatype": "BYTES", "data": [user, "new"]}],
            "parameters": {"k": 4},
        },
        timeout=10,
    )
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["items"]["shape"] == [2, 4] and outputs["items"]["data"][:4] == known["items"][:4]
    metrics = httpx.get(f"{treatment}/metrics", timeout=10).text
    assert (
        'slipway_requests_total{model="recommender",protocol="v1",status="200",variant="treatment",version="2"}'
        in metrics
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"instances": [{}]}, "send user_id, recent_items or both"),
        ({"instances": [{"user": "u1"}]}, "unknown field"),
        ({"instances": [{"user_id": "u1", "k": 0}]}, "k must be an integer"),
        ({"instances": [{"user_id": ["u1"]}]}, "user_id must be"),
        ({"instances": [{"recent_items": "i001"}]}, "recent_items must be a list"),
        ({"instances": []}, "instances"),
        ({"nothing": 1}, "instances"),
    ],
)
def test_bad_requests_are_400(served: tuple[str, str, pd.DataFrame, pd.DataFrame], body: Any, fragment: str) -> None:
    r = _predict(served[1], body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_ab_test_of_two_recommender_versions(
    served: tuple[str, str, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    control_url, treatment_url, _, test = served
    # planned before any traffic: baseline hit rate of the popular list ~0.2, worth detecting +0.1
    plan = plan_ab_test("recsys-knn-vs-popularity", 0.20, 0.10, alpha=0.05, power=0.8)
    relevant = test.groupby("user_id")["item_id"].agg(set).to_dict()
    users = sorted(relevant)
    assert len(users) >= 2 * plan.n_per_variant * 1.2
    router = TrafficRouter(
        [Variant("treatment", treatment_url, 50, version=2), Variant("control", control_url, 50, version=1)],
        sticky=True,
        salt=plan.experiment,
    )
    log = OutcomeLogger(tmp_path / "outcomes.jsonl")
    with serve_router(router, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        for user in users:
            r = client.post("/v1/models/recommender:predict", json={"instances": [{"user_id": user, "k": 10}]})
            assert r.status_code == 200
            variant = r.headers["x-slipway-variant"]
            assert variant == assign(plan, user)  # the router and the analysis agree on the assignment
            log.exposure(plan.experiment, user, variant)
            # simulated user: clicks when the list shows one of the items they went on to consume
            if relevant[user] & set(r.json()["predictions"][0]["items"]):
                log.outcome(plan.experiment, user, variant, "click")
    result = analyze_outcome_log(plan, log.path, event="click")
    assert min(result.control.users, result.treatment.users) >= plan.n_per_variant
    assert result.treatment.rate > result.control.rate + 0.1
    assert result.decision == "treatment wins" and result.p_value is not None and result.p_value < plan.alpha
    assert result.srm_p_value is not None and result.srm_p_value > 0.001
    report = render_report(result)
    assert "treatment wins" in report and plan.experiment in report
