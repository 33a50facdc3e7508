"""Permutation importance of the raw input columns of a fitted pipeline (scikit-learn's implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits


class FeatureImportance(BaseModel):
    """Mean drop of the score when one input column is shuffled, with its sd over the shuffles."""

    feature: str
    importance_mean: float
    importance_sd: float


def permutation_importances(
    model: Any, X: Any, y: Any, *, scoring: str = "roc_auc", n_repeats: int = 5, seed: int = 42
) -> list[FeatureImportance]:
    """Importance of every column of `X` (a DataFrame of raw features) on held-out rows, largest first."""
    with threadpool_limits(limits=1):
        result = permutation_importance(
            model, X, np.asarray(y), scoring=scoring, n_repeats=n_repeats, random_state=seed
        )
    rows = [
        FeatureImportance(feature=str(col), importance_mean=float(m), importance_sd=float(s))
        for col, m, s in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: (-r.importance_mean, r.feature))
