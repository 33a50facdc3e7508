"""Quality bar of the churn models on the real IBM Telco file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES, RAW_COLUMNS
from slipway.training.churn import cross_validate_churn, cross_validated_roc_auc, split_xy, train_churn
from slipway.training.cv import stratified_splits

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


def test_stratified_folds_keep_the_churn_rate_within_one_point(telco: pd.DataFrame) -> None:
    _, y = split_xy(telco)
    assert y.mean() == pytest.approx(0.2654, abs=1e-4)
    for _, _, train, test in stratified_splits(y, n_splits=5, n_repeats=2, seed=42):
        assert abs(y[test].mean() - y.mean()) <= 0.01
        assert abs(y[train].mean() - y.mean()) <= 0.01


def test_logistic_regression_cv_roc_auc(telco: pd.DataFrame) -> None:
    scores = cross_validated_roc_auc(telco, "logistic_regression", folds=5, seed=42)
    assert len(scores) == 5
    assert float(np.mean(scores)) >= 0.835, scores
    assert min(scores) >= 0.80, scores


@pytest.mark.slow
def test_best_model_reaches_0845_under_repeated_stratified_5_fold(telco: pd.DataFrame) -> None:
    # Histogram gradient boosting is the best of the four on this file (docs/BENCHMARKS.md, Training).
    cv = cross_validate_churn(telco, "gradient_boosting", n_splits=5, n_repeats=2, seed=42, n_jobs=2)
    auc = cv.summary["roc_auc"]
    assert len(cv.folds) == 10
    assert auc.mean >= 0.845, auc
    assert auc.ci_low < auc.mean < auc.ci_high
    assert 0.55 <= cv.summary["f1"].mean <= 0.70, cv.summary["f1"]


def test_logistic_regression_test_metrics_are_sane(telco: pd.DataFrame) -> None:
    result = train_churn(telco, "logistic_regression", seed=42, test_size=0.2, cv_folds=5)
    m = result.metrics
    assert 0.82 <= m["roc_auc"] <= 0.92, m
    assert 0.55 <= m["pr_auc"] <= 0.75, m
    assert 0.70 <= m["accuracy"] <= 0.87, m
    # Balanced class weights and an F1-optimal threshold trade precision for recall.
    assert 0.45 <= m["precision"] <= 0.70, m
    assert 0.60 <= m["recall"] <= 0.85, m
    assert 0.55 <= m["f1"] <= 0.72, m
    assert 0.3 <= m["threshold"] <= 0.8, m
    assert result.params["n_test"] == 1409
    assert sum(result.report.confusion_matrix[1]) == int((telco["Churn"] == "Yes").sum() * 0.2 + 0.5)
