"""One cross-validation protocol for every model: repeated (stratified) k-fold, the same folds for every
candidate given the same seed, per-fold metrics and mean ± sd with a 95 % interval.

Each fit runs with BLAS/OpenMP limited to one thread: folds are the unit of parallelism (`n_jobs`), and on a
busy 2-core machine a multi-threaded HistGradientBoosting fit was measured 6x slower than a single-threaded one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from pydantic import BaseModel, Field
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold
from threadpoolctl import threadpool_limits

from slipway.evaluation.classification import ThresholdPolicy, choose_threshold, evaluate_classifier
from slipway.evaluation.stats import MetricSummary, summarize

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")

Split = tuple[int, int, np.ndarray, np.ndarray]  # repeat, fold, train indices, test indices


class ClassificationFold(BaseModel):
    repeat: int
    fold: int
    n_train: int
    n_test: int
    train_positive_rate: float
    test_positive_rate: float
    threshold: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    pr_auc: float
    confusion_matrix: list[list[int]]
    fit_seconds: float


class ClassificationCV(BaseModel):
    """Result of `cross_validate_classifier`: per-fold metrics, their summaries and the pooled threshold."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    n_splits: int
    n_repeats: int
    seed: int
    threshold_policy: str
    threshold: float = Field(description="chosen on every out-of-fold prediction; used by the final model")
    folds: list[ClassificationFold]
    summary: dict[str, MetricSummary]
    confusion_matrix: list[list[int]] = Field(description="summed over the folds of the first repeat")
    fit_seconds: float
    oof_scores: list[list[float]] = Field(default_factory=list, exclude=True, description="per repeat, per row")

    def scores(self, metric: str) -> list[float]:
        return [float(getattr(f, metric)) for f in self.folds]


class RegressionFold(BaseModel):
    repeat: int
    fold: int
    n_train: int
    n_test: int
    mse: float
    rmse: float
    mae: float
    r2: float
    fit_seconds: float


class RegressionCV(BaseModel):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    n_splits: int
    n_repeats: int
    seed: int
    folds: list[RegressionFold]
    summary: dict[str, MetricSummary]
    fit_seconds: float

    def scores(self, metric: str) -> list[float]:
        return [float(getattr(f, metric)) for f in self.folds]


