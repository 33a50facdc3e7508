"""Ingest the real IBM Telco churn file end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slipway.data.churn import TELCO_SHA256, sha256_file
from slipway.data.churn_schema import RAW_COLUMNS
from slipway.data.ingest import detect_format, ingest_file

pytestmark = pytest.mark.dataset


def test_ingest_real_telco(telco_csv: Path, tmp_path: Path) -> None:
    assert sha256_file(telco_csv) == TELCO_SHA256
    assert detect_format(telco_csv).format == "csv"
    result = ingest_file(telco_csv, out_dir=tmp_path)
    assert result.rows_read == 7043
    assert result.rows_curated == 7043
    assert result.rows_quarantined == 0
    curated = pd.read_parquet(result.curated_path)
    assert list(curated.columns) == RAW_COLUMNS
    assert str(curated["tenure"].dtype) == "int64"
    assert str(curated["SeniorCitizen"].dtype) == "int64"
    assert str(curated["TotalCharges"].dtype) == "float64"
    # The 11 brand-new customers with a blank TotalCharges are cleansed to 0.0.
    new = curated[curated["tenure"] == 0]
    assert len(new) == 11
    assert (new["TotalCharges"] == 0.0).all()
    assert set(curated["Churn"]) == {"Yes", "No"}
    assert result.quarantine_path.read_text() == ""
