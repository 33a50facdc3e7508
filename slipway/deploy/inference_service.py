"""KServe InferenceService manifests for the churn predictor, built from the kserve SDK's typed models."""

from __future__ import annotations

import sys
from pathlib import Path
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
    server_module: str = "slipway.serving.churn_model",
    deployment_mode: str | None = None,
    component: str | None = None,
    extra_args: list[str] | None = None,
    token_secret: str | None = None,
) -> dict[str, Any]:
    """An InferenceService (serving.kserve.io/v1beta1) running `server_module` in a custom container.

    KServe's storage initializer downloads `storage_uri` (the model version folder, holding model.joblib and
    model.json) into /mnt/models before the container starts; `service_account` carries the storage credentials.
    `deployment_mode` ("RawDeployment" or "Serverless") becomes the serving.kserve.io/deploymentMode annotation;
    `component` the app.kubernetes.io/component label. `token_secret` names a Secret whose `token` key becomes
    SLIPWAY_SERVING_TOKEN, the bearer token the server requires (optional: no Secret, no auth).
    """
    if canary_traffic_percent is not None and not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be within 0..100, got {canary_traffic_percent}")
    kserve = _kserve_models()
    env = [k8s.V1EnvVar(name="STORAGE_URI", value=storage_uri)]
    if token_secret:
        env.append(
            k8s.V1EnvVar(
                name="SLIPWAY_SERVING_TOKEN",
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=token_secret, key="token", optional=True)
                ),
            )
        )
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=image,
        command=["python", "-m", server_module],
        args=["--model-dir", MODEL_MOUNT, "--name", name, "--http-port", str(HTTP_PORT), *(extra_args or [])],
        env=env,
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
        liveness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path="/v2/health/live", port=HTTP_PORT),
            initial_delay_seconds=10,
            period_seconds=20,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        # The root filesystem is read-only; Python and the server write temporary files under /tmp only.
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=10001,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
    )
    predictor = kserve.V1beta1PredictorSpec(
        containers=[container],
        service_account_name=service_account,
        canary_traffic_percent=canary_traffic_percent,
        min_replicas=1,
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            fs_group=10001,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="256Mi"))],
    )
    isvc = kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={
                "app.kubernetes.io/name": name,
                **({"app.kubernetes.io/component": component} if component else {}),
                "app.kubernetes.io/part-of": "slipway",
            },
            annotations={"serving.kserve.io/deploymentMode": deployment_mode} if deployment_mode else None,
        ),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor),
    )
    result: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(isvc)
    return result


def build_inference_graph(
    name: str,
    weights: dict[str, int],
    namespace: str = "slipway",
    cpu_request: str = "100m",
    memory_request: str = "128Mi",
    cpu_limit: str = "500m",
    memory_limit: str = "256Mi",
    deployment_mode: str | None = None,
) -> dict[str, Any]:
    """An InferenceGraph (serving.kserve.io/v1alpha1) whose root Splitter sends `weights[isvc]` % to each service.

    The weights must add up to 100, as KServe's Splitter router requires. `deployment_mode` as for
    `build_inference_service`: the router runs as a plain Deployment ("RawDeployment") or a Knative service.
    """
    if not weights or sum(weights.values()) != 100 or any(w < 0 for w in weights.values()):
        raise ValueError(f"splitter weights must be non-negative and add up to 100, got {weights}")
    kserve = _kserve_models()
    steps = [kserve.V1alpha1InferenceStep(service_name=svc, weight=w) for svc, w in weights.items()]
    graph = kserve.V1alpha1InferenceGraph(
        api_version="serving.kserve.io/v1alpha1",
        kind="InferenceGraph",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": "ab-router",
                "app.kubernetes.io/part-of": "slipway",
            },
            annotations={"serving.kserve.io/deploymentMode": deployment_mode} if deployment_mode else None,
        ),
        spec=kserve.V1alpha1InferenceGraphSpec(
            nodes={"root": kserve.V1alpha1InferenceRouter(router_type="Splitter", steps=steps)},
            resources=k8s.V1ResourceRequirements(
                requests={"cpu": cpu_request, "memory": memory_request},
                limits={"cpu": cpu_limit, "memory": memory_limit},
            ),
        ),
    )
    result: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(graph)
    return result


# The KServe objects committed under manifests/base, generated by `python -m slipway.deploy.inference_service`.
BASE_IMAGE = "ghcr.io/slipway-mlops/slipway:0.1.0"
BASE_SERVING_IMAGE = "ghcr.io/slipway-mlops/slipway-serving:0.1.0"
BASE_STORAGE = "s3://slipway-artifacts/models"
TOKEN_SECRET = "slipway-serving-token"


def base_manifests() -> dict[str, dict[str, Any]]:
    """Path under manifests/base -> manifest, for every KServe object the base deploys (no namespace: kustomize)."""
    raw = "RawDeployment"
    manifests = {
        "churn-serving/inferenceservice.yaml": build_inference_service(
            "churn",
            f"{BASE_STORAGE}/churn/v1",
            BASE_IMAGE,
            deployment_mode=raw,
            component="predictor",
            extra_args=["--variant", "champion"],
            token_secret=TOKEN_SECRET,
        ),
        "recommender-serving/inferenceservice.yaml": build_inference_service(
            "recommender",
            f"{BASE_STORAGE}/recommender/v1",
            BASE_SERVING_IMAGE,
            server_module="slipway.serving.recommender_model",
            deployment_mode=raw,
            component="predictor",
            token_secret=TOKEN_SECRET,
        ),
        "vision-serving/inferenceservice.yaml": build_inference_service(
            "image-classifier",
            f"{BASE_STORAGE}/image-classifier/v1",
            BASE_SERVING_IMAGE,
            server_module="slipway.serving.image_model",
            deployment_mode=raw,
            component="predictor",
            token_secret=TOKEN_SECRET,
            cpu_request="500m",
            memory_request="1Gi",
            cpu_limit="2",
            memory_limit="2Gi",
        ),
        "ab-test/churn-challenger.yaml": build_inference_service(
            "churn-challenger",
            f"{BASE_STORAGE}/churn/v2",
            BASE_IMAGE,
            deployment_mode=raw,
            component="challenger",
            extra_args=["--variant", "challenger"],
            token_secret=TOKEN_SECRET,
        ),
        "ab-test/inferencegraph.yaml": build_inference_graph(
            "churn-ab", {"churn": 50, "churn-challenger": 50}, deployment_mode=raw
        ),
    }
    for manifest in manifests.values():
        manifest["metadata"].pop("namespace", None)
    return manifests


HEADER = "# Generated by slipway.deploy.inference_service (kserve SDK typed models); tests check it stays in sync.\n"


def write_base_manifests(base_dir: str | Path) -> list[Path]:
    """Write `base_manifests()` under `base_dir` (manifests/base); returns the files written."""
    written = []
    for rel, manifest in base_manifests().items():
        path = Path(base_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + to_yaml(manifest))
        written.append(path)
    return written


def to_yaml(obj: Any) -> str:
    """Block-style YAML for a manifest dict (or a typed model, serialised first)."""
    if not isinstance(obj, (dict, list)):
        obj = k8s.ApiClient().sanitize_for_serialization(obj)
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


if __name__ == "__main__":  # regenerate: python -m slipway.deploy.inference_service manifests/base
    for written_path in write_base_manifests(sys.argv[1] if len(sys.argv) > 1 else "manifests/base"):
        print(written_path)
