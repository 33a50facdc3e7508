"""checkov, offline, on every rendered overlay and on the AKS ARM template: no failed check, and every skipped check
carries a written reason in the manifest or template that skips it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, require
from tests.integration.test_manifests import OVERLAY_NAMES, _render_text, render

pytestmark = pytest.mark.manifests

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
ARM_DIR = REPO_ROOT / "infra" / "azure"
MIN_REASON = 20  # characters: a reason, not a placeholder
# Every check the project skips, on purpose; a new skip must be added here with its justification in the manifest.
ALLOWED_SKIPS = {"CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43", "CKV_AZURE_8", "CKV_AZURE_59", "CKV_AZURE_172"}


def run_checkov(directory: Path, framework: str) -> list[dict[str, Any]]:
    require(CHECKOV.exists(), f"{CHECKOV} is missing: run `make checkov-venv`")
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    cmd = [str(CHECKOV), "-d", str(directory), "--framework", framework, "--skip-download", "--compact", "-o", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def kubernetes_report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    root = tmp_path_factory.mktemp("rendered")
    for overlay in OVERLAY_NAMES:
        (root / overlay).mkdir()
        (root / overlay / "rendered.yaml").write_text(_render_text(str(REPO_ROOT / "manifests" / "overlays" / overlay)))
    return run_checkov(root, "kubernetes")


def _skip_reasons_in_manifests() -> dict[tuple[str, str, str], str]:
    """(kind, name, check id) -> reason, from checkov.io/skipN annotations of every rendered object."""
    reasons = {}
    for overlay in OVERLAY_NAMES:
        for doc in render(overlay):
            for key, value in doc["metadata"].get("annotations", {}).items():
                if key.startswith("checkov.io/skip"):
                    check_id, _, reason = value.partition("=")
                    reasons[(doc["kind"], doc["metadata"]["name"], check_id)] = reason
    return reasons


def test_checkov_passes_every_overlay(kubernetes_report: list[dict[str, Any]]) -> None:
    results = [r for r in kubernetes_report if r.get("check_type") == "kubernetes"]
    assert results, "checkov produced no kubernetes results"
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']})" for r in results for f in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in results) > 500


def test_every_kubernetes_skip_has_a_written_reason(kubernetes_report: list[dict[str, Any]]) -> None:
    reasons = _skip_reasons_in_manifests()
    assert reasons, "expected skips with reasons (image digests, credentials in env)"
    for (kind, name, check_id), reason in reasons.items():
        assert check_id in ALLOWED_SKIPS, f"{kind}/{name} skips {check_id}, not in ALLOWED_SKIPS"
        assert len(reason.strip()) >= MIN_REASON, f"{kind}/{name} skips {check_id} without a reason"
    skipped = {
        (s["resource"].split(".")[0], s["resource"].split(".")[-1], s["check_id"])
        for r in kubernetes_report
        for s in r["results"].get("skipped_checks", [])
    }
    assert skipped, "checkov reported no skipped checks although manifests declare some"
    for kind, name, check_id in skipped:
        assert (kind, name, check_id) in reasons, f"checkov skipped {check_id} on {kind}/{name} without an annotation"


def _arm_skips() -> dict[str, str]:
    template = json.loads((ARM_DIR / "aks.json").read_text())
    skips = {}
    for resource in template["resources"]:
        for item in resource.get("metadata", {}).get("checkov", []):
            match = re.fullmatch(r"checkov:skip=(CKV2?_[A-Z]+_\d+):(.+)", item)
            assert match, f"malformed skip {item!r}"
            skips[match.group(1)] = match.group(2)
    return skips


def test_checkov_passes_the_aks_template() -> None:
    (report,) = [r for r in run_checkov(ARM_DIR, "arm") if r.get("check_type") == "arm"]
    assert report["results"]["failed_checks"] == [], [f["check_id"] for f in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] >= 15
    skipped = {s["check_id"] for s in report["results"].get("skipped_checks", [])}
    declared = _arm_skips()
    assert skipped == set(declared), "every declared skip is used, every skip is declared"
    for check_id, reason in declared.items():
        assert check_id in ALLOWED_SKIPS and len(reason.strip()) >= MIN_REASON, check_id
