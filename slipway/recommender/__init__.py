"""Implicit-feedback recommendations: synthetic and MovieLens data, item-item / SVD models, ranking metrics."""

from slipway.recommender.data import (
    INTERACTION_COLUMNS,
    LoadResult,
    generate_interactions,
    load_movielens,
    split_last_n,
)
from slipway.recommender.metrics import RankingMetrics, evaluate_ranking
from slipway.recommender.model import ALGORITHMS, Recommender, train_recommender

__all__ = [
    "ALGORITHMS",
    "INTERACTION_COLUMNS",
    "LoadResult",
    "RankingMetrics",
    "Recommender",
    "evaluate_ranking",
    "generate_interactions",
    "load_movielens",
    "split_last_n",
    "train_recommender",
]
