"""Ablation of the feature steps: each step switched off (or PCA switched on) under the same CV protocol,
on churn (ROC-AUC) and housing (RMSE), for a linear model and a tree ensemble."""

from __future__ import annotations

import logging

import pandas as pd
from pydantic import BaseModel

from slipway.evaluation.stats import MetricSummary
from slipway.training.churn import cross_validate_churn
from slipway.training.features import FeatureConfig
from slipway.training.housing import cross_validate_housing

logger = logging.getLogger(__name__)

ABLATIONS: dict[str, FeatureConfig] = {
    "baseline: one-hot + scaling (+ ratios)": FeatureConfig(),
    "ordinal codes instead of one-hot": FeatureConfig(one_hot=False),
    "no scaling": FeatureConfig(scale=False),
    "+ PCA keeping 95 % variance": FeatureConfig(pca_variance=0.95),
}
HOUSING_ONLY: dict[str, FeatureConfig] = {"no ratio features": FeatureConfig(engineered=False)}


class AblationRow(BaseModel):
    dataset: str
    algorithm: str
    step: str
    metric: str
    score: MetricSummary
    delta: float  # mean minus the baseline's mean for the same algorithm (sign: higher is better for roc_auc)


def _rows(dataset: str, metric: str, algorithm: str, scores: dict[str, MetricSummary]) -> list[AblationRow]:
    base = next(iter(scores.values())).mean
    return [
        AblationRow(dataset=dataset, algorithm=algorithm, step=step, metric=metric, score=s, delta=s.mean - base)
        for step, s in scores.items()
    ]


def ablate_churn(
    df: pd.DataFrame,
    algorithms: tuple[str, ...] = ("logistic_regression", "gradient_boosting"),
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    n_jobs: int = 1,
) -> list[AblationRow]:
    """ROC-AUC of each feature configuration; the first row per algorithm is the baseline."""
    rows: list[AblationRow] = []
    for algorithm in algorithms:
        scores = {
            step: cross_validate_churn(
                df, algorithm, n_splits=n_splits, n_repeats=n_repeats, seed=seed, features=cfg, n_jobs=n_jobs
            ).summary["roc_auc"]
            for step, cfg in ABLATIONS.items()
        }
        rows += _rows("churn", "roc_auc", algorithm, scores)
    return rows


def ablate_housing(
    df: pd.DataFrame,
    algorithms: tuple[str, ...] = ("linear_regression", "gradient_boosting"),
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    n_jobs: int = 1,
) -> list[AblationRow]:
    """RMSE of each feature configuration (lower is better; a positive delta is worse)."""
    rows: list[AblationRow] = []
    for algorithm in algorithms:
        scores = {
            step: cross_validate_housing(
                df, algorithm, n_splits=n_splits, n_repeats=n_repeats, seed=seed, features=cfg, n_jobs=n_jobs
            ).summary["rmse"]
            for step, cfg in {**ABLATIONS, **HOUSING_ONLY}.items()
        }
        rows += _rows("housing", "rmse", algorithm, scores)
    return rows
