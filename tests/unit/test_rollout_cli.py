"""`slipway ab plan | report` and argument errors of `slipway rollout`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli import app
from slipway.rollout.ab import OutcomeLogger, assign, plan_ab_test

pytestmark = pytest.mark.unit


def test_ab_plan_prints_the_sample_size() -> None:
    result = CliRunner().invoke(app, ["ab", "plan", "--baseline", "0.1", "--mde", "0.03"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_per_variant"] == plan_ab_test("x", 0.1, 0.03).n_per_variant


def test_ab_report_writes_markdown_and_html(tmp_path: Path) -> None:
    plan = plan_ab_test("cli-exp", 0.3, 0.3)  # a big effect: a small planned sample
    log = OutcomeLogger(tmp_path / "outcomes.jsonl")
    for i in range(4 * plan.n_per_variant):
        user = f"u{i}"
        variant = assign(plan, user)
        log.exposure(plan.experiment, user, variant)
        if (variant == "treatment" and i % 10 < 8) or (variant == "control" and i % 10 < 3):
            log.outcome(plan.experiment, user, variant, "click")
    args = ["ab", "report", "--experiment", "cli-exp", "--baseline", "0.3", "--mde", "0.3", "--event", "click"]
    md = CliRunner().invoke(app, [*args, "--outcomes", str(log.path), "--out", str(tmp_path / "r.md")])
    assert md.exit_code == 0, md.output
    assert md.output.startswith("treatment wins")
    assert "| conversion rate |" in (tmp_path / "r.md").read_text()
    page = CliRunner().invoke(app, [*args, "--outcomes", str(log.path), "--out", str(tmp_path / "r.html")])
    assert page.exit_code == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    missing = CliRunner().invoke(app, [*args, "--outcomes", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "error" in missing.output


def test_rollout_canary_without_production_version_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from slipway.registry import ModelRegistry
    from slipway.storage import LocalArtifactStore

    registry = ModelRegistry(LocalArtifactStore(tmp_path / "home" / "artifacts"))
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    registry.register("churn", model, metrics={}, params={}, training_data_sha256="0" * 64, feature_schema={})
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["rollout", "canary", "churn", "--version", "1", "--local"])
    assert result.exit_code == 2
    assert "no production version" in result.output
