"""One drift check end to end on a real registry: reports, metrics, alert, retrain trigger, registry events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from slipway.data.churn_schema import FEATURE_COLUMNS
from slipway.errors import DataValidationError, MonitoringError
from slipway.monitoring.alerts import WebhookAlertSink
from slipway.monitoring.loop import check_drift, parse_window
from slipway.monitoring.retrain import (
    CallableTrigger,
    KfpRunTrigger,
    LocalPipelineTrigger,
    export_labelled_window,
    train_and_register,
)
from slipway.monitoring.simulate import shift_churn, typed_churn_frame, write_labels, write_payload_log
from slipway.registry import ModelRegistry, load_verified_model
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory):  # type: ignore[no-untyped-def]
    """v1 trained on 3000 synthetic rows, in production, with its reference files."""
    home = tmp_path_factory.mktemp("home")
    registry = ModelRegistry(LocalArtifactStore(home / "artifacts"))
    version = train_and_register(registry, "churn", typed_churn_frame(3000, seed=1, with_target=True))
    registry.set_stage("churn", version, "production", message="initial")
    model, _ = load_verified_model(registry.download("churn", version, home / "serving"))
    return registry, model, home


def _traffic(root: Path, model: Any, frame: Any, at: datetime, labels: bool = False) -> list[str]:
    preds = model.predict_proba(frame[FEATURE_COLUMNS])[:, 1]
    ids = write_payload_log(root, "churn", 1, frame, preds, at, batch=100)
    if labels:
        write_labels(root, "churn", ids, (np.random.default_rng(0).random(len(ids)) < preds).astype(int), at)
    return ids


def test_parse_window() -> None:
    assert parse_window("90m") == timedelta(minutes=90) and parse_window(" 1d ") == timedelta(days=1)
    for bad in ("0h", "1w", "h", "-1h"):
        with pytest.raises(DataValidationError):
            parse_window(bad)


def test_drift_detected_reports_alert_metrics_retrain(served, tmp_path: Path, webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    registry, model, _ = served
    root = tmp_path / "logs"
    _traffic(root, model, shift_churn(typed_churn_frame(2500, seed=7), seed=2), T0, labels=True)
    retrained: list[dict[str, Any]] = []
    trigger = CallableTrigger(lambda reason, arguments: retrained.append({"reason": reason, **arguments}) or 99)
    before = len(registry.history("churn"))
    result = check_drift(
        registry=registry,
        payload_root=root,
        model="churn",
        start=T0,
        end=T0 + timedelta(hours=1),
        report_store=LocalArtifactStore(tmp_path / "reports"),
        alert_sink=WebhookAlertSink(webhook_receiver.url, backoff=0.01),
        metrics_textfile=tmp_path / "drift.prom",
        retrain_trigger=trigger,
        retrain_data_dir=tmp_path / "retrain",
        sample_rows=1000,
    )
    assert result.status == "drift" and result.version == 1 and result.rows == 2500
    assert result.summary is not None and result.summary.drifted_columns == ["Contract", "MonthlyCharges"]
    assert result.prediction_drift is True and result.summary.dataset_drift is False
    # Reports in the artifact store: Evidently HTML/JSON on the sample, the classification report, the check.
    assert set(result.reports) == {
        "drift_report.html",
        "drift_report.json",
        "classification_report.html",
        "drift_check.json",
    }
    check = json.loads(Path(result.reports["drift_check.json"].removeprefix("file://")).read_text())
    assert check["status"] == "drift" and check["summary"]["drifted_columns"] == ["Contract", "MonthlyCharges"]
    assert result.classification is not None and 0.5 < result.classification["roc_auc"] <= 1.0
    assert result.classification["rows"] == 2500
    # One alert with the evidence, metrics in the textfile, one retrain with the labelled window as its source.
    (alert,) = webhook_receiver.requests
    assert alert["body"]["details"]["drifted_columns"] == ["Contract", "MonthlyCharges"]
    assert 'slipway_drift_detected{model="churn"} 1.0' in (tmp_path / "drift.prom").read_text()
    (call,) = retrained
    source = Path(call["source_uri"])
    assert source.is_file() and len(source.read_text().splitlines()) == 2501
    assert result.retrain is not None and result.retrain.registered_version == 99
    kinds = [e.kind for e in registry.history("churn")[before:]]
    assert kinds == ["drift", "alert", "retrain"]
    drift_event = registry.history("churn")[before]
    assert drift_event.evidence["drifted_columns"] == ["Contract", "MonthlyCharges"]
    assert drift_event.evidence["reports"]["drift_report.html"].startswith("file://")


def test_unshifted_window_triggers_nothing(served, tmp_path: Path, webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    registry, model, _ = served
    root = tmp_path / "logs"
    _traffic(root, model, typed_churn_frame(2500, seed=8), T0)
    trigger = mock.Mock()
    before = len(registry.history("churn"))
    result = check_drift(
        registry=registry,
        payload_root=root,
        model="churn",
        start=T0,
        end=T0 + timedelta(hours=1),
        alert_sink=WebhookAlertSink(webhook_receiver.url),
        metrics_textfile=tmp_path / "drift.prom",
        retrain_trigger=trigger,
        html=False,
    )
    assert result.status == "no-drift" and result.summary is not None and result.summary.drifted_columns == []
    assert result.prediction_drift is False
    assert webhook_receiver.requests == [] and not trigger.trigger.called
    assert len(registry.history("churn")) == before
    assert 'slipway_drift_detected{model="churn"} 0.0' in (tmp_path / "drift.prom").read_text()


def test_too_few_rows_gives_no_verdict(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, model, _ = served
    _traffic(tmp_path, model, shift_churn(typed_churn_frame(300, seed=9)), T0)
    result = check_drift(registry=registry, payload_root=tmp_path, model="churn", start=T0, end=T0 + timedelta(hours=1))
    assert result.status == "insufficient-data" and result.rows == 300 and result.summary is None


def test_version_without_reference_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(LocalArtifactStore(tmp_path / "a"))
    (tmp_path / "m.joblib").write_bytes(b"x")
    registry.register(
        "churn", tmp_path / "m.joblib", metrics={}, params={}, training_data_sha256="0", feature_schema={}
    )
    write_payload_log(tmp_path, "churn", 1, typed_churn_frame(20, seed=1), np.zeros(20), T0)
    with pytest.raises(MonitoringError, match=r"reference_profile\.json"):
        check_drift(
            registry=registry, payload_root=tmp_path, model="churn", start=T0, end=T0 + timedelta(hours=1), min_rows=1
        )


def test_kfp_trigger_creates_a_run_from_the_package(tmp_path: Path) -> None:
    package = tmp_path / "churn-training.yaml"
    package.write_text("pipelineInfo: {}\n")
    client = mock.Mock()
    client.create_run_from_pipeline_package.return_value = mock.Mock(run_id="run-123")
    factory = mock.Mock(return_value=client)
    trigger = KfpRunTrigger(
        "http://ml-pipeline.kubeflow:8888",
        package,
        experiment="drift",
        base_arguments={"n_rows": 5},
        client_factory=factory,
    )
    result = trigger.trigger(reason="drift", arguments={"source_uri": "s3://b/k.csv"})
    factory.assert_called_once_with(host="http://ml-pipeline.kubeflow:8888")
    args, kwargs = client.create_run_from_pipeline_package.call_args
    assert args == (str(package),)
    assert kwargs["arguments"] == {"n_rows": 5, "source_uri": "s3://b/k.csv"} and kwargs["experiment_name"] == "drift"
    assert kwargs["run_name"].startswith("churn-training-drift-")
    assert result.mode == "kfp" and result.run_id == "run-123"
    client.create_run_from_pipeline_package.side_effect = ConnectionError("refused")
    with pytest.raises(MonitoringError, match="could not create"):
        trigger.trigger(reason="drift", arguments={})
    with pytest.raises(MonitoringError, match="slipway compile"):
        KfpRunTrigger("http://x", tmp_path / "missing.yaml", client_factory=factory).trigger(reason="r", arguments={})


def test_local_trigger_runs_the_pipeline_and_reports_the_new_version(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, _, _ = served
    latest = registry.get("churn").version

    def fake_run(name: str, root: Path, **arguments: Any) -> Path:
        assert name == "churn-training" and arguments == {"n_rows": 10, "source_uri": "/x.csv"}
        train_and_register(registry, "churn", typed_churn_frame(1200, seed=3, with_target=True))
        return root / "run-1"

    with mock.patch("pipelines.run_local.run_pipeline_locally", side_effect=fake_run):
        trigger = LocalPipelineTrigger("churn-training", tmp_path, {"n_rows": 10}, registry=registry)
        result = trigger.trigger(reason="drift", arguments={"source_uri": "/x.csv"})
    assert result.mode == "local" and result.registered_version == latest + 1
    assert result.run_dir.endswith("run-1")


def test_export_labelled_window(tmp_path: Path) -> None:
    import pandas as pd

    frame = typed_churn_frame(4, seed=1).assign(row_id=["a:0", "a:1", "a:2", "a:3"], label=[1, None, 0, 1])
    path = export_labelled_window(frame, FEATURE_COLUMNS, tmp_path / "w.csv")
    out = pd.read_csv(path)
    assert out["customerID"].tolist() == ["a-0", "a-2", "a-3"] and out["Churn"].tolist() == ["Yes", "No", "Yes"]
    with pytest.raises(MonitoringError, match="no labelled rows"):
        export_labelled_window(frame.assign(label=None), FEATURE_COLUMNS, tmp_path / "x.csv")


def test_classification_report_scores_the_current_rows(tmp_path: Path) -> None:
    import pandas as pd

    from slipway.monitoring.drift import run_classification_report

    y = np.random.default_rng(0).integers(0, 2, 400)
    perfect = pd.DataFrame({"target": y, "prediction": np.where(y == 1, 0.9, 0.1)})
    noise = pd.DataFrame({"target": y, "prediction": np.random.default_rng(1).random(400)})
    good = run_classification_report(perfect, tmp_path / "a", reference=noise)
    assert good == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "rows": 400.0}
    bad = run_classification_report(noise, tmp_path / "b", reference=perfect)
    assert 0.35 < bad["roc_auc"] < 0.65 and (tmp_path / "b" / "classification_report.html").stat().st_size > 1000
    with pytest.raises(DataValidationError, match="both classes"):
        run_classification_report(perfect.assign(target=1), tmp_path / "c")
