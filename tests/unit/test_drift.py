from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataValidationError
from slipway.monitoring.drift import DriftSummary, run_drift_report

pytestmark = pytest.mark.unit


def _frame(seed: int, n: int = 400, charge_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, size=n),
            "MonthlyCharges": rng.normal(65, 15, size=n) + charge_shift,
            "TotalCharges": rng.normal(2000, 500, size=n),
            "Contract": rng.choice(["Month-to-month", "One year", "Two year"], size=n),
        }
    )


def test_shifted_column_drifts(tmp_path: Path) -> None:
    summary = run_drift_report(_frame(1), _frame(2, charge_shift=60.0), tmp_path / "report")
    assert isinstance(summary, DriftSummary)
    assert summary.columns["MonthlyCharges"]["drifted"] is True
    assert summary.columns["TotalCharges"]["drifted"] is False
    assert "MonthlyCharges" in summary.drifted_columns and "TotalCharges" not in summary.drifted_columns
    assert set(summary.columns) == {"tenure", "MonthlyCharges", "TotalCharges", "Contract"}
    assert 0.0 < summary.drift_share <= 1.0
    assert summary.dataset_drift is (summary.drift_share >= 0.5)
    for col in summary.columns.values():
        assert isinstance(col["score"], float) and col["method"]
    assert Path(summary.html_path).stat().st_size > 1000
    json.loads(Path(summary.json_path).read_text())
    assert json.loads(json.dumps(summary.to_dict()))["drifted_columns"] == summary.drifted_columns


def test_no_drift_and_column_subset(tmp_path: Path) -> None:
    summary = run_drift_report(_frame(1), _frame(2), tmp_path, columns=["TotalCharges", "Contract"])
    assert set(summary.columns) == {"TotalCharges", "Contract"}
    assert summary.drifted_columns == [] and summary.dataset_drift is False and summary.drift_share == 0.0


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError):
        run_drift_report(_frame(1), _frame(2), tmp_path, columns=["nope"])
    with pytest.raises(DataValidationError):
        run_drift_report(_frame(1).iloc[:0], _frame(2), tmp_path)
