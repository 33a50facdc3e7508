"""Churn training pipeline and classification metrics on small synthetic frames."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, RAW_COLUMNS
from slipway.evaluation.classification import evaluate_classifier, save_confusion_png, save_roc_png
from slipway.training.churn import build_pipeline, cross_validated_roc_auc, save_model, train_churn

pytestmark = pytest.mark.unit


def synthetic_churn(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A curated-shaped frame whose churn depends on contract and tenure."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"customerID": [f"{i:04d}-TEST" for i in range(n)]}
    for col, allowed in CATEGORICAL_FEATURES.items():
        data[col] = rng.choice(allowed, size=n)
    data["SeniorCitizen"] = rng.integers(0, 2, size=n).astype("int64")
    data["tenure"] = rng.integers(0, 73, size=n).astype("int64")
    data["MonthlyCharges"] = rng.uniform(18, 120, size=n).round(2)
    data["TotalCharges"] = (data["MonthlyCharges"] * data["tenure"]).round(2)  # type: ignore[operator]
    risk = (data["Contract"] == "Month-to-month") * 1.5 - data["tenure"] / 24 + rng.normal(0, 0.5, size=n)  # type: ignore[operator]
    data["Churn"] = np.where(risk > 0, "Yes", "No")
    return pd.DataFrame(data)[RAW_COLUMNS]


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest", "gradient_boosting"])
def test_train_churn_learns_the_signal(algorithm: str) -> None:
    result = train_churn(synthetic_churn(), algorithm=algorithm, seed=1, cv_folds=3)
    assert result.metrics["roc_auc"] > 0.75
    assert len(result.cv_roc_auc) == 3
    assert result.params["algorithm"] == algorithm
    assert result.params["n_test"] == 60
    cm = result.report.confusion_matrix
    assert sum(map(sum, cm)) == 60
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert 0.0 <= result.metrics[key] <= 1.0


def test_pipeline_ignores_unknown_categories_and_column_order() -> None:
    df = synthetic_churn()
    pipe = build_pipeline("logistic_regression", seed=0)
    x = df.drop(columns=["customerID", "Churn"])
    pipe.fit(x, (df["Churn"] == "Yes").astype(int))
    row = x.iloc[[0]].copy()
    row["PaymentMethod"] = "Bitcoin"
    proba = pipe.predict_proba(row[list(reversed(row.columns))])
    assert proba.shape == (1, 2)


def test_unknown_algorithm_and_bad_target_fail() -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_pipeline("svm", seed=0)
    df = synthetic_churn(50)
    df.loc[0, "Churn"] = "maybe"
    with pytest.raises(ValueError, match="Churn"):
        train_churn(df, cv_folds=0)


def test_training_is_deterministic_per_seed() -> None:
    df = synthetic_churn()
    a = cross_validated_roc_auc(df, "random_forest", folds=3, seed=7)
    b = cross_validated_roc_auc(df, "random_forest", folds=3, seed=7)
    assert a == b


def test_save_model_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = synthetic_churn()
    result = train_churn(df, cv_folds=0)
    path = save_model(result.pipeline, tmp_path / "m" / "model.joblib")
    loaded = joblib.load(path)
    x = df.drop(columns=["customerID", "Churn"])
    np.testing.assert_allclose(loaded.predict_proba(x), result.pipeline.predict_proba(x))


def test_evaluate_classifier_known_values() -> None:
    y = [0, 0, 1, 1]
    score = [0.1, 0.6, 0.4, 0.9]
    report = evaluate_classifier(y, score, threshold=0.5)
    assert report.accuracy == 0.5
    assert report.precision == 0.5
    assert report.recall == 0.5
    assert report.roc_auc == 0.75
    assert report.confusion_matrix == [[1, 1], [1, 1]]
    assert report.labels == ["No", "Yes"]
    assert all(np.isfinite(report.roc_thresholds))
    assert report.roc_fpr[0] == 0.0 and report.roc_tpr[-1] == 1.0
    assert set(report.metrics()) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_roc_is_downsampled_and_plots_are_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=5000)
    score = np.clip(y * 0.3 + rng.uniform(0, 0.7, size=5000), 0, 1)
    report = evaluate_classifier(y, score)
    assert len(report.roc_fpr) <= 200
    assert len(report.roc_fpr) == len(report.roc_tpr) == len(report.roc_thresholds)
    assert report.roc_fpr[0] == 0.0 and report.roc_fpr[-1] == 1.0
    assert all(np.isfinite(report.roc_thresholds))
    for save, name in ((save_roc_png, "roc.png"), (save_confusion_png, "cm.png")):
        out = save(report, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_classifier_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        evaluate_classifier([0, 1], [0.5])
