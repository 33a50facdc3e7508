"""Train, evaluate against a popularity baseline, and register a recommender."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from slipway.errors import SlipwayError
from slipway.recommender.data import split_last_n
from slipway.recommender.metrics import RankingMetrics, evaluate_ranking
from slipway.recommender.model import Recommender, train_recommender

logger = logging.getLogger(__name__)

SERVING_SCHEMA: dict[str, Any] = {
    "kind": "recommender",
    "inputs": [
        {"name": "user_id", "type": "string", "required": False},
        {"name": "recent_items", "type": "list[string]", "required": False},
        {"name": "k", "type": "integer", "min": 1, "max": 100},
    ],
    "outputs": [{"name": "items", "type": "list[string]"}, {"name": "scores", "type": "list[float]"}],
}


class BaselineNotBeatenError(SlipwayError):
    """The model's nDCG@K is not above the popularity baseline's on the held-out interactions."""


@dataclass
class TrainingOutcome:
    model: Recommender  # refitted on every interaction, for serving
    metrics: RankingMetrics  # of the model fitted on the train split
    baseline: RankingMetrics  # popularity on the same split
    params: dict[str, Any]

    def flat_metrics(self) -> dict[str, float]:
        out = {**self.metrics.as_flat(), **self.baseline.as_flat("baseline_")}
        out["ndcg_lift_over_popularity"] = self.metrics.ndcg - self.baseline.ndcg
        return out


def train_and_evaluate(
    frame: pd.DataFrame,
    algorithm: str = "item_knn",
    *,
    k: int = 10,
    holdout: int = 2,
    neighbors: int = 50,
    n_components: int = 32,
    seed: int = 42,
    require_beats_baseline: bool = True,
) -> TrainingOutcome:
    """Leave-last-`holdout`-out evaluation of `algorithm` and of popularity, then a refit on all interactions."""
    train, test = split_last_n(frame, holdout)
    if test.empty:
        raise SlipwayError(f"no user has {holdout + 3}+ interactions: nothing to evaluate on")
    users = sorted(test["user_id"].unique())
    kwargs: dict[str, Any] = {"neighbors": neighbors, "n_components": n_components, "seed": seed}
    model = train_recommender(train, algorithm, **kwargs)
    metrics = evaluate_ranking(model.recommend_users(users, k), test, k, model.n_items)
    popular = train_recommender(train, "popularity")
    baseline = evaluate_ranking(popular.recommend_users(users, k), test, k, popular.n_items)
    logger.info("%s: nDCG@%d %.4f vs popularity %.4f", algorithm, k, metrics.ndcg, baseline.ndcg)
    if require_beats_baseline and algorithm != "popularity" and metrics.ndcg <= baseline.ndcg:
        raise BaselineNotBeatenError(
            f"{algorithm} nDCG@{k} {metrics.ndcg:.4f} does not beat popularity {baseline.ndcg:.4f}; "
            "tune it or keep the current version"
        )
    params = {"algorithm": algorithm, "k": k, "holdout": holdout, **model.params}
    return TrainingOutcome(train_recommender(frame, algorithm, **kwargs), metrics, baseline, params)


def register_recommender(
    registry: Any,
    name: str,
    model_path: str | Path,
    outcome_metrics: dict[str, float],
    params: dict[str, Any],
    interactions: pd.DataFrame,
) -> int:
    """Register a saved recommender with its ranking metrics; returns the version."""
    from slipway.registry import sha256_dataframe

    meta = registry.register(
        name,
        model_path,
        metrics=outcome_metrics,
        params={k: str(v) for k, v in params.items()},
        training_data_sha256=sha256_dataframe(interactions),
        feature_schema=SERVING_SCHEMA,
    )
    return int(meta.version)
