"""`slipway stream ...` wiring: commands exist, settings reach the processor, nab-score prints its JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slipway.cli import app
from slipway.settings import Settings
from slipway.streaming.cli import processor_from_settings

pytestmark = pytest.mark.unit


def test_stream_commands_are_listed() -> None:
    result = CliRunner().invoke(app, ["stream", "--help"])
    assert result.exit_code == 0
    for command in ("broker", "simulate", "process", "insights", "mqtt-bridge", "nab-score"):
        assert command in result.output


def test_settings_reach_the_processor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        home=tmp_path,
        kafka_bootstrap="k:1",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password="pw",
        stream_topic="t",
        stream_allowed_lateness_ms=1234,
        stream_detector_threshold=3.5,
        stream_redis_url="redis://127.0.0.1:6379/14",
        stream_redis_prefix="p",
    )
    proc = processor_from_settings(settings)
    assert (proc.config.bootstrap, proc.config.topic, proc.config.allowed_lateness_ms) == ("k:1", "t", 1234)
    assert proc.config.detector.threshold == 3.5
    assert proc.config.client_options["sasl.password"] == "pw"
    assert proc.config.client_options["security.protocol"] == "SASL_SSL"
    assert proc.sink.checkpoint_key == "p:checkpoint:slipway-stream-processor"
    assert proc.raw is not None and proc.feast is None


@pytest.mark.dataset
def test_nab_score_command() -> None:
    from tests.conftest import shared_dataset

    csv = shared_dataset("nab-iot", "machine_temperature_system_failure.csv")
    windows = shared_dataset("nab-iot", "anomaly_windows.json")
    result = CliRunner().invoke(app, ["stream", "nab-score", "--csv", str(csv), "--windows", str(windows)])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output.strip().splitlines()[-1])
    assert scored["null"] == -4.0 and scored["window_recall"] == 1.0 and scored["normalized"] > 45
