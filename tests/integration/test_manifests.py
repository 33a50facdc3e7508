"""Offline checks of the cluster form: kustomize builds, Kubernetes schemas, restricted pod security."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, require

pytestmark = pytest.mark.manifests

OVERLAYS = sorted(p for p in (REPO_ROOT / "manifests" / "overlays").iterdir() if p.is_dir())


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not on PATH (needed for `kubectl kustomize`)")
    out = subprocess.run([kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds_and_core_kinds_match_schemas(overlay: Path) -> None:
    import kubernetes_validate

    docs = render(overlay)
    assert any(d["kind"] == "InferenceService" for d in docs)
    for doc in docs:
        if "." in doc["apiVersion"].split("/")[0]:
            continue  # CRDs (serving.kserve.io, ...) are checked against the kserve SDK below
        kubernetes_validate.validate(doc, "1.31", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_default_deny_and_restricted_namespace(overlay: Path) -> None:
    docs = render(overlay)
    deny = [d for d in docs if d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"] == {}]
    assert any(set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"} and not d["spec"].get("ingress") for d in deny)
    ns = next(d for d in docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_inference_service_containers_are_restricted() -> None:
    docs = render(REPO_ROOT / "manifests" / "overlays" / "canary")
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    for container in isvc["spec"]["predictor"]["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["resources"]["limits"] and container["resources"]["requests"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_base_inference_service_matches_the_sdk_generated_one() -> None:
    from slipway.deploy.inference_service import build_inference_service

    committed = yaml.safe_load((REPO_ROOT / "manifests/base/churn-serving/inferenceservice.yaml").read_text())
    generated = build_inference_service(
        "churn", "s3://slipway-artifacts/models/churn/v1", "ghcr.io/slipway-mlops/slipway:0.1.0"
    )
    generated["metadata"].pop("namespace", None)
    assert committed == generated
