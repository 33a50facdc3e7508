"""Churn model training: one scikit-learn Pipeline (feature steps + classifier) on the curated Telco frame.

Four algorithms share the feature steps and the cross-validation protocol of `slipway.training.cv`:
logistic regression, random forest, histogram gradient boosting and a linear SVM whose margins are turned into
probabilities by `CalibratedClassifierCV` (Platt scaling, 3 internal folds). Classes are weighted
`balanced` by default (about 26 % of Telco customers churn); the decision threshold is chosen on out-of-fold
scores by a `ThresholdPolicy` (F1 by default, or a stated cost of false positives and negatives).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET_COLUMN
from slipway.evaluation.classification import ClassificationReport, ThresholdPolicy, evaluate_classifier
from slipway.storage import sha256_file
from slipway.training.cv import ClassificationCV, cross_validate_classifier
from slipway.training.features import FeatureConfig, build_preprocessor
from slipway.training.search import ALGORITHMS

logger = logging.getLogger(__name__)

CLASS_WEIGHTS = ("balanced", "none")


def _classifier(algorithm: str, seed: int, class_weight: str | None) -> Any:
    # n_jobs=1 everywhere: parallelism is over folds/candidates, and a fixed n_jobs keeps the pickle identical.
    if algorithm == "logistic_regression":
        return LogisticRegression(max_iter=2000, class_weight=class_weight, random_state=seed)
    if algorithm == "random_forest":
        return RandomForestClassifier(
            n_estimators=200,
            min_samples_leaf=10,
            max_features=0.3,
            class_weight=class_weight,
            n_jobs=1,
            random_state=seed,
        )
    if algorithm == "gradient_boosting":
        return HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.08,
            max_leaf_nodes=6,
            min_samples_leaf=40,
            class_weight=class_weight,
            random_state=seed,
        )
    if algorithm == "svm":
        svc = LinearSVC(C=0.05, class_weight=class_weight, random_state=seed)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=3)
    raise ValueError(f"unknown algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}")


def _class_weight(value: str | None) -> str | None:
    if value in (None, "none", ""):
        return None
    if value == "balanced":
        return "balanced"
    raise ValueError(f"class_weight must be 'balanced' or 'none', not {value!r}")


def build_pipeline(
    algorithm: str = "logistic_regression",
    seed: int = 42,
    *,
    class_weight: str | None = "balanced",
    features: FeatureConfig | None = None,
    params: dict[str, Any] | None = None,
) -> Pipeline:
    """Feature steps (`features`) then `algorithm`; `params` are classifier parameters (`C`, `estimator__C`, ...)."""
    preprocess = build_preprocessor(
        CATEGORICAL_FEATURES, list(NUMERIC_FEATURES), features or FeatureConfig(), seed=seed
    )
    classifier = _classifier(algorithm, seed, _class_weight(class_weight))
    if params:
        try:
            classifier.set_params(**params)
        except ValueError as e:
            raise ValueError(f"invalid parameters {params} for {algorithm}: {e}") from e
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def split_xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Features in schema order, and the target as 0/1 (1 = "Yes")."""
    missing = [c for c in [*FEATURE_COLUMNS, TARGET_COLUMN] if c not in df.columns]
    if missing:
        raise ValueError(f"churn frame lacks columns {missing}")
    target = df[TARGET_COLUMN].astype(str)
    bad = sorted(set(target.unique()) - {"Yes", "No"})
    if bad:
        raise ValueError(f"{TARGET_COLUMN} must be 'Yes' or 'No', found {bad}")
    return df[FEATURE_COLUMNS], (target == "Yes").to_numpy(dtype=int)


