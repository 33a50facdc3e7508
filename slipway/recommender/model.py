"""Implicit-feedback recommenders on a sparse user-item matrix: item-item cosine, truncated SVD, popularity.

All three score a user *profile* (a binary vector of items the user interacted with), so a known user, an unknown
user with a few recent items, and a known user plus fresh items are served by the same code path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

logger = logging.getLogger(__name__)

ALGORITHMS = ("item_knn", "svd", "popularity")
# Added to every score so ties (and empty profiles) fall back to the most popular items, deterministically.
_POPULARITY_TIEBREAK = 1e-6


@dataclass
class Recommendation:
    """Top-K items for one request, best first."""

    items: list[str]
    scores: list[float]
    fallback: bool = False  # True when nothing was known about the user: popularity ranking
    unknown_items: list[str] = field(default_factory=list)


class Recommender:
    """A fitted recommender; picklable (joblib), scored with sparse/dense matrix products only."""

    def __init__(self, algorithm: str, params: dict[str, Any] | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self.params = dict(params or {})
        self.item_ids: np.ndarray = np.array([], dtype=object)
        self.item_index: dict[str, int] = {}
        self.user_index: dict[str, int] = {}
        self.history: sparse.csr_matrix = sparse.csr_matrix((0, 0))
        self.popularity: np.ndarray = np.array([])
        self.similarity: sparse.csr_matrix | None = None  # item_knn: items x items, top neighbours per item
        self.item_factors: np.ndarray | None = None  # svd: items x components
        self._dense_similarity: np.ndarray | None = None  # built on first use, not pickled

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # -- training ------------------------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> Recommender:
        """Fit on interactions (`user_id`, `item_id`); ratings are treated as implicit positives."""
        if frame.empty:
            raise ValueError("no interactions to train on")
        users = pd.Index(sorted(frame["user_id"].astype(str).unique()))
        items = pd.Index(sorted(frame["item_id"].astype(str).unique()))
        rows = users.get_indexer(frame["user_id"].astype(str))
        cols = items.get_indexer(frame["item_id"].astype(str))
        matrix = sparse.csr_matrix(
            (np.ones(len(frame), dtype=np.float32), (rows, cols)), shape=(len(users), len(items))
        )
        matrix.data[:] = 1.0  # duplicates summed by the constructor: binarise
        self.item_ids = np.asarray(items, dtype=object)
        self.item_index = {item: i for i, item in enumerate(items)}
        self.user_index = {user: i for i, user in enumerate(users)}
        self.history = matrix
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        self.popularity = (counts / max(counts.max(), 1.0)).astype(np.float32)
        if self.algorithm == "item_knn":
            self.similarity = self._item_similarity(matrix, int(self.params.get("neighbors", 50)))
        elif self.algorithm == "svd":
            from sklearn.decomposition import TruncatedSVD

            n_components = min(int(self.params.get("n_components", 32)), len(items) - 1)
            svd = TruncatedSVD(n_components=n_components, random_state=int(self.params.get("seed", 42)))
            svd.fit(matrix)
            self.item_factors = svd.components_.T.astype(np.float32)
        logger.info(
            "fitted %s on %d users x %d items (%d interactions)", self.algorithm, len(users), len(items), matrix.nnz
        )
        return self

    @staticmethod
    def _item_similarity(matrix: sparse.csr_matrix, neighbors: int) -> sparse.csr_matrix:
        from sklearn.metrics.pairwise import cosine_similarity

        sim = np.asarray(cosine_similarity(matrix.T.tocsr(), dense_output=True), dtype=np.float32)
        np.fill_diagonal(sim, 0.0)
        if 0 < neighbors < sim.shape[0]:
            # keep each item's `neighbors` most similar items: less noise from rare co-occurrences, sparser product
            cut = np.argpartition(-sim, neighbors - 1, axis=0)[neighbors:, :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        return sparse.csr_matrix(sim)

    # -- scoring -------------------------------------------------------------------------------------------------
    def profile(self, user_id: str | None, recent_items: Iterable[str] = ()) -> tuple[np.ndarray, list[str], bool]:
        """(item indices of the user's known history plus recent items, unknown recent items, user known?)."""
        indices: set[int] = set()
        known_user = user_id is not None and user_id in self.user_index
        if known_user:
            row = self.history.getrow(self.user_index[str(user_id)])
            indices.update(row.indices.tolist())
        unknown: list[str] = []
        for item in recent_items:
            idx = self.item_index.get(str(item))
            if idx is None:
                unknown.append(str(item))
            else:
                indices.add(idx)
        return np.fromiter(sorted(indices), dtype=np.int64, count=len(indices)), unknown, known_user

    def score_profiles(self, profiles: sparse.csr_matrix) -> np.ndarray:
        """Dense scores (n_profiles x n_items) for binary profile rows."""
        if self.algorithm == "item_knn":
            assert self.similarity is not None
            scores = np.asarray((profiles @ self.similarity).todense(), dtype=np.float32)
        elif self.algorithm == "svd":
            assert self.item_factors is not None
            scores = np.asarray((profiles @ self.item_factors) @ self.item_factors.T, dtype=np.float32)
        else:
            scores = np.zeros((profiles.shape[0], self.n_items), dtype=np.float32)
        return (
            scores + _POPULARITY_TIEBREAK * self.popularity + (self.popularity if self.algorithm == "popularity" else 0)
        )

    def _score_one(self, seen: np.ndarray) -> np.ndarray:
        """Scores of one profile: sums of rows of the item-item (or factor) matrix, no sparse product."""
        if not len(seen) or self.algorithm == "popularity":
            return self.popularity.astype(np.float32, copy=True)
        if self.algorithm == "item_knn":
            if self._dense_similarity is None:
                assert self.similarity is not None
                self._dense_similarity = self.similarity.toarray()
            scores = self._dense_similarity[seen].sum(axis=0)
        else:
            assert self.item_factors is not None
            scores = self.item_factors @ self.item_factors[seen].sum(axis=0)
        return np.asarray(scores, dtype=np.float32) + _POPULARITY_TIEBREAK * self.popularity

    def recommend(
        self, user_id: str | None = None, recent_items: Sequence[str] = (), k: int = 10, *, exclude_seen: bool = True
    ) -> Recommendation:
        """Top-`k` items the user has not seen; an unknown user with no known items gets the popular items."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        seen, unknown, _ = self.profile(user_id, recent_items)
        scores = self._score_one(seen)
        if exclude_seen and len(seen):
            scores[seen] = -np.inf
        top = _top_k(scores, k)
        top = top[np.isfinite(scores[top])]
        return Recommendation(
            items=[str(self.item_ids[i]) for i in top],
            scores=[float(scores[i]) for i in top],
            fallback=len(seen) == 0,
            unknown_items=unknown,
        )

    def recommend_users(self, user_ids: Sequence[str], k: int = 10) -> dict[str, list[str]]:
        """Top-`k` unseen items for many known users at once (evaluation); unknown users get the popular items."""
        out: dict[str, list[str]] = {}
        known = [u for u in user_ids if u in self.user_index]
        for start in range(0, len(known), 512):
            chunk = known[start : start + 512]
            rows = self.history[[self.user_index[u] for u in chunk]]
            scores = self.score_profiles(rows)
            scores[rows.nonzero()] = -np.inf
            for user, row in zip(chunk, scores, strict=True):
                out[user] = [str(self.item_ids[i]) for i in _top_k(row, k)]
        popular = [str(self.item_ids[i]) for i in _top_k(self.popularity.astype(np.float64), k)]
        for user in user_ids:
            out.setdefault(user, popular)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_dense_similarity"] = None
        return state

    def save(self, path: str | Path) -> Path:
        import joblib

        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, dest)
        return dest


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def train_recommender(
    frame: pd.DataFrame, algorithm: str = "item_knn", *, neighbors: int = 50, n_components: int = 32, seed: int = 42
) -> Recommender:
    """Fit one recommender on interactions."""
    params: dict[str, Any] = {"seed": seed}
    if algorithm == "item_knn":
        params["neighbors"] = neighbors
    elif algorithm == "svd":
        params["n_components"] = n_components
    return Recommender(algorithm, params).fit(frame)
