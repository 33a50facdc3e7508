"""The CLI contract of `slipway ingest`: a JSON line on success, a one-line error and non-zero exit otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli import app

pytestmark = pytest.mark.unit


def test_ingest_prints_counts_as_json(tmp_path: Path) -> None:
    from slipway.data.churn import generate_synthetic_churn

    src = tmp_path / "in.dat"  # no extension: the format comes from the content
    generate_synthetic_churn(n_rows=50, seed=1).to_csv(src, index=False)
    with src.open("a") as fh:
        fh.write("broken,row\n")
    result = CliRunner().invoke(app, ["ingest", str(src), "--dataset", "churn", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["format"] == "csv"
    assert summary["rows_read"] == 51
    assert summary["rows_curated"] + summary["rows_quarantined"] == 51
    assert summary["rows_quarantined"] >= 1


def test_ingest_refuses_unreadable_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    result = CliRunner().invoke(app, ["ingest", str(junk), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "error:" in result.output
    assert len(result.output.strip().splitlines()) == 1
