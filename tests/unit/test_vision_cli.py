"""`slipway vision make-synthetic` and `slipway vision train` end to end on a tiny folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli import app

pytestmark = pytest.mark.unit


def test_make_synthetic_then_train_registers_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLIPWAY_VISION_NUM_THREADS", "2")
    monkeypatch.delenv("SLIPWAY_S3_ENDPOINT", raising=False)
    runner = CliRunner()
    made = runner.invoke(app, ["vision", "make-synthetic", str(tmp_path / "imgs"), "--per-class", "4", "--size", "40"])
    assert made.exit_code == 0, made.output
    (tmp_path / "imgs" / "square" / "broken.jpg").write_bytes(b"nope")

    args = ["vision", "train", str(tmp_path / "imgs"), "--name", "shapes", "--epochs", "1", "--image-size", "32"]
    trained = runner.invoke(app, [*args, "--strategy", "linear_probe"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.output.strip().splitlines()[-1])
    assert summary["version"] == 1 and summary["images"] == 12 and summary["quarantined"] == 1
    assert summary["classes"] == ["circle", "square", "triangle"]
    assert 0.0 <= summary["metrics"]["accuracy"] <= 1.0
    quarantine = (tmp_path / "home" / "vision" / "shapes" / "quarantine.jsonl").read_text().splitlines()
    assert json.loads(quarantine[0])["file"] == "square/broken.jpg"
    assert (tmp_path / "home" / "artifacts" / "models" / "shapes" / "v1" / "model.pt").is_file()

    missing = runner.invoke(app, ["vision", "train", str(tmp_path / "nowhere"), "--name", "x"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
