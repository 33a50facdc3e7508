from __future__ import annotations

import pytest
import yaml

from slipway.deploy.inference_service import build_inference_service, to_yaml

pytestmark = pytest.mark.unit


def _walk_keys(obj: object) -> list[str]:
    keys: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            keys.append(k)
            if k not in ("labels", "annotations", "requests", "limits"):
                keys.extend(_walk_keys(v))
    elif isinstance(obj, list):
        for item in obj:
            keys.extend(_walk_keys(item))
    return keys


def test_manifest_shape() -> None:
    isvc = build_inference_service("churn", "s3://models/churn/v3", "ghcr.io/x/slipway:1.0")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"] == {
        "name": "churn",
        "namespace": "slipway",
        "labels": {"app.kubernetes.io/name": "churn", "app.kubernetes.io/part-of": "slipway"},
    }
    predictor = isvc["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["serviceAccountName"] == "slipway-model-storage"
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["command"] == ["python", "-m", "slipway.serving.churn_model"]
    assert container["args"] == ["--model-dir", "/mnt/models", "--name", "churn", "--http-port", "8080"]
    assert {"name": "STORAGE_URI", "value": "s3://models/churn/v3"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert set(container["resources"]) == {"requests", "limits"}


def test_canary_and_camel_case() -> None:
    isvc = build_inference_service("churn", "s3://m/churn/v4", "img:1", namespace="prod", canary_traffic_percent=10)
    assert isvc["metadata"]["namespace"] == "prod"
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    keys = _walk_keys(isvc)
    assert "serviceAccountName" in keys and "readinessProbe" in keys
    assert not [k for k in keys if "_" in k], "snake_case field names leaked into the manifest"


def test_canary_range() -> None:
    with pytest.raises(ValueError):
        build_inference_service("churn", "s3://m", "img", canary_traffic_percent=101)


def test_to_yaml_round_trip() -> None:
    isvc = build_inference_service("churn", "s3://m/churn/v1", "img:1", canary_traffic_percent=0)
    text = to_yaml(isvc)
    assert "canaryTrafficPercent: 0" in text
    assert yaml.safe_load(text) == isvc