def stratified_splits(y: np.ndarray, n_splits: int, n_repeats: int, seed: int) -> list[Split]:
    """Repeated stratified k-fold splits: every fold keeps the overall class proportions."""
    if n_splits < 2 or n_repeats < 1:
        raise ValueError(f"need n_splits >= 2 and n_repeats >= 1, got {n_splits} and {n_repeats}")
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    dummy = np.zeros((len(y), 1))
    return [(i // n_splits, i % n_splits, tr, te) for i, (tr, te) in enumerate(splitter.split(dummy, y))]


def kfold_splits(n_rows: int, n_splits: int, n_repeats: int, seed: int) -> list[Split]:
    """Repeated shuffled k-fold splits (regression)."""
    if n_splits < 2 or n_repeats < 1:
        raise ValueError(f"need n_splits >= 2 and n_repeats >= 1, got {n_splits} and {n_repeats}")
    splitter = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    dummy = np.zeros((n_rows, 1))
    return [(i // n_splits, i % n_splits, tr, te) for i, (tr, te) in enumerate(splitter.split(dummy))]


def _rows(x: pd.DataFrame | np.ndarray, idx: np.ndarray) -> Any:
    return x.iloc[idx] if isinstance(x, pd.DataFrame) else x[idx]


def _fit_predict(estimator: Any, x: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, proba: bool) -> Any:
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        model = clone(estimator)
        model.fit(_rows(x, train), y[train])
        out = model.predict_proba(_rows(x, test))[:, 1] if proba else model.predict(_rows(x, test))
        return np.asarray(out, dtype=float), time.perf_counter() - started


def _run_folds(estimator: Any, x: Any, y: np.ndarray, splits: list[Split], proba: bool, n_jobs: int) -> list[Any]:
    if n_jobs == 1:
        return [_fit_predict(estimator, x, y, tr, te, proba) for _, _, tr, te in splits]
    return list(
        Parallel(n_jobs=n_jobs)(delayed(_fit_predict)(estimator, x, y, tr, te, proba) for _, _, tr, te in splits)
    )


def cross_validate_classifier(
    estimator: Any,
    x: pd.DataFrame | np.ndarray,
    y: Any,
    *,
    n_splits: int = 5,
    n_repeats: int = 2,
    seed: int = 42,
    policy: ThresholdPolicy | None = None,
    n_jobs: int = 1,
    name: str = "",
    params: dict[str, Any] | None = None,
) -> ClassificationCV:
    """Repeated stratified k-fold of a probabilistic binary classifier.

    The threshold-free metrics (ROC-AUC, PR-AUC) use the scores directly. The threshold of fold k is chosen by
    `policy` on the out-of-fold scores of the OTHER folds of the same repeat, so no fold picks its threshold with
    its own labels; the threshold reported for the final model is chosen on all out-of-fold scores.
    """
    policy = policy or ThresholdPolicy()
    target = np.asarray(y).astype(int).ravel()
    splits = stratified_splits(target, n_splits, n_repeats, seed)
    results = _run_folds(estimator, x, target, splits, proba=True, n_jobs=n_jobs)
    oof = np.full((n_repeats, len(target)), np.nan)
    for (repeat, _, _, test), (scores, _) in zip(splits, results, strict=True):
        oof[repeat, test] = scores
    folds: list[ClassificationFold] = []
    first_cm = np.zeros((2, 2), dtype=int)
    for (repeat, fold, train, test), (scores, seconds) in zip(splits, results, strict=True):
        others = np.setdiff1d(np.arange(len(target)), test, assume_unique=True)
        threshold = choose_threshold(target[others], oof[repeat, others], policy)
        rep = evaluate_classifier(target[test], scores, threshold=threshold)
        if repeat == 0:
            first_cm += np.asarray(rep.confusion_matrix)
        folds.append(
            ClassificationFold(
                repeat=repeat,
                fold=fold,
                n_train=len(train),
                n_test=len(test),
                train_positive_rate=float(target[train].mean()),
                test_positive_rate=float(target[test].mean()),
                threshold=threshold,
                confusion_matrix=rep.confusion_matrix,
                fit_seconds=float(seconds),
                **{m: float(getattr(rep, m)) for m in CLASSIFICATION_METRICS},
            )
        )
    ratio = 1.0 / (n_splits - 1)
    summary = {
        m: summarize([getattr(f, m) for f in folds], test_train_ratio=ratio, bounds=(0.0, 1.0))
        for m in CLASSIFICATION_METRICS
    }
    pooled = choose_threshold(np.tile(target, n_repeats), oof.ravel(), policy)
    result = ClassificationCV(
        name=name or type(estimator).__name__,
        params=dict(params or {}),
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
        threshold_policy=policy.describe(),
        threshold=pooled,
        folds=folds,
        summary=summary,
        confusion_matrix=first_cm.tolist(),
        fit_seconds=float(sum(s for _, s in results)),
        oof_scores=oof.tolist(),
    )
    logger.info("%s: ROC-AUC %s over %d folds", result.name, summary["roc_auc"].format(), len(folds))
    return result


def cross_validate_regressor(
    estimator: Any,
    x: pd.DataFrame | np.ndarray,
    y: Any,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 42,
    n_jobs: int = 1,
    name: str = "",
    params: dict[str, Any] | None = None,
) -> RegressionCV:
    """Repeated shuffled k-fold of a regressor: MSE, RMSE, MAE and R² per fold."""
    target = np.asarray(y, dtype=float).ravel()
    splits = kfold_splits(len(target), n_splits, n_repeats, seed)
    results = _run_folds(estimator, x, target, splits, proba=False, n_jobs=n_jobs)
    folds = []
    for (repeat, fold, train, test), (pred, seconds) in zip(splits, results, strict=True):
        mse = float(mean_squared_error(target[test], pred))
        folds.append(
            RegressionFold(
                repeat=repeat,
                fold=fold,
                n_train=len(train),
                n_test=len(test),
                mse=mse,
                rmse=float(np.sqrt(mse)),
                mae=float(mean_absolute_error(target[test], pred)),
                r2=float(r2_score(target[test], pred)),
                fit_seconds=float(seconds),
            )
        )
    ratio = 1.0 / (n_splits - 1)
    summary = {
        m: summarize(
            [getattr(f, m) for f in folds], test_train_ratio=ratio, bounds=(0.0, np.inf) if m != "r2" else None
        )
        for m in REGRESSION_METRICS
    }
    result = RegressionCV(
        name=name or type(estimator).__name__,
        params=dict(params or {}),
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
        folds=folds,
        summary=summary,
        fit_seconds=float(sum(s for _, s in results)),
    )
    logger.info("%s: RMSE %s over %d folds", result.name, summary["rmse"].format(0), len(folds))
    return result
