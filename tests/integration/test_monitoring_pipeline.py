"""The drift-monitoring pipeline run with kfp.local, and its recurring-run definitions against a mocked client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest

from slipway.data.churn_schema import FEATURE_COLUMNS
from slipway.monitoring.retrain import train_and_register
from slipway.monitoring.simulate import shift_churn, typed_churn_frame, write_payload_log
from slipway.registry import ModelRegistry, load_verified_model
from slipway.storage import LocalArtifactStore

END = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


@pytest.mark.component
def test_drift_monitoring_pipeline_runs_locally(tmp_path: Path, monkeypatch, webhook_receiver) -> None:  # type: ignore[no-untyped-def]
    from pipelines.run_local import find_outputs, run_pipeline_locally

    home, logs = tmp_path / "home", tmp_path / "logs"
    registry = ModelRegistry(LocalArtifactStore(home / "artifacts"))
    version = train_and_register(registry, "churn", typed_churn_frame(2500, seed=1, with_target=True))
    registry.set_stage("churn", version, "production")
    model, _ = load_verified_model(registry.download("churn", version, tmp_path / "m"))
    current = shift_churn(typed_churn_frame(2200, seed=3))
    preds = model.predict_proba(current[FEATURE_COLUMNS])[:, 1]
    write_payload_log(
        logs, "churn", version, current, preds, END - timedelta(minutes=40), spacing=timedelta(milliseconds=1)
    )
    monkeypatch.setenv("SLIPWAY_MONITORING_ALERT_WEBHOOK_URL", f"{webhook_receiver.url}/alert")
    monkeypatch.setenv("SLIPWAY_MONITORING_SAMPLE_ROWS", "1000")

    run_dir = run_pipeline_locally(
        "drift-monitoring",
        tmp_path / "root",
        model_name="churn",
        window="1h",
        end=END.isoformat(),
        slipway_home=str(home),
        payload_root=str(logs),
        retrain_on_drift=False,
    )
    task = next(p.name for p in run_dir.iterdir() if p.name.startswith("check-serving-drift"))
    html = find_outputs(run_dir, task, "report")
    page = html.read_bytes()
    assert page.lstrip().startswith(b"<!DOCTYPE html>") and b"MonthlyCharges" in page and b"Contract" in page
    check = json.loads(find_outputs(run_dir, task, "check").read_text())
    assert check["status"] == "drift" and check["rows"] == 2200
    assert check["summary"]["drifted_columns"] == ["Contract", "MonthlyCharges"]
    assert check["reports"]["drift_report.html"].startswith("file://")
    (alert,) = webhook_receiver.requests
    assert alert["path"] == "/alert" and alert["body"]["details"]["drifted_columns"] == ["Contract", "MonthlyCharges"]
    assert [e.kind for e in registry.history("churn")][-2:] == ["drift", "alert"]


@pytest.mark.unit
def test_recurring_runs_are_created_from_compiled_packages(tmp_path: Path) -> None:
    from pipelines.compile import compile_all
    from pipelines.recurring_runs import RECURRING_RUNS, schedule_recurring_runs

    compile_all(tmp_path)
    client = mock.Mock()
    client.create_experiment.return_value = mock.Mock(experiment_id="exp-1")
    client.create_recurring_run.side_effect = [mock.Mock(recurring_run_id=f"rr-{i}") for i in range(2)]
    created = schedule_recurring_runs(
        client, tmp_path, overrides={"drift-monitoring-hourly": {"slipway_home": "/data"}}
    )
    assert created == {"drift-monitoring-hourly": "rr-0", "churn-training-weekly": "rr-1"}
    client.create_experiment.assert_called_once_with("slipway")
    first, second = client.create_recurring_run.call_args_list
    assert first.args == ("exp-1", "drift-monitoring-hourly")
    assert first.kwargs["cron_expression"] == "0 5 * * * *" and first.kwargs["max_concurrency"] == 1
    assert first.kwargs["params"] == {
        "model_name": "churn",
        "window": "1h",
        "retrain_on_drift": True,
        "slipway_home": "/data",
    }
    assert first.kwargs["pipeline_package_path"] == str(tmp_path / "drift-monitoring.yaml")
    assert second.kwargs["pipeline_package_path"] == str(tmp_path / "churn-training.yaml")
    assert all(len(r.cron.split()) == 6 for r in RECURRING_RUNS)
    with pytest.raises(FileNotFoundError, match="slipway compile"):
        schedule_recurring_runs(client, tmp_path / "empty")
