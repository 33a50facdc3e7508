"""Synthetic churn generator, CSV loading and the sha256-checked download."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slipway.data.churn import download_churn, generate_synthetic_churn, load_churn_csv, sha256_file
from slipway.data.churn_schema import CATEGORICAL_FEATURES, RAW_COLUMNS
from slipway.data.ingest import ingest_file
from slipway.errors import IntegrityError

pytestmark = pytest.mark.unit


def test_synthetic_is_deterministic() -> None:
    a = generate_synthetic_churn(500, seed=7)
    pd.testing.assert_frame_equal(a, generate_synthetic_churn(500, seed=7))
    assert not a.equals(generate_synthetic_churn(500, seed=8))


def test_synthetic_matches_raw_schema() -> None:
    df = generate_synthetic_churn()
    assert list(df.columns) == RAW_COLUMNS
    assert len(df) == 2000
    assert all(df[c].map(type).eq(str).all() for c in df.columns)
    assert df["customerID"].is_unique
    assert set(df["SeniorCitizen"]) <= {"0", "1"}
    for name, allowed in CATEGORICAL_FEATURES.items():
        assert set(df[name]) <= set(allowed), name
    zero = df["tenure"] == "0"
    assert (df.loc[zero, "TotalCharges"] == "").all()
    assert (df.loc[~zero, "TotalCharges"] != "").all()
    assert 0.2 < (df["Churn"] == "Yes").mean() < 0.33


def test_synthetic_has_learnable_signal() -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    assert sklearn
    df = generate_synthetic_churn(3000, seed=1)
    x = pd.get_dummies(
        df.drop(columns=["customerID", "Churn", "TotalCharges"]).astype(
            {"tenure": int, "SeniorCitizen": int, "MonthlyCharges": float}
        )
    )
    y = df["Churn"] == "Yes"
    model = LogisticRegression(max_iter=2000).fit(x[:2000], y[:2000])
    assert roc_auc_score(y[2000:], model.predict_proba(x[2000:])[:, 1]) > 0.75


def test_synthetic_ingests_cleanly(tmp_path: Path) -> None:
    csv_path = tmp_path / "synth.csv"
    generate_synthetic_churn(300).to_csv(csv_path, index=False)
    result = ingest_file(csv_path, out_dir=tmp_path / "out")
    assert (result.rows_read, result.rows_curated, result.rows_quarantined) == (300, 300, 0)


def test_load_churn_csv_keeps_strings(tmp_path: Path) -> None:
    csv_path = tmp_path / "c.csv"
    generate_synthetic_churn(50).to_csv(csv_path, index=False)
    df = load_churn_csv(csv_path)
    assert list(df.columns) == RAW_COLUMNS
    assert all(dtype == "object" for dtype in df.dtypes)
    assert not df.isna().any().any()  # blank TotalCharges stays "" rather than NaN


def test_download_verifies_sha256(tmp_path: Path) -> None:
    src = tmp_path / "src.csv"
    src.write_text("a,b\n1,2\n")
    good = sha256_file(src)
    dest = download_churn(tmp_path / "dl" / "x.csv", url=src.as_uri(), sha256=good)
    assert dest.read_text() == "a,b\n1,2\n"
    # Existing file with the right digest is reused (the source may be gone).
    src.unlink()
    assert download_churn(dest, url=src.as_uri(), sha256=good) == dest


def test_download_rejects_bad_sha256(tmp_path: Path) -> None:
    src = tmp_path / "src.csv"
    src.write_text("tampered\n")
    dest_dir = tmp_path / "dl"
    dest_dir.mkdir()
    with pytest.raises(IntegrityError, match="sha256"):
        download_churn(dest_dir, url=src.as_uri(), sha256="0" * 64)
    assert list(dest_dir.iterdir()) == []  # no partial or unverified file left behind
