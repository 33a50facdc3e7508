"""Every pod the overlays render meets Pod Security "restricted", has requests, limits and probes; every
NetworkPolicy set starts from a default deny."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.test_manifests import OVERLAY_NAMES, by_kind, render

pytestmark = pytest.mark.manifests

WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "InferenceService")
NO_PROBES = ("Job", "CronJob")  # run-to-completion pods: a probe would only restart a finishing job


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    kind = doc["kind"]
    if kind == "CronJob":
        spec: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "InferenceService":
        spec = doc["spec"]["predictor"]
    else:
        spec = doc["spec"]["template"]["spec"]
    return spec


def restricted_violations(doc: dict[str, Any]) -> list[str]:
    """What keeps this workload's pods from Pod Security "restricted" plus Slipway's rules (empty when none)."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    spec = pod_spec(doc)
    pod_ctx = spec.get("securityContext", {})
    problems = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append(f"{name}: host namespaces")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"{name}: hostPath volume {volume['name']}")
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    if not containers:
        problems.append(f"{name}: no containers")
    for c in containers:
        where = f"{name}/{c['name']}"
        ctx = c.get("securityContext", {})

        def effective(key: str, ctx: dict[str, Any] = ctx) -> Any:
            return ctx.get(key, pod_ctx.get(key))

        if effective("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if effective("runAsUser") == 0:
            problems.append(f"{where}: runs as uid 0")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if ctx.get("privileged"):
            problems.append(f"{where}: privileged")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if ctx.get("capabilities", {}).get("drop") != ["ALL"] or ctx.get("capabilities", {}).get("add"):
            problems.append(f"{where}: capabilities must drop ALL and add none")
        if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
        resources = c.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problems.append(f"{where}: {part} must set cpu and memory")
        if doc["kind"] not in NO_PROBES:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problems.append(f"{where}: no {probe}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_workload_is_restricted_with_limits_and_probes(overlay: str) -> None:
    workloads = [d for d in render(overlay) if d["kind"] in WORKLOADS]
    assert {d["kind"] for d in workloads} >= {"Deployment", "StatefulSet", "CronJob", "InferenceService"}
    problems = [p for d in workloads for p in restricted_violations(d)]
    assert problems == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("resources", "limits"), {}, "limits must set cpu and memory"),
        (("securityContext", "readOnlyRootFilesystem"), False, "readOnlyRootFilesystem is not true"),
        (("securityContext", "capabilities"), {"drop": ["NET_RAW"]}, "capabilities must drop ALL"),
        (("securityContext", "allowPrivilegeEscalation"), True, "allowPrivilegeEscalation is not false"),
        (("livenessProbe",), None, "no livenessProbe"),
    ],
)
def test_the_check_catches_each_violation(path: tuple[str, ...], value: Any, expected: str) -> None:
    deployment = copy.deepcopy(by_kind(render("kind"), "Deployment")["feast-feature-server"])
    target = deployment["spec"]["template"]["spec"]["containers"][0]
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    assert any(expected in p for p in restricted_violations(deployment))


def test_predictor_pods_are_restricted_at_pod_level_too() -> None:
    for name, isvc in by_kind(render("kind"), "InferenceService").items():
        predictor = isvc["spec"]["predictor"]
        assert predictor["securityContext"]["runAsNonRoot"] is True, name
        assert predictor["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert predictor["automountServiceAccountToken"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in predictor["containers"][0]["volumeMounts"]


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_network_policies_start_from_a_default_deny(overlay: str) -> None:
    policies = by_kind(render(overlay), "NetworkPolicy")
    deny = [
        p
        for p in policies.values()
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1, "exactly one default-deny policy for ingress and egress"
    # Every other policy allows something specific: no blanket allow-all for every pod.
    for name, policy in policies.items():
        if policy is deny[0]:
            continue
        if policy["spec"]["podSelector"] == {}:
            for rule in policy["spec"].get("egress", []) + policy["spec"].get("ingress", []):
                assert rule.get("ports"), f"{name}: a namespace-wide allow must name its ports"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_listening_workload_is_selected_by_an_allow_policy(overlay: str) -> None:
    docs = render(overlay)
    policies = [p for p in by_kind(docs, "NetworkPolicy").values() if p["spec"]["podSelector"]]

    def selected(labels: dict[str, str]) -> bool:
        for policy in policies:
            selector = policy["spec"]["podSelector"]
            match = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
            for expr in selector.get("matchExpressions", []):
                if expr["operator"] == "Exists":
                    match = match and expr["key"] in labels
                elif expr["operator"] == "In":
                    match = match and labels.get(expr["key"]) in expr["values"]
            if match and policy["spec"].get("ingress"):
                return True
        return False

    for kind in ("Deployment", "StatefulSet"):
        for name, workload in by_kind(docs, kind).items():
            ports = [p for c in workload["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
            if ports:
                assert selected(workload["spec"]["template"]["metadata"]["labels"]), f"{kind}/{name}: no ingress allow"
