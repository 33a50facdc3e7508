"""The closed loop, end to end on loopback: served traffic -> payload logs -> drift -> alert -> retrain ->
champion/challenger -> canary through the rollout controller -> promotion, with the registry history as evidence;
then a second check on undrifted traffic triggers nothing.

The world changes in two ways at once: the inputs shift (more month-to-month contracts, higher charges) and
churn starts to follow a new, non-monotonic pattern (customers in a middle band of charges and tenure), which
the linear champion cannot express and a boosted challenger can.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import FEATURE_COLUMNS
from slipway.monitoring.alerts import WebhookAlertSink
from slipway.monitoring.loop import check_drift
from slipway.monitoring.payloads import read_payload_logs
from slipway.monitoring.retrain import CallableTrigger, retrain_challenger, train_and_register
from slipway.monitoring.simulate import shift_churn, typed_churn_frame, write_labels
from slipway.registry import ModelRegistry, load_verified_model
from slipway.storage import LocalArtifactStore
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

logger = logging.getLogger("closed-loop")
MODEL = "churn"
SERVER = "slipway.serving.churn_model"


def new_concept(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Churn after the change: likely in a middle band of charges and of tenure."""
    rng = np.random.default_rng(seed)
    band = ((frame["MonthlyCharges"] > 70) & (frame["MonthlyCharges"] < 100)).to_numpy()
    mid_tenure = ((frame["tenure"] > 12) & (frame["tenure"] < 36)).to_numpy()
    z = -2.0 + 3.0 * band + 1.5 * mid_tenure
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-z))).astype(int)


def _instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _send(client: httpx.Client, url: str, frame: pd.DataFrame, batch: int) -> list[str]:
    """POST `frame` in v1 requests of `batch` rows; returns the request ids."""
    ids = []
    for start in range(0, len(frame), batch):
        request_id = uuid.uuid4().hex
        response = client.post(
            f"{url}/v1/models/{MODEL}:predict",
            json={"instances": _instances(frame.iloc[start : start + batch])},
            headers={"x-request-id": request_id},
        )
        assert response.status_code == 200, response.text
        ids.append(request_id)
    return ids


def _wait_for_rows(root: Path, start: datetime, rows: int, timeout: float = 30.0) -> pd.DataFrame:
    """Payload loggers flush every few seconds: poll until the window holds `rows` rows."""
    deadline = time.monotonic() + timeout
    while True:
        frame = read_payload_logs(root, MODEL, start, datetime.now(UTC) + timedelta(seconds=5))
        if len(frame) >= rows or time.monotonic() > deadline:
            return frame
        time.sleep(0.5)


