"""`slipway monitor drift`, `slipway models history` and `slipway models rollback [--cluster]`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from slipway.cli import app
from slipway.data.churn_schema import FEATURE_COLUMNS
from slipway.monitoring.retrain import train_and_register
from slipway.monitoring.simulate import shift_churn, typed_churn_frame, write_payload_log
from slipway.registry import ModelRegistry, load_verified_model
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path))
    monkeypatch.setenv("SLIPWAY_LOG_LEVEL", "WARNING")
    return tmp_path


def _registry(home: Path) -> ModelRegistry:
    return ModelRegistry(LocalArtifactStore(home / "artifacts"))


def test_monitor_drift_prints_the_verdict(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry(home)
    version = train_and_register(registry, "churn", typed_churn_frame(2500, seed=1, with_target=True))
    registry.set_stage("churn", version, "production")
    model, _ = load_verified_model(registry.download("churn", version, home / "m"))
    now = datetime.now(UTC)
    current = shift_churn(typed_churn_frame(2000, seed=5))
    write_payload_log(
        home / "logs",
        "churn",
        version,
        current,
        model.predict_proba(current[FEATURE_COLUMNS])[:, 1],
        now - timedelta(minutes=20),
        spacing=timedelta(milliseconds=1),
    )
    monkeypatch.setenv("SLIPWAY_MONITORING_PAYLOAD_ROOT", str(home / "logs"))
    monkeypatch.setenv("SLIPWAY_MONITORING_METRICS_TEXTFILE", str(home / "drift.prom"))
    result = CliRunner().invoke(
        app, ["monitor", "drift", "--model", "churn", "--window", "1h", "--no-retrain", "--fail-on-drift"]
    )
    assert result.exit_code == 3, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["status"] == "drift" and line["rows"] == 2000 and line["version"] == version
    assert line["drifted_columns"] == ["Contract", "MonthlyCharges"] and line["retrain"] is None
    assert line["reports"]["drift_report.html"].startswith("file://")
    assert 'slipway_drift_detected{model="churn"} 1.0' in (home / "drift.prom").read_text()
    # A window with no traffic: no verdict, exit 0.
    quiet = CliRunner().invoke(app, ["monitor", "drift", "--window", "1h", "--end", "2020-01-01T00:00:00Z"])
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.output.strip().splitlines()[-1])["status"] == "insufficient-data"
    bad = CliRunner().invoke(app, ["monitor", "drift", "--window", "soon"])
    assert bad.exit_code == 2 and "invalid window" in bad.output


def _two_production_versions(home: Path) -> ModelRegistry:
    registry = _registry(home)
    for seed in (1, 2):
        (home / f"m{seed}.joblib").write_bytes(f"model {seed}".encode())
        meta = registry.register(
            "churn",
            home / f"m{seed}.joblib",
            metrics={"roc_auc": 0.8 + seed / 100, "f1": 0.5},
            params={},
            training_data_sha256="0",
            feature_schema={},
        )
        registry.set_stage("churn", meta.version, "production", message=f"promote v{meta.version}")
    registry.annotate("churn", 2, decision={"promote": True, "p_value": 0.012})
    return registry


def test_models_history_lists_versions_and_events(home: Path) -> None:
    _two_production_versions(home)
    result = CliRunner().invoke(app, ["models", "history", "churn"])
    assert result.exit_code == 0, result.output
    assert "v1" in result.output and "archived" in result.output and "production" in result.output
    assert "0.8200" in result.output and "promote (p=0.012)" in result.output
    assert "registered" in result.output and "promote v2" in result.output
    as_json = json.loads(CliRunner().invoke(app, ["models", "history", "churn", "--json"]).output)
    assert [v["stage"] for v in as_json["versions"]] == ["archived", "production"]
    assert [e["kind"] for e in as_json["events"]].count("stage") == 3
    missing = CliRunner().invoke(app, ["models", "history", "nope"])
    assert missing.exit_code == 2 and "no model named 'nope'" in missing.output


def test_models_rollback_restores_previous_version_locally_and_on_the_cluster(home: Path) -> None:
    registry = _two_production_versions(home)
    api = mock.Mock()
    api.get_namespaced_custom_object.return_value = {
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 10,
                "containers": [
                    {"name": "kserve-container", "env": [{"name": "STORAGE_URI", "value": "s3://b/m/churn/v2"}]}
                ],
            }
        }
    }
    with mock.patch("slipway.monitoring.rollback.kubernetes_custom_objects_api", return_value=api):
        result = CliRunner().invoke(app, ["models", "rollback", "churn", "--cluster", "--reason", "bad canary"])
    assert result.exit_code == 0, result.output
    assert "v2 -> v1" in result.output
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert registry.get("churn", 2).stage == "archived"
    (call,) = api.patch_namespaced_custom_object.call_args_list
    group, version, namespace, plural, name, body = call.args
    assert (group, version, namespace, plural, name) == (
        "serving.kserve.io",
        "v1beta1",
        "slipway",
        "inferenceservices",
        "churn",
    )
    predictor = body["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] is None
    assert predictor["containers"][0]["env"] == [
        {"name": "STORAGE_URI", "value": "s3://slipway-artifacts/models/churn/v1"}
    ]
    assert body["metadata"]["labels"]["slipway.io/model-version"] == "1"
    kinds = [e.kind for e in registry.history("churn")]
    assert kinds[-1] == "rollback-cluster" and "rollback" in kinds
    # Nothing earlier to restore: a clear error, exit 2.
    again = CliRunner().invoke(app, ["models", "rollback", "churn"])
    assert again.exit_code == 2 and "no earlier production version" in again.output


def test_cluster_patch_of_a_model_spec_and_api_failure() -> None:
    from slipway.errors import RegistryError
    from slipway.monitoring.rollback import patch_inference_service_version

    api = mock.Mock()
    api.get_namespaced_custom_object.return_value = {"spec": {"predictor": {"model": {"storageUri": "s3://x/v3"}}}}
    body = patch_inference_service_version(api, "churn", "ns", "s3://x/v2", 2)
    assert body["spec"]["predictor"] == {"canaryTrafficPercent": None, "model": {"storageUri": "s3://x/v2"}}
    api.patch_namespaced_custom_object.side_effect = RuntimeError("403 Forbidden")
    with pytest.raises(RegistryError, match="may patch inferenceservices"):
        patch_inference_service_version(api, "churn", "ns", "s3://x/v2", 2)
