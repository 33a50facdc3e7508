"""Offline checks of the cluster form: kustomize builds, Kubernetes schemas, KServe typed models, overlays."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, require

pytestmark = pytest.mark.manifests

MANIFESTS = REPO_ROOT / "manifests"
OVERLAYS = sorted(p for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())
OVERLAY_NAMES = [p.name for p in OVERLAYS]
KSERVE_KINDS = {"InferenceService": "V1beta1InferenceService", "InferenceGraph": "V1alpha1InferenceGraph"}
K8S_VERSION = "1.31"


@functools.cache
def _render_text(path: str) -> str:
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not on PATH (needed for `kubectl kustomize`)")
    assert kubectl is not None
    return subprocess.run([kubectl, "kustomize", path], check=True, capture_output=True, text=True).stdout


def render(overlay: str | Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders for an overlay name (or a kustomization folder)."""
    path = overlay if isinstance(overlay, Path) else MANIFESTS / "overlays" / overlay
    return [doc for doc in yaml.safe_load_all(_render_text(str(path))) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_environment_has_an_overlay() -> None:
    assert {"kind", "aws", "azure", "serverless", "canary"} <= set(OVERLAY_NAMES)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_builds_and_core_kinds_match_schemas(overlay: str) -> None:
    import kubernetes_validate

    docs = render(overlay)
    assert len(by_kind(docs, "InferenceService")) >= 3
    validated = 0
    for doc in docs:
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        if "." in group and not group.endswith(".k8s.io"):
            continue  # CRDs (serving.kserve.io, monitoring.coreos.com, kafka.strimzi.io) are checked elsewhere
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        validated += 1
    assert validated >= 20


def test_schema_validation_rejects_an_unknown_field() -> None:
    import kubernetes_validate

    deployment = copy.deepcopy(by_kind(render("kind"), "Deployment")["feast-feature-server"])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def _sdk_round_trip(doc: dict[str, Any]) -> dict[str, Any]:
    """Deserialise `doc` into the kserve SDK's typed model and serialise it back."""
    from kubernetes import client as k8s

    from slipway.deploy.inference_service import _kserve_models

    kserve = _kserve_models()
    # The SDK resolves nested Kubernetes types (V1ObjectMeta, V1Container, ...) by name on kserve.models.
    for name in dir(k8s.models):
        if name.startswith("V1") and not hasattr(kserve.models, name):
            setattr(kserve.models, name, getattr(k8s.models, name))

    class _Response:
        data = json.dumps(doc)

    typed = kserve.api_client.ApiClient().deserialize(_Response(), KSERVE_KINDS[doc["kind"]])
    result: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(typed)
    return result


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_kserve_objects_round_trip_through_the_sdk_without_losing_a_field(overlay: str) -> None:
    docs = [d for d in render(overlay) if d["kind"] in KSERVE_KINDS]
    assert {d["kind"] for d in docs} == set(KSERVE_KINDS)
    for doc in docs:
        assert _sdk_round_trip(doc) == doc, f"{doc['kind']}/{doc['metadata']['name']} lost or changed a field"


def test_sdk_round_trip_detects_a_dropped_field() -> None:
    isvc = copy.deepcopy(by_kind(render("kind"), "InferenceService")["churn"])
    isvc["spec"]["predictor"]["notAField"] = 1
    assert _sdk_round_trip(isvc) != isvc


def test_committed_kserve_objects_match_the_sdk_generated_ones() -> None:
    from slipway.deploy.inference_service import base_manifests

    generated = base_manifests()
    assert len(generated) == 5
    for rel, manifest in generated.items():
        committed = yaml.safe_load((MANIFESTS / "base" / rel).read_text())
        assert committed == manifest, f"manifests/base/{rel} is stale: python -m slipway.deploy.inference_service"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_object_and_pod_carries_the_recommended_labels(overlay: str) -> None:
    keys = {f"app.kubernetes.io/{k}" for k in ("name", "component", "part-of")}
    for doc in render(overlay):
        labels = doc["metadata"].get("labels", {})
        assert keys <= set(labels), f"{doc['kind']}/{doc['metadata']['name']} lacks {keys - set(labels)}"
        assert labels["app.kubernetes.io/part-of"] == "slipway"
        template = doc.get("spec", {}).get("template") or (
            doc.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
        )
        if template:
            assert keys <= set(template["metadata"]["labels"]), f"pods of {doc['metadata']['name']} lack labels"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_default_deny_and_restricted_namespace(overlay: str) -> None:
    docs = render(overlay)
    deny = [d for d in docs if d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"] == {}]
    assert any(set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"} and not d["spec"].get("ingress") for d in deny)
    ns = by_kind(docs, "Namespace")["slipway"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] not in ("Namespace", "StorageClass")} == {
        "slipway"
    }


def test_rollout_controller_may_only_read_and_patch_inference_services() -> None:
    docs = render("kind")
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = by_kind(docs, "Role")["rollout-controller"]
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "patch"],
        }
    ]
    binding = by_kind(docs, "RoleBinding")["rollout-controller"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rollout-controller", "namespace": "slipway"}]
    assert binding["roleRef"]["kind"] == "Role"


def test_no_secret_values_outside_the_kind_overlay() -> None:
    for overlay in OVERLAY_NAMES:
        secrets = by_kind(render(overlay), "Secret")
        if overlay in ("kind", "serverless", "canary"):  # the last two build on kind
            assert set(secrets) == {"slipway-s3-credentials", "slipway-redis", "slipway-serving-token"}
            for secret in secrets.values():
                import base64

                values = [base64.b64decode(v).decode() for v in secret["data"].values()]
                assert all(v.startswith("slipway-local") for v in values), "kind Secrets must look local"
        else:
            assert secrets == {}, f"{overlay} must not commit Secret values"
    assert not list((MANIFESTS / "base").rglob("secret*.yaml"))


def test_kind_overlay_exposes_node_ports_mapped_by_the_kind_config() -> None:
    services = by_kind(render("kind"), "Service")
    node_ports = {
        p["nodePort"] for s in services.values() if s["spec"].get("type") == "NodePort" for p in s["spec"]["ports"]
    }
    config = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
    mapped = {m["containerPort"] for n in config["nodes"] for m in n.get("extraPortMappings", [])}
    assert node_ports == {30900, 30566}
    assert node_ports <= mapped


def test_serverless_and_raw_deployment_modes() -> None:
    for name, isvc in by_kind(render("kind"), "InferenceService").items():
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment", name
        assert isvc["spec"]["predictor"]["minReplicas"] == 1
    for name, isvc in by_kind(render("serverless"), "InferenceService").items():
        annotations = isvc["metadata"]["annotations"]
        assert annotations["serving.kserve.io/deploymentMode"] == "Serverless", name
        assert "autoscaling.knative.dev/scale-to-zero-pod-retention-period" in annotations
        assert isvc["spec"]["predictor"]["minReplicas"] == 0


def test_canary_overlay_changes_one_field_of_the_serverless_churn_service() -> None:
    serverless = by_kind(render("serverless"), "InferenceService")
    canary = by_kind(render("canary"), "InferenceService")
    assert canary["churn"]["spec"]["predictor"].pop("canaryTrafficPercent") == 10
    assert canary == serverless


def test_aws_overlay_uses_s3_with_irsa_and_gp3() -> None:
    docs = render("aws")
    assert "minio" not in by_kind(docs, "StatefulSet") and "minio-bucket-init" not in by_kind(docs, "Job")
    accounts = by_kind(docs, "ServiceAccount")
    for name in ("slipway-model-storage", "slipway-workloads", "slipway-ingestion"):
        arn = accounts[name]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert arn.startswith("arn:aws:iam::") and arn.endswith(f":role/{name}")
    assert "secrets" not in accounts["slipway-model-storage"]
    assert accounts["slipway-model-storage"]["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "1"
    assert by_kind(docs, "StorageClass")["gp3"]["parameters"] == {"type": "gp3", "encrypted": "true"}
    redis = by_kind(docs, "StatefulSet")["redis"]
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"
    (settings,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("slipway-settings")]
    assert (
        settings["data"]["SLIPWAY_S3_SECURE"] == "true" and "amazonaws.com" in settings["data"]["SLIPWAY_S3_ENDPOINT"]
    )


def test_azure_overlay_uses_workload_identity_and_blob_storage() -> None:
    docs = render("azure")
    for name in ("slipway-model-storage", "slipway-workloads"):
        sa = by_kind(docs, "ServiceAccount")[name]
        assert sa["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
    for name, deployment in by_kind(docs, "Deployment").items():
        assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true", name
    for name, isvc in by_kind(docs, "InferenceService").items():
        predictor = isvc["spec"]["predictor"]
        assert predictor["labels"] == {"azure.workload.identity/use": "true"}
        storage = next(e["value"] for e in predictor["containers"][0]["env"] if e["name"] == "STORAGE_URI")
        assert storage.startswith("https://") and ".blob.core.windows.net/" in storage, name
    for sts in by_kind(docs, "StatefulSet").values():
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "slipway-premium-zrs"


def test_inference_graph_splits_traffic_between_two_services() -> None:
    docs = render("kind")
    graph = by_kind(docs, "InferenceGraph")["churn-ab"]
    root = graph["spec"]["nodes"]["root"]
    assert root["routerType"] == "Splitter"
    weights = {s["serviceName"]: s["weight"] for s in root["steps"]}
    assert sum(weights.values()) == 100 and len(weights) == 2
    assert set(weights) <= set(by_kind(docs, "InferenceService"))


def test_drift_cron_job_runs_the_drift_monitor() -> None:
    cron = by_kind(render("kind"), "CronJob")["drift-monitor"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "slipway.cli", "monitor", "drift"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_alerts_cover_drift_errors_latency_and_silence() -> None:
    docs = render("kind")
    rules = [r for g in by_kind(docs, "PrometheusRule")["slipway-alerts"]["spec"]["groups"] for r in g["rules"]]
    exprs = {r["alert"]: r["expr"] for r in rules}
    assert set(exprs) == {"SlipwayHighErrorRate", "SlipwayHighP99Latency", "SlipwayNoTraffic", "SlipwayDataDrift"}
    assert "slipway_drift_share" in exprs["SlipwayDataDrift"]
    assert 'slipway_requests_total{status=~"5.."}' in exprs["SlipwayHighErrorRate"]
    assert "histogram_quantile(0.99" in exprs["SlipwayHighP99Latency"]
    assert "slipway_request_latency_seconds_bucket" in exprs["SlipwayHighP99Latency"]
    assert all(r["annotations"]["summary"] and r["labels"]["severity"] for r in rules)
    monitor = by_kind(docs, "ServiceMonitor")["slipway-predictors"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_kafka_is_sized_per_environment() -> None:
    kind = render("kind")
    (pool,) = by_kind(kind, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 1
    assert all(t["spec"]["replicas"] == 1 for t in by_kind(kind, "KafkaTopic").values())
    assert by_kind(kind, "Kafka")["slipway-kafka"]["spec"]["kafka"]["config"]["min.insync.replicas"] == 1
    for overlay, storage_class in (("aws", "gp3"), ("azure", "slipway-premium-zrs")):
        docs = render(overlay)
        (pool,) = by_kind(docs, "KafkaNodePool").values()
        assert pool["spec"]["replicas"] == 3 and pool["spec"]["storage"]["volumes"][0]["class"] == storage_class
        assert all(t["spec"]["replicas"] == 3 for t in by_kind(docs, "KafkaTopic").values())
    egress = by_kind(kind, "NetworkPolicy")["kafka-egress"]
    assert egress["spec"]["podSelector"] == {"matchLabels": {"strimzi.io/cluster": "slipway-kafka"}}


@pytest.mark.parametrize("weights", [{"a": 60, "b": 60}, {}, {"a": 110, "b": -10}])
def test_inference_graph_rejects_weights_that_do_not_split_all_traffic(weights: dict[str, int]) -> None:
    from slipway.deploy.inference_service import build_inference_graph

    with pytest.raises(ValueError, match="add up to 100"):
        build_inference_graph("g", weights)


def test_generated_services_run_each_model_server_with_its_token() -> None:
    services = by_kind(render("kind"), "InferenceService")
    modules = {name: isvc["spec"]["predictor"]["containers"][0]["command"][2] for name, isvc in services.items()}
    assert modules == {
        "churn": "slipway.serving.churn_model",
        "churn-challenger": "slipway.serving.churn_model",
        "recommender": "slipway.serving.recommender_model",
        "image-classifier": "slipway.serving.image_model",
    }
    for name, isvc in services.items():
        env = {e["name"]: e for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
        assert env["STORAGE_URI"]["value"].endswith(
            f"/{name.removesuffix('-challenger')}/v{2 if 'challenger' in name else 1}"
        )
        assert env["SLIPWAY_SERVING_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "slipway-serving-token"


def test_ingestion_reaches_the_object_store_of_each_environment() -> None:
    for overlay, endpoint, secure in (
        ("kind", "minio.slipway.svc.cluster.local:9000", "false"),
        ("azure", "minio.slipway.svc.cluster.local:9000", "false"),
        ("aws", "s3.us-east-1.amazonaws.com", "true"),
    ):
        config = by_kind(render(overlay), "ConfigMap")["slipway-ingestion"]["data"]
        assert (config["SLIPWAY_S3_ENDPOINT"], config["SLIPWAY_S3_SECURE"]) == (endpoint, secure), overlay
    egress = by_kind(render("kind"), "NetworkPolicy")["ingestion-egress"]
    assert egress["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "slipway-ingestion"}