def test_closed_loop(tmp_path: Path, webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    from slipway.rollout.backends import LocalRouterBackend
    from slipway.rollout.controller import CanaryController, CanaryPolicy
    from slipway.rollout.local import ServerSpec, running_servers
    from slipway.rollout.router import TrafficRouter, Variant, serve_router
    from slipway.training.champion import compare_champion_challenger, record_decision

    began = time.monotonic()

    def mark(stage: str) -> None:  # stage timings, shown with the captured log when the test fails
        logger.warning("closed loop: %s at %.1f s", stage, time.monotonic() - began)

    logs, store = tmp_path / "payload", LocalArtifactStore(tmp_path / "artifacts")
    registry = ModelRegistry(store)
    v1 = train_and_register(registry, MODEL, typed_churn_frame(3000, seed=1, with_target=True))
    registry.set_stage(MODEL, v1, "production", message="initial deployment")
    dir1 = registry.download(MODEL, v1, tmp_path / "serve-v1")
    # The canary slot: a second server started with the primary, hot-reloaded with the challenger later
    # (POST /v2/repository/models/<name>/load), as a cluster keeps a canary revision ready.
    slot = registry.download(MODEL, v1, tmp_path / "canary-slot")
    specs = [
        ServerSpec(SERVER, dir1, MODEL, free_port(), ["--payload-log", str(logs), "--variant", "primary"]),
        ServerSpec(SERVER, slot, MODEL, free_port(), ["--payload-log", str(logs), "--variant", "canary"]),
    ]
    alerts = WebhookAlertSink(f"{webhook_receiver.url}/drift", backoff=0.05)
    retrains: list[dict[str, Any]] = []

    def retrain(reason: str, arguments: dict[str, Any]) -> int:
        from threadpoolctl import threadpool_limits

        retrains.append(arguments)
        window = pd.read_csv(arguments["source_uri"])  # the labelled drift window, exported by the check
        with threadpool_limits(limits=1):  # OpenMP threads of the boosted trees only fight each other on 2 cores
            return retrain_challenger(registry, MODEL, window, annotations={"trigger": reason})

    # One OpenMP thread per server: boosted-tree prediction on a busy 2-core machine otherwise spins for seconds.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with (
        running_servers(specs, env=env) as (url1, url2),
        httpx.Client(timeout=30) as client,
    ):
        # 1. A shifted stream is served; the server writes the payload logs; labels arrive later.
        t0 = datetime.now(UTC) - timedelta(seconds=1)
        _send(client, url1, shift_churn(typed_churn_frame(2500, seed=7), seed=2), batch=100)
        mark("served")
        served = _wait_for_rows(logs, t0, 2500)
        assert len(served) == 2500 and set(served["version"]) == {v1} and set(served["variant"]) == {"primary"}
        write_labels(logs, MODEL, served["row_id"].tolist(), new_concept(served, seed=3), datetime.now(UTC))

        # 2. Drift is detected, an alert goes out, a retrain runs on the labelled window.
        mark("labels written")
        result = check_drift(
            registry=registry,
            payload_root=logs,
            model=MODEL,
            start=t0,
            end=datetime.now(UTC) + timedelta(seconds=1),
            report_store=store,
            sample_rows=1000,
            alert_sink=alerts,
            retrain_trigger=CallableTrigger(retrain, name="retrain-challenger"),
            retrain_data_dir=tmp_path / "retrain",
        )
        assert result.status == "drift" and result.summary is not None
        assert result.summary.drifted_columns == ["Contract", "MonthlyCharges"]
        assert result.prediction_drift is True
        assert result.classification is not None and result.classification["rows"] == 2500
        (alert,) = webhook_receiver.requests
        assert alert["path"] == "/drift" and alert["body"]["details"]["drifted_columns"] == [
            "Contract",
            "MonthlyCharges",
        ]
        assert len(retrains) == 1 and result.retrain is not None
        v2 = result.retrain.registered_version
        assert v2 == v1 + 1 and registry.get(MODEL, v2).stage == "candidate"
        assert registry.get(MODEL, v2).annotations["selection"]["chosen"] == "gradient_boosting"

        # 3. Champion/challenger on the same folds of the labelled window.
        mark("drift checked and retrained")
        labelled = served.assign(label=new_concept(served, seed=3))
        champion, _ = load_verified_model(registry.download(MODEL, v1, tmp_path / "cc-v1"))
        challenger, _ = load_verified_model(registry.download(MODEL, v2, tmp_path / "cc-v2"))
        decision = compare_champion_challenger(champion, challenger, labelled[FEATURE_COLUMNS], labelled["label"])
        record_decision(registry, MODEL, v2, decision)
        assert decision.promote is True and decision.p_value is not None and decision.p_value < 0.05
        assert decision.mean_diff is not None and decision.mean_diff > 0.03

        # 4. The challenger goes out as a canary behind the local router and is promoted.
        mark("champion/challenger decided")
        registry.download(MODEL, v2, slot)
        reload = client.post(f"{url2}/v2/repository/models/{MODEL}/load")
        assert reload.status_code == 200, reload.text
        for _ in range(5):  # warm the reloaded server up before it is measured against the primary
            _send(client, url2, typed_churn_frame(20, seed=5), batch=20)
        mark("canary slot reloaded")
        router = TrafficRouter(
            [Variant("canary", url2, 0, version=v2), Variant("primary", url1, 100, version=v1)], seed=11
        )
        rng = np.random.default_rng(21)
        with serve_router(router, free_port()) as router_url:

            def drive(percent: int) -> None:
                batch = shift_churn(typed_churn_frame(140, seed=int(rng.integers(1_000_000))), seed=percent)
                truth = new_concept(batch, seed=percent)
                ids = _send(client, router_url, batch, batch=1)
                labels = [{"request_id": i, "label": int(y)} for i, y in zip(ids, truth, strict=True)]
                assert client.post(f"{router_url}/router/labels", json={"labels": labels}).status_code == 200

            # A retrain for drift is meant to move the prediction distribution, and boosted trees answer a single
            # row a few ms slower than a linear model (tens of ms on a shared 2-core runner): delayed labels gate.
            policy = CanaryPolicy(
                steps=[50, 100],
                min_requests=50,
                min_predictions=50,
                min_labels=50,
                max_psi=5.0,
                min_p99_increase_ms=250.0,
                max_extensions=1,
                failure_threshold=2,  # a shared 2-core machine: one noisy window is judged again, not fatal
            )
            rollout = CanaryController(LocalRouterBackend(router), policy, registry, MODEL).run(v2, drive=drive)
            mark("rollout finished")
            assert rollout.decision == "promoted", rollout.reason
            for step in rollout.steps:
                accuracy = next(c for c in step.checks if c.name == "accuracy")
                # accuracy.value is the primary's accuracy minus the canary's: the challenger is better.
                assert accuracy.status == "pass" and accuracy.value is not None and accuracy.value < 0, accuracy
            assert registry.production(MODEL).version == v2  # type: ignore[union-attr]
            assert registry.get(MODEL, v1).stage == "archived"

            # 5. The registry history tells the whole story, with evidence.
            events = registry.history(MODEL)
            kinds = [e.kind for e in events]
            story = ["registered", "stage", "drift", "alert", "registered", "retrain", "champion-challenger", "stage"]
            it = iter(kinds)
            assert all(k in it for k in story), kinds
            assert kinds.count("canary-step") >= 2 and kinds[-3:] == ["canary-decision", "stage", "stage"]
            drift = next(e for e in events if e.kind == "drift")
            assert drift.version == v1 and drift.evidence["drifted_columns"] == ["Contract", "MonthlyCharges"]
            assert Path(drift.evidence["reports"]["drift_report.html"].removeprefix("file://")).is_file()
            retrain_event = next(e for e in events if e.kind == "retrain")
            assert retrain_event.version == v2 and retrain_event.evidence["drift_version"] == v1
            cc = next(e for e in events if e.kind == "champion-challenger")
            assert cc.version == v2 and cc.evidence["promote"] is True
            promoted = [e for e in events if e.kind == "stage" and e.evidence.get("to_stage") == "production"]
            assert [e.version for e in promoted] == [v1, v2]

            # 6. New traffic like the data v2 was trained on: the next check finds nothing and does nothing.
            mark("history checked")
            t1 = datetime.now(UTC)
            before, alerts_before = len(events), len(webhook_receiver.requests)
            _send(client, router_url, shift_churn(typed_churn_frame(2200, seed=8), seed=9), batch=100)
            calm = _wait_for_rows(logs, t1, 2200)
            assert len(calm) == 2200 and set(calm["version"]) == {v2} and set(calm["variant"]) == {"canary"}
            mark("calm traffic served")
            second = check_drift(
                registry=registry,
                payload_root=logs,
                model=MODEL,
                start=t1,
                end=datetime.now(UTC) + timedelta(seconds=1),
                report_store=store,
                sample_rows=1000,
                alert_sink=alerts,
                retrain_trigger=CallableTrigger(retrain, name="retrain-challenger"),
                retrain_data_dir=tmp_path / "retrain",
            )
    mark("second check done")
    assert second.version == v2 and second.status == "no-drift", second.summary
    assert second.summary is not None and second.summary.drifted_columns == [] and second.prediction_drift is False
    assert len(webhook_receiver.requests) == alerts_before and len(retrains) == 1
    assert len(registry.history(MODEL)) == before
