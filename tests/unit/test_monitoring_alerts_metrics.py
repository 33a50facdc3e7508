"""Alert webhook (retries, refusals, no secret leaks) and the Prometheus drift gauges (textfile and Pushgateway)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slipway.errors import AlertDeliveryError
from slipway.monitoring.alerts import WebhookAlertSink, build_drift_alert
from slipway.monitoring.drift import DriftSummary
from slipway.monitoring.metrics import drift_registry, export_drift_metrics

pytestmark = pytest.mark.unit

CHECK = {"drift_share": 0.25, "drifted_columns": ["Contract", "MonthlyCharges"], "prediction_drift": None}


def test_alert_is_retried_until_the_receiver_accepts(webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    webhook_receiver.fail_first = 2
    sink = WebhookAlertSink(f"{webhook_receiver.url}/hooks/T0K3N", backoff=0.01)
    attempts = sink.send(build_drift_alert("churn", 4, CHECK))
    assert attempts == 3 and len(webhook_receiver.requests) == 3
    body = webhook_receiver.requests[-1]["body"]
    assert body["model"] == "churn" and body["version"] == 4 and body["kind"] == "drift"
    assert "Contract, MonthlyCharges" in body["text"] and body["details"]["drift_share"] == 0.25
    assert webhook_receiver.requests[-1]["path"] == "/hooks/T0K3N"


def test_alert_gives_up_and_never_leaks_the_url_path(webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    webhook_receiver.fail_first = 99
    sink = WebhookAlertSink(f"{webhook_receiver.url}/hooks/T0K3N", attempts=3, backoff=0.01)
    with pytest.raises(AlertDeliveryError, match=r"after 3 attempt\(s\) \(HTTP 503\)") as err:
        sink.send(build_drift_alert("churn", 4, CHECK))
    assert "T0K3N" not in str(err.value) and len(webhook_receiver.requests) == 3


def test_client_errors_are_not_retried(webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    webhook_receiver.fail_first, webhook_receiver.fail_status = 1, 400
    with pytest.raises(AlertDeliveryError, match="HTTP 400"):
        WebhookAlertSink(webhook_receiver.url, backoff=0.01).send({"text": "x"})
    assert len(webhook_receiver.requests) == 1


def _summary() -> DriftSummary:
    return DriftSummary(
        dataset_drift=False,
        drift_share=0.5,
        drifted_columns=["a"],
        columns={
            "a": {"drifted": True, "score": 0.31, "method": "wasserstein"},
            "b": {"drifted": False, "score": 0.02, "method": "jensenshannon"},
        },
        prediction_drift={"drifted": True, "score": 0.2, "method": "wasserstein"},
        n_current=2500,
    )


def test_metrics_textfile_has_the_agreed_names(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "slipway_drift.prom"
    export_drift_metrics(drift_registry("churn", _summary(), detected=True), textfile=path)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }
    assert samples[("slipway_drift_share", (("model", "churn"),))] == 0.5
    assert samples[("slipway_drift_detected", (("model", "churn"),))] == 1.0
    key = ("slipway_feature_drift_score", (("feature", "a"), ("method", "wasserstein"), ("model", "churn")))
    assert samples[key] == 0.31
    assert samples[("slipway_prediction_drift_score", (("method", "wasserstein"), ("model", "churn")))] == 0.2
    assert samples[("slipway_drift_window_rows", (("model", "churn"),))] == 2500
    # Without an override the dataset verdict decides.
    assert 'slipway_drift_detected{model="churn"} 0.0' in drift_registry_text(_summary())


def drift_registry_text(summary: DriftSummary) -> str:
    from prometheus_client import generate_latest

    return generate_latest(drift_registry("churn", summary)).decode()


def test_metrics_push_to_gateway(webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    export_drift_metrics(
        drift_registry("churn", _summary()), pushgateway_url=webhook_receiver.url, grouping_key={"model": "churn"}
    )
    (request,) = webhook_receiver.requests
    assert request["method"] == "PUT" and request["path"] == "/metrics/job/slipway-drift/model/churn"
    assert 'slipway_feature_drift_score{feature="b",method="jensenshannon",model="churn"} 0.02' in request["body"]
