"""Housing value regression: linear regression, random forest and histogram gradient boosting under one
shuffled k-fold protocol, with the same configurable feature steps as the churn model."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from slipway.data.housing import HOUSING_CATEGORICAL, HOUSING_NUMERIC, split_housing_xy
from slipway.training.cv import RegressionCV, cross_validate_regressor
from slipway.training.features import HOUSING_RATIOS, FeatureConfig, build_preprocessor, housing_ratio_step

logger = logging.getLogger(__name__)

REGRESSORS = ("linear_regression", "random_forest", "gradient_boosting")


def _regressor(algorithm: str, seed: int) -> Any:
    if algorithm == "linear_regression":
        return LinearRegression()
    if algorithm == "random_forest":
        return RandomForestRegressor(
            n_estimators=100, min_samples_leaf=2, max_features=0.5, n_jobs=1, random_state=seed
        )
    if algorithm == "gradient_boosting":
        # Early stopping on a 10 % validation split (the default only switches it on above 10,000 rows).
        return HistGradientBoostingRegressor(
            max_iter=500, learning_rate=0.1, max_leaf_nodes=63, early_stopping=True, random_state=seed
        )
    raise ValueError(f"unknown regressor {algorithm!r}: choose one of {', '.join(REGRESSORS)}")


def build_housing_pipeline(
    algorithm: str = "gradient_boosting",
    seed: int = 42,
    *,
    features: FeatureConfig | None = None,
    params: dict[str, Any] | None = None,
) -> Pipeline:
    """Ratio columns (rooms per household, ...), median imputation, encoding/scaling/PCA, then `algorithm`."""
    config = features or FeatureConfig()
    numeric = [*HOUSING_NUMERIC, *(HOUSING_RATIOS if config.engineered else [])]
    steps: list[tuple[str, Any]] = []
    if config.engineered:
        steps.append(("ratios", housing_ratio_step()))
    steps.append(
        ("preprocess", build_preprocessor(HOUSING_CATEGORICAL, numeric, config, impute_numeric=True, seed=seed))
    )
    regressor = _regressor(algorithm, seed)
    if params:
        regressor.set_params(**params)
    steps.append(("regressor", regressor))
    return Pipeline(steps)


def cross_validate_housing(
    df: pd.DataFrame,
    algorithm: str = "gradient_boosting",
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    features: FeatureConfig | None = None,
    params: dict[str, Any] | None = None,
    n_jobs: int = 1,
) -> RegressionCV:
    """Shuffled k-fold MSE/RMSE/MAE/R² of one housing pipeline."""
    x, y = split_housing_xy(df)
    pipe = build_housing_pipeline(algorithm, seed, features=features, params=params)
    described: dict[str, Any] = {"algorithm": algorithm, **(params or {})}
    if features is not None:
        described["features"] = features.label() + (", ratios" if features.engineered else ", raw columns")
    return cross_validate_regressor(
        pipe, x, y, n_splits=n_splits, n_repeats=n_repeats, seed=seed, n_jobs=n_jobs, name=algorithm, params=described
    )


def compare_regressors(
    df: pd.DataFrame,
    algorithms: tuple[str, ...] | list[str] = REGRESSORS,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    n_jobs: int = 1,
) -> list[RegressionCV]:
    """Every regressor on the same folds, lowest mean RMSE first."""
    results = [
        cross_validate_housing(df, a, n_splits=n_splits, n_repeats=n_repeats, seed=seed, n_jobs=n_jobs)
        for a in algorithms
    ]
    return sorted(results, key=lambda r: r.summary["rmse"].mean)
