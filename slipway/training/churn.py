"""Churn model training: a scikit-learn pipeline (one-hot + scaling + classifier) on the curated Telco frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET_COLUMN
from slipway.evaluation.classification import ClassificationReport, evaluate_classifier

logger = logging.getLogger(__name__)

ALGORITHMS = ("logistic_regression", "random_forest", "gradient_boosting")


def _classifier(algorithm: str, seed: int) -> Any:
    if algorithm == "logistic_regression":
        return LogisticRegression(max_iter=1000, random_state=seed)
    if algorithm == "random_forest":
        return RandomForestClassifier(n_estimators=300, min_samples_leaf=5, n_jobs=-1, random_state=seed)
    if algorithm == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=seed)
    raise ValueError(f"unknown algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}")


def build_pipeline(algorithm: str = "logistic_regression", seed: int = 42) -> Pipeline:
    """One-hot the categorical features, scale the numeric ones, then fit `algorithm`."""
    categorical = list(CATEGORICAL_FEATURES)
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(
                    categories=[CATEGORICAL_FEATURES[c] for c in categorical],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                categorical,
            ),
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
        ],
        remainder="drop",
    )
    return Pipeline([("preprocess", preprocess), ("classifier", _classifier(algorithm, seed))])


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


@dataclass
class TrainResult:
    """A fitted pipeline with its held-out evaluation and cross-validated ROC-AUC."""

    pipeline: Pipeline
    metrics: dict[str, float]
    report: ClassificationReport
    cv_roc_auc: list[float] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def cross_validated_roc_auc(
    df: pd.DataFrame, algorithm: str = "logistic_regression", folds: int = 5, seed: int = 42
) -> list[float]:
    """ROC-AUC of each fold of a stratified, shuffled K-fold split."""
    x, y = split_xy(df)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: list[float] = []
    for train_idx, test_idx in skf.split(x, y):
        pipe = build_pipeline(algorithm, seed)
        pipe.fit(x.iloc[train_idx], y[train_idx])
        proba = pipe.predict_proba(x.iloc[test_idx])[:, 1]
        scores.append(evaluate_classifier(y[test_idx], proba).roc_auc)
    logger.info("%s %d-fold ROC-AUC mean %.4f", algorithm, folds, float(np.mean(scores)))
    return scores


def train_churn(
    df: pd.DataFrame,
    algorithm: str = "logistic_regression",
    seed: int = 42,
    test_size: float = 0.2,
    cv_folds: int = 5,
) -> TrainResult:
    """Stratified train/test split, fit, evaluate on the test split; K-fold ROC-AUC unless `cv_folds` <= 1."""
    x, y = split_xy(df)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    pipeline = build_pipeline(algorithm, seed)
    pipeline.fit(x_train, y_train)
    report = evaluate_classifier(y_test, pipeline.predict_proba(x_test)[:, 1])
    cv = cross_validated_roc_auc(df, algorithm, cv_folds, seed) if cv_folds > 1 else []
    metrics = report.metrics()
    if cv:
        metrics["cv_roc_auc_mean"] = float(np.mean(cv))
        metrics["cv_roc_auc_std"] = float(np.std(cv))
    params: dict[str, Any] = {
        "algorithm": algorithm,
        "seed": seed,
        "test_size": test_size,
        "cv_folds": cv_folds,
        "n_train": len(x_train),
        "n_test": len(x_test),
    }
    logger.info("trained %s: test ROC-AUC %.4f, f1 %.4f", algorithm, report.roc_auc, report.f1)
    return TrainResult(pipeline=pipeline, metrics=metrics, report=report, cv_roc_auc=cv, params=params)


def save_model(pipeline: Pipeline, path: str | Path) -> Path:
    """Write the fitted pipeline with joblib."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, dest)
    return dest
