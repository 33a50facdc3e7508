"""Churn training pipeline and classification metrics on small synthetic frames."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from slipway.data.churn_schema import CATEGORICAL_FEATURES, RAW_COLUMNS
from slipway.evaluation.classification import evaluate_classifier, save_confusion_png, save_pr_png, save_roc_png
from slipway.training.churn import (
    ALGORITHMS,
    build_pipeline,
    cross_validated_roc_auc,
    model_sha256,
    save_model,
    split_xy,
    train_churn,
)
from slipway.training.features import FeatureConfig

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


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_train_churn_learns_the_signal(algorithm: str) -> None:
    result = train_churn(synthetic_churn(), algorithm=algorithm, seed=1, cv_folds=3)
    assert result.metrics["roc_auc"] > 0.75
    assert len(result.cv_roc_auc) == 3
    assert result.params["algorithm"] == algorithm
    assert result.params["n_test"] == 60
    cm = result.report.confusion_matrix
    assert sum(map(sum, cm)) == 60
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
        assert 0.0 <= result.metrics[key] <= 1.0
    # The test part is scored at the threshold chosen on the training part's out-of-fold scores.
    assert result.cv is not None
    assert result.report.threshold == result.threshold == result.cv.threshold
    assert 0.0 < result.threshold < 1.0
    assert (
        result.metrics["cv_roc_auc_ci_low"] <= result.metrics["cv_roc_auc_mean"] <= result.metrics["cv_roc_auc_ci_high"]
    )


def test_svm_gives_calibrated_probabilities() -> None:
    df = synthetic_churn()
    x, y = split_xy(df)
    pipe = build_pipeline("svm", seed=0).fit(x, y)
    proba = pipe.predict_proba(x)
    assert proba.shape == (len(df), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[:, 1].min() > 0.0 and proba[:, 1].max() < 1.0


def test_class_weights_raise_recall_at_the_default_threshold() -> None:
    df = synthetic_churn(600, seed=4)
    df.loc[df.index[:250], "Churn"] = "No"  # make positives rare (~20 %)
    x, y = split_xy(df)
    recalls = {}
    for weight in ("balanced", None):
        pipe = build_pipeline("logistic_regression", seed=0, class_weight=weight).fit(x, y)
        recalls[weight] = recall_score(y, pipe.predict(x))
    assert recalls["balanced"] > recalls[None] + 0.05, recalls


def test_pipeline_ignores_unknown_categories_and_column_order() -> None:
    df = synthetic_churn()
    pipe = build_pipeline("logistic_regression", seed=0)
    x = df.drop(columns=["customerID", "Churn"])
    pipe.fit(x, (df["Churn"] == "Yes").astype(int))
    row = x.iloc[[0]].copy()
    row["PaymentMethod"] = "Bitcoin"
    proba = pipe.predict_proba(row[list(reversed(row.columns))])
    assert proba.shape == (1, 2)


def test_feature_steps_are_configurable_and_travel_with_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = synthetic_churn()
    x, y = split_xy(df)
    full = build_pipeline("logistic_regression", features=FeatureConfig()).fit(x, y)
    ordinal = build_pipeline("logistic_regression", features=FeatureConfig(one_hot=False)).fit(x, y)
    pca = build_pipeline("logistic_regression", features=FeatureConfig(pca_variance=0.8)).fit(x, y)
    n_full = full.named_steps["preprocess"].transform(x).shape[1]
    assert n_full == sum(len(v) for v in CATEGORICAL_FEATURES.values()) + 4
    assert ordinal.named_steps["preprocess"].transform(x).shape[1] == len(CATEGORICAL_FEATURES) + 4
    n_pca = pca.named_steps["preprocess"].transform(x).shape[1]
    assert 1 <= n_pca < n_full
    assert pca.named_steps["preprocess"].named_steps["pca"].explained_variance_ratio_.sum() >= 0.8
    loaded = joblib.load(save_model(pca, tmp_path / "pca.joblib"))
    np.testing.assert_allclose(loaded.predict_proba(x), pca.predict_proba(x))


def test_unknown_algorithm_and_bad_target_fail() -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_pipeline("xgboost", seed=0)
    with pytest.raises(ValueError, match="class_weight"):
        build_pipeline("svm", seed=0, class_weight="heavy")
    with pytest.raises(ValueError, match="invalid parameters"):
        build_pipeline("logistic_regression", params={"no_such_param": 1})
    df = synthetic_churn(50)
    df.loc[0, "Churn"] = "maybe"
    with pytest.raises(ValueError, match="Churn"):
        train_churn(df, cv_folds=0)


def test_training_is_deterministic_per_seed() -> None:
    df = synthetic_churn()
    a = cross_validated_roc_auc(df, "random_forest", folds=3, seed=7)
    b = cross_validated_roc_auc(df, "random_forest", folds=3, seed=7)
    assert a == b


@pytest.mark.parametrize("algorithm", ["random_forest", "gradient_boosting", "svm"])
def test_same_data_config_and_seed_give_identical_metrics_and_model_bytes(algorithm: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = synthetic_churn(400, seed=2)
    first = train_churn(df, algorithm, seed=5, cv_folds=3)
    second = train_churn(df.copy(), algorithm, seed=5, cv_folds=3)
    assert first.metrics == second.metrics
    assert first.params == second.params
    sha_a = model_sha256(first.pipeline, tmp_path / "a.joblib")
    sha_b = model_sha256(second.pipeline, tmp_path / "b.joblib")
    assert sha_a == sha_b
    # The check can fail: another seed gives another model.
    other = train_churn(df, algorithm, seed=6, cv_folds=0)
    assert model_sha256(other.pipeline, tmp_path / "c.joblib") != sha_a


def test_save_model_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = synthetic_churn()
    result = train_churn(df, cv_folds=0)
    assert result.threshold == 0.5
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
    # Average precision: ranks 0.9 (TP), 0.6 (FP), 0.4 (TP) -> (1 * 0.5) + (2/3 * 0.5).
    assert report.pr_auc == pytest.approx(0.5 + 1 / 3)
    assert report.confusion_matrix == [[1, 1], [1, 1]]
    assert report.labels == ["No", "Yes"]
    assert all(np.isfinite(report.roc_thresholds))
    assert report.roc_fpr[0] == 0.0 and report.roc_tpr[-1] == 1.0
    assert set(report.metrics()) == {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}


def test_roc_is_downsampled_and_plots_are_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=5000)
    score = np.clip(y * 0.3 + rng.uniform(0, 0.7, size=5000), 0, 1)
    report = evaluate_classifier(y, score)
    assert len(report.roc_fpr) <= 200
    assert len(report.pr_precision) <= 200
    assert len(report.roc_fpr) == len(report.roc_tpr) == len(report.roc_thresholds)
    assert report.roc_fpr[0] == 0.0 and report.roc_fpr[-1] == 1.0
    assert all(np.isfinite(report.roc_thresholds))
    for save, name in ((save_roc_png, "roc.png"), (save_confusion_png, "cm.png"), (save_pr_png, "pr.png")):
        out = save(report, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_classifier_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        evaluate_classifier([0, 1], [0.5])


def test_train_reuses_the_selection_cross_validation_only_when_it_matches() -> None:
    from slipway.training.churn import cross_validate_churn, holdout_split

    df = synthetic_churn(300, seed=3)
    train_df, test_df = holdout_split(df, 0.2, seed=4)
    cv = cross_validate_churn(train_df, "svm", n_splits=3, n_repeats=1, seed=4)
    reused = train_churn(train_df, "svm", seed=4, cv_folds=3, test_df=test_df, cv=cv)
    fresh = train_churn(train_df, "svm", seed=4, cv_folds=3, test_df=test_df)
    assert reused.threshold == fresh.threshold == cv.threshold
    assert reused.metrics == fresh.metrics
    with pytest.raises(ValueError, match="other folds"):
        train_churn(train_df, "svm", seed=5, cv_folds=3, test_df=test_df, cv=cv)
