"""`slipway train ...` on the synthetic stand-ins."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slipway.cli import app

pytestmark = pytest.mark.unit


def test_train_compare_prints_one_row_per_regressor(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path))
    args = ["train", "compare", "--dataset", "housing", "--n-rows", "300", "--folds", "2", "--repeats", "1"]
    result = CliRunner().invoke(app, [*args, "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = {line.split("|")[1].strip() for line in lines if line.startswith("| ") and not line.startswith("| model")}
    assert names == {"linear_regression", "random_forest", "gradient_boosting"}


def test_train_nested_cv_prints_json_and_bad_dataset_fails(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["train", "nested-cv", "--n-rows", "300", "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert len(payload["outer_scores"]) == 5 and payload["summary"]["mean"] > 0.7
    bad = CliRunner().invoke(app, ["train", "ablation", "--dataset", "iris"])
    assert bad.exit_code != 0 and "unknown dataset" in bad.output