def holdout_split(df: pd.DataFrame, test_size: float = 0.2, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split of a churn frame; the test part is never seen by model selection or tuning."""
    _, y = split_xy(df)
    train, test = train_test_split(df, test_size=test_size, stratify=y, random_state=seed)
    return train, test


@dataclass
class TrainResult:
    """A fitted pipeline with its held-out evaluation and its cross-validation on the training part."""

    pipeline: Pipeline
    metrics: dict[str, float]
    report: ClassificationReport
    cv_roc_auc: list[float] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    cv: ClassificationCV | None = None
    threshold: float = 0.5


def cross_validate_churn(
    df: pd.DataFrame,
    algorithm: str = "logistic_regression",
    *,
    n_splits: int = 5,
    n_repeats: int = 2,
    seed: int = 42,
    class_weight: str | None = "balanced",
    features: FeatureConfig | None = None,
    params: dict[str, Any] | None = None,
    policy: ThresholdPolicy | None = None,
    n_jobs: int = 1,
) -> ClassificationCV:
    """Repeated stratified k-fold of one configured churn pipeline (the protocol every candidate shares)."""
    x, y = split_xy(df)
    pipe = build_pipeline(algorithm, seed, class_weight=class_weight, features=features, params=params)
    described = {"algorithm": algorithm, "class_weight": class_weight or "none", **(params or {})}
    if features is not None:
        described["features"] = features.label()
    return cross_validate_classifier(
        pipe,
        x,
        y,
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
        policy=policy,
        n_jobs=n_jobs,
        name=algorithm,
        params=described,
    )


def compare_algorithms(
    df: pd.DataFrame,
    algorithms: tuple[str, ...] | list[str] = ALGORITHMS,
    *,
    n_splits: int = 5,
    n_repeats: int = 2,
    seed: int = 42,
    class_weight: str | None = "balanced",
    n_jobs: int = 1,
    policy: ThresholdPolicy | None = None,
) -> list[ClassificationCV]:
    """Every algorithm under the same repeated stratified folds, best mean ROC-AUC first."""
    results = [
        cross_validate_churn(
            df,
            a,
            n_splits=n_splits,
            n_repeats=n_repeats,
            seed=seed,
            class_weight=class_weight,
            n_jobs=n_jobs,
            policy=policy,
        )
        for a in algorithms
    ]
    return sorted(results, key=lambda r: -r.summary["roc_auc"].mean)


def compare_class_weights(
    df: pd.DataFrame,
    algorithms: tuple[str, ...] | list[str] = ALGORITHMS,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    n_jobs: int = 1,
) -> list[ClassificationCV]:
    """Each algorithm with and without `balanced` class weights, same folds; the threshold is tuned for F1 in
    both cases, so the comparison is about ranking and calibration, not about a fixed 0.5 cut."""
    return [
        cross_validate_churn(df, a, n_splits=n_splits, n_repeats=n_repeats, seed=seed, class_weight=w, n_jobs=n_jobs)
        for a in algorithms
        for w in ("balanced", None)
    ]


def cross_validated_roc_auc(
    df: pd.DataFrame, algorithm: str = "logistic_regression", folds: int = 5, seed: int = 42
) -> list[float]:
    """ROC-AUC of each fold of one stratified, shuffled k-fold split."""
    return cross_validate_churn(df, algorithm, n_splits=folds, n_repeats=1, seed=seed).scores("roc_auc")


def train_churn(
    df: pd.DataFrame,
    algorithm: str = "logistic_regression",
    seed: int = 42,
    test_size: float = 0.2,
    cv_folds: int = 5,
    *,
    cv_repeats: int = 1,
    class_weight: str | None = "balanced",
    features: FeatureConfig | None = None,
    params: dict[str, Any] | None = None,
    policy: ThresholdPolicy | None = None,
    test_df: pd.DataFrame | None = None,
    cv: ClassificationCV | None = None,
) -> TrainResult:
    """Fit on the training part and evaluate on the held-out part at the cross-validated threshold.

    Without `test_df`, `df` is split (stratified, `test_size`). The repeated k-fold runs on the training part
    only (skipped when `cv_folds` <= 1, and the threshold is then 0.5), so the test metrics are an unbiased
    estimate. A `cv` already computed with these arguments on this training part (the selection step's) is reused
    instead of being recomputed. Same data, arguments and seed give the same metrics and a byte-identical pickled
    pipeline.
    """
    if test_df is None:
        train_df, test_df = holdout_split(df, test_size, seed)
    else:
        train_df = df
    x_train, y_train = split_xy(train_df)
    x_test, y_test = split_xy(test_df)
    policy = policy or ThresholdPolicy()
    threshold = 0.5
    if cv is not None:
        if (cv.n_splits, cv.n_repeats, cv.seed, cv.threshold_policy) != (cv_folds, cv_repeats, seed, policy.describe()):
            raise ValueError("the given cross-validation was run with other folds, seed or threshold policy")
        threshold = cv.threshold
    elif cv_folds > 1:
        cv = cross_validate_churn(
            train_df,
            algorithm,
            n_splits=cv_folds,
            n_repeats=cv_repeats,
            seed=seed,
            class_weight=class_weight,
            features=features,
            params=params,
            policy=policy,
        )
        threshold = cv.threshold
    pipeline = build_pipeline(algorithm, seed, class_weight=class_weight, features=features, params=params)
    with threadpool_limits(limits=1):
        pipeline.fit(x_train, y_train)
        report = evaluate_classifier(y_test, pipeline.predict_proba(x_test)[:, 1], threshold=threshold)
    metrics = report.metrics()
    metrics["threshold"] = threshold
    if cv is not None:
        for name, s in cv.summary.items():
            metrics[f"cv_{name}_mean"] = s.mean
            metrics[f"cv_{name}_sd"] = s.sd
            metrics[f"cv_{name}_ci_low"] = s.ci_low
            metrics[f"cv_{name}_ci_high"] = s.ci_high
    run_params: dict[str, Any] = {
        "algorithm": algorithm,
        "seed": seed,
        "test_size": round(len(x_test) / (len(x_test) + len(x_train)), 4),
        "cv_folds": cv_folds,
        "cv_repeats": cv_repeats,
        "class_weight": class_weight or "none",
        "features": (features or FeatureConfig()).label(),
        "threshold_policy": policy.describe(),
        "decision_threshold": round(threshold, 6),
        "n_train": len(x_train),
        "n_test": len(x_test),
        **{f"classifier__{k}": v for k, v in sorted((params or {}).items())},
    }
    logger.info(
        "trained %s: test ROC-AUC %.4f, F1 %.4f at threshold %.3f", algorithm, report.roc_auc, report.f1, threshold
    )
    return TrainResult(
        pipeline=pipeline,
        metrics=metrics,
        report=report,
        cv_roc_auc=cv.scores("roc_auc") if cv else [],
        params=run_params,
        cv=cv,
        threshold=threshold,
    )


def save_model(pipeline: Pipeline, path: str | Path) -> Path:
    """Write the fitted pipeline with joblib."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, dest)
    return dest


def model_sha256(pipeline: Pipeline, path: str | Path) -> str:
    """Save the pipeline to `path` and return the file's sha256 (what the registry records)."""
    return sha256_file(save_model(pipeline, path))
