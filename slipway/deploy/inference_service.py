"""KServe InferenceService manifests for the churn predictor, built from the kserve SDK's typed models."""

from __future__ import annotations

import sys
from typing import Any

import yaml
from kubernetes import client as k8s

MODEL_MOUNT = "/mnt/models"
CONTAINER_NAME = "kserve-container"
HTTP_PORT = 8080


def _kserve_models() -> Any:
    """`import kserve` parses sys.argv; import it with a clean argv."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        import kserve
    finally:
        sys.argv = saved
    return kserve


def build_inference_service(
    name: str,
    storage_uri: str,
    image: str,
    namespace: str = "slipway",
    canary_traffic_percent: int | None = None,
    service_account: str = "slipway-model-storage",
    cpu_request: str = "250m",
    memory_request: str = "512Mi",
    cpu_limit: str = "1",
    memory_limit: str = "1Gi",
) -> dict[str, Any]:
    """An InferenceService (serving.kserve.io/v1beta1) running `slipway.serving.churn_model` in a custom container.

    KServe's storage initializer downloads `storage_uri` (the model version folder, holding model.joblib and
    model.json) into /mnt/models before the container starts; `service_account` carries the storage credentials.
    """
    if canary_traffic_percent is not None and not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be within 0..100, got {canary_traffic_percent}")
    kserve = _kserve_models()
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=image,
        command=["python", "-m", "slipway.serving.churn_model"],
        args=["--model-dir", MODEL_MOUNT, "--name", name, "--http-port", str(HTTP_PORT)],
        env=[k8s.V1EnvVar(name="STORAGE_URI", value=storage_uri)],
        ports=[k8s.V1ContainerPort(container_port=HTTP_PORT, protocol="TCP", name="http1")],
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": cpu_request, "memory": memory_request},
            limits={"cpu": cpu_limit, "memory": memory_limit},
        ),
        readiness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path="/v2/health/ready", port=HTTP_PORT),
            initial_delay_seconds=5,
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=1000,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
    )
    predictor = kserve.V1beta1PredictorSpec(
        containers=[container],
        service_account_name=service_account,
        canary_traffic_percent=canary_traffic_percent,
        min_replicas=1,
    )
    isvc = kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "slipway"},
        ),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor),
    )
    result: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(isvc)
    return result


def to_yaml(obj: Any) -> str:
    """Block-style YAML for a manifest dict (or a typed model, serialised first)."""
    if not isinstance(obj, (dict, list)):
        obj = k8s.ApiClient().sanitize_for_serialization(obj)
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
