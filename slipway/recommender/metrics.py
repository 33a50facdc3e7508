"""Ranking metrics on held-out interactions: precision@K, recall@K, nDCG@K (binary relevance), coverage."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
from pydantic import BaseModel


class RankingMetrics(BaseModel):
    """Means over evaluated users."""

    k: int
    users: int
    precision: float
    recall: float
    ndcg: float
    catalog_coverage: float  # share of the catalogue recommended to at least one user

    def as_flat(self, prefix: str = "") -> dict[str, float]:
        k = self.k
        return {
            f"{prefix}precision_at_{k}": self.precision,
            f"{prefix}recall_at_{k}": self.recall,
            f"{prefix}ndcg_at_{k}": self.ndcg,
            f"{prefix}catalog_coverage": self.catalog_coverage,
        }


def precision_recall_ndcg(recommended: Sequence[str], relevant: set[str], k: int) -> tuple[float, float, float]:
    """Metrics of one ranked list against the set of relevant items."""
    top = list(recommended)[:k]
    hits = [1.0 if item in relevant else 0.0 for item in top]
    n_hits = sum(hits)
    precision = n_hits / k
    recall = n_hits / len(relevant) if relevant else 0.0
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return precision, recall, (dcg / ideal if ideal else 0.0)


def evaluate_ranking(
    recommendations: Mapping[str, Sequence[str]], test: pd.DataFrame, k: int = 10, n_items: int | None = None
) -> RankingMetrics:
    """Average the metrics over users in `test` (`user_id`, `item_id`); users without a list count as misses."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    relevant = test.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s))).to_dict()
    if not relevant:
        raise ValueError("the test frame has no users to evaluate")
    totals = [0.0, 0.0, 0.0]
    shown: set[str] = set()
    for user, items in relevant.items():
        recs = list(recommendations.get(str(user), []))[:k]
        shown.update(recs)
        for i, value in enumerate(precision_recall_ndcg(recs, items, k)):
            totals[i] += value
    n = len(relevant)
    return RankingMetrics(
        k=k,
        users=n,
        precision=totals[0] / n,
        recall=totals[1] / n,
        ndcg=totals[2] / n,
        catalog_coverage=len(shown) / n_items if n_items else 0.0,
    )
