"""Quality bar of the churn model on the real IBM Telco file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES, RAW_COLUMNS
from slipway.training.churn import cross_validated_roc_auc, train_churn

pytestmark = pytest.mark.dataset


def load_curated(path: Path) -> pd.DataFrame:
    """The CSV as curated data: blank TotalCharges -> 0.0, numeric columns coerced."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)[RAW_COLUMNS]
    df["TotalCharges"] = df["TotalCharges"].str.strip().replace("", "0")
    for col, (kind, _, _) in NUMERIC_FEATURES.items():
        values = pd.to_numeric(df[col], errors="raise")
        df[col] = values.astype("int64" if kind == "integer" else "float64")
    return df


@pytest.fixture(scope="module")
def telco(telco_csv: Path) -> pd.DataFrame:
    df = load_curated(telco_csv)
    assert len(df) == 7043
    for col, allowed in CATEGORICAL_FEATURES.items():
        assert set(df[col]) <= set(allowed), col
    return df


def test_logistic_regression_cv_roc_auc(telco: pd.DataFrame) -> None:
    scores = cross_validated_roc_auc(telco, "logistic_regression", folds=5, seed=42)
    assert len(scores) == 5
    assert float(np.mean(scores)) >= 0.80, scores
    assert min(scores) >= 0.78, scores


def test_logistic_regression_test_metrics_are_sane(telco: pd.DataFrame) -> None:
    result = train_churn(telco, "logistic_regression", seed=42, test_size=0.2, cv_folds=0)
    m = result.metrics
    assert 0.82 <= m["roc_auc"] <= 0.92, m
    assert 0.75 <= m["accuracy"] <= 0.87, m
    assert 0.50 <= m["precision"] <= 0.80, m
    assert 0.40 <= m["recall"] <= 0.75, m
    assert 0.50 <= m["f1"] <= 0.75, m
    assert result.params["n_test"] == 1409
    assert sum(result.report.confusion_matrix[1]) == int((telco["Churn"] == "Yes").sum() * 0.2 + 0.5)
