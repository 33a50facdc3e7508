"""Recommenders against a popularity baseline, ranking metrics on known lists, and behaviour on edge cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.recommender.data import generate_interactions, split_last_n
from slipway.recommender.metrics import evaluate_ranking, precision_recall_ndcg
from slipway.recommender.model import Recommender, train_recommender
from slipway.recommender.training import BaselineNotBeatenError, train_and_evaluate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_last_n(generate_interactions(800, 400, seed=11), 2)


def test_metrics_on_a_known_list() -> None:
    p, r, n = precision_recall_ndcg(["a", "b", "c", "d"], {"b", "d", "z"}, k=4)
    assert p == 0.5 and r == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert n == pytest.approx(dcg / ideal)
    assert precision_recall_ndcg(["b", "d", "z"], {"b", "d", "z"}, k=3)[2] == pytest.approx(1.0)
    test = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "c"]})
    m = evaluate_ranking({"u1": ["a", "x"], "u2": ["y", "z"]}, test, k=2, n_items=10)
    assert m.users == 2 and m.precision == pytest.approx(0.25) and m.recall == pytest.approx(0.25)
    assert m.catalog_coverage == pytest.approx(0.4)


@pytest.mark.parametrize("algorithm", ["item_knn", "svd"])
def test_model_beats_popularity(split: tuple[pd.DataFrame, pd.DataFrame], algorithm: str) -> None:
    train, test = split
    users = sorted(test["user_id"].unique())
    model = evaluate_ranking(train_recommender(train, algorithm).recommend_users(users, 10), test, 10, 400)
    popular = evaluate_ranking(train_recommender(train, "popularity").recommend_users(users, 10), test, 10, 400)
    assert model.ndcg > 1.5 * popular.ndcg
    assert model.precision > popular.precision and model.recall > popular.recall
    assert model.catalog_coverage > popular.catalog_coverage


def test_recommendations_exclude_seen_items_and_fall_back_for_unknown_users(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = split
    model = train_recommender(train, "item_knn")
    user = train["user_id"].iloc[0]
    seen = set(train.loc[train["user_id"] == user, "item_id"])
    rec = model.recommend(user, k=10)
    assert len(rec.items) == 10 and not seen & set(rec.items) and not rec.fallback
    assert rec.scores == sorted(rec.scores, reverse=True)
    cold = model.recommend("never-seen", k=5)
    popular = train["item_id"].value_counts().index[:5].tolist()
    assert cold.fallback and cold.items == popular
    fresh = model.recommend(None, ["i001", "no-such-item"], k=5)
    assert not fresh.fallback and fresh.unknown_items == ["no-such-item"] and "i001" not in fresh.items
    with pytest.raises(ValueError, match="k must be"):
        model.recommend(user, k=0)


def test_recent_items_steer_recommendations_toward_their_cluster() -> None:
    frame = generate_interactions(600, 300, n_clusters=3, taste_strength=0.9, seed=4)
    clusters = frame.attrs["item_cluster"]
    model = train_recommender(frame, "item_knn")
    for cluster in range(3):
        recent = [item for item, c in clusters.items() if c == cluster][:5]
        rec = model.recommend(None, recent, k=10).items
        # directional: a cold user who just consumed cluster-c items is shown mostly cluster-c items
        assert sum(clusters[i] == cluster for i in rec) >= 8


def test_batch_and_single_scoring_agree_and_pickle_round_trip(
    split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    import joblib

    train, test = split
    model = train_recommender(train, "item_knn")
    users = sorted(test["user_id"].unique())[:20]
    batch = model.recommend_users(users, 10)
    for user in users:
        assert model.recommend(user, k=10).items == batch[user]
    path = model.save(tmp_path / "m.joblib")
    loaded = joblib.load(path)
    assert isinstance(loaded, Recommender) and loaded.recommend(users[0]).items == batch[users[0]]


def test_train_and_evaluate_refuses_a_model_that_does_not_beat_popularity() -> None:
    frame = generate_interactions(300, 200, taste_strength=0.0, seed=9)
    outcome = train_and_evaluate(frame, "item_knn", require_beats_baseline=False)
    assert set(outcome.flat_metrics()) >= {"ndcg_at_10", "baseline_ndcg_at_10", "ndcg_lift_over_popularity"}
    assert outcome.model.history.nnz == len(frame)  # refitted on every interaction
    with pytest.raises(BaselineNotBeatenError, match="does not beat popularity"):
        train_and_evaluate(frame, "svd", n_components=2)
    assert np.isfinite(outcome.metrics.ndcg)
