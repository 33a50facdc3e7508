"""Synthetic interactions, the MovieLens-format loader and the leave-last-n-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slipway.errors import DataFormatError
from slipway.recommender.data import INTERACTION_COLUMNS, generate_interactions, load_movielens, split_last_n

pytestmark = pytest.mark.unit


def test_generator_is_seeded_and_has_a_popularity_skew() -> None:
    a = generate_interactions(400, 300, seed=5)
    b = generate_interactions(400, 300, seed=5)
    assert list(a.columns) == INTERACTION_COLUMNS
    assert a.equals(b)
    assert not a.duplicated(["user_id", "item_id"]).any()
    counts = a["item_id"].value_counts().to_numpy()
    top_decile_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.3  # a uniform catalogue would give ~0.1
    assert a["user_id"].nunique() == 400 and a.groupby("user_id").size().min() >= 3


def test_generator_users_have_taste_clusters() -> None:
    def own_cluster_share(taste: float) -> float:
        frame = generate_interactions(300, 400, n_clusters=4, taste_strength=taste, seed=1)
        item_cluster, user_cluster = frame.attrs["item_cluster"], frame.attrs["user_cluster"]
        same = frame["item_id"].map(item_cluster) == frame["user_id"].map(user_cluster)
        return float(same.mean())

    assert own_cluster_share(0.9) > 0.85
    assert 0.15 < own_cluster_share(0.0) < 0.35  # no taste: about 1 / n_clusters, popularity permitting


@pytest.mark.parametrize(
    ("name", "lines", "fmt"),
    [
        ("u.data", ["1\t10\t5\t881250949", "1\t20\t3\t881250950", "2\t10\t4\t881250951"], "u.data"),
        (
            "ratings.csv",
            ["userId,movieId,rating,timestamp", "1,10,5.0,881250949", "1,20,3.0,881250950", "2,10,4.5,881250951"],
            "ratings.csv",
        ),
        ("ratings.dat", ["1::10::5::881250949", "1::20::3::881250950", "2::10::4::881250951"], "ratings.dat"),
    ],
)
def test_movielens_formats(tmp_path: Path, name: str, lines: list[str], fmt: str) -> None:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    result = load_movielens(path)
    assert result.format == fmt
    assert result.rows_loaded == 3 and result.reconciles()
    assert set(result.frame["user_id"]) == {"1", "2"}
    assert result.frame["timestamp"].dtype == np.int64
    implicit = load_movielens(path, min_rating=4.0)
    assert implicit.rows_loaded == 2 and implicit.filtered_low_rating == 1 and implicit.reconciles()


def test_movielens_rejects_bad_rows_with_reasons_and_dedupes(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t100\n1\t10\t4\t200\n2\t11\tfive\t300\n3\t12\t4\n\t13\t4\t400\n4\t14\t4\t500\n")
    result = load_movielens(path)
    assert result.rows_read == 6
    assert result.rows_loaded == 2  # (1,10) kept once (latest), (4,14)
    assert result.duplicates == 1
    reasons = {r["line"]: r["reason"] for r in result.rejected}
    assert reasons == {
        3: "rating or timestamp is not a number",
        4: "expected 4 fields, got 3",
        5: "empty user or item id",
    }
    assert result.reconciles()
    kept = result.frame.set_index("item_id")
    assert kept.loc["10", "rating"] == 4.0


def test_movielens_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello world\n")
    with pytest.raises(DataFormatError, match="not MovieLens"):
        load_movielens(path)


def test_split_last_n_holds_out_the_latest_events() -> None:
    frame = generate_interactions(50, 100, seed=2)
    train, test = split_last_n(frame, 2)
    assert len(train) + len(test) == len(frame)
    assert (test.groupby("user_id").size() == 2).all()
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.loc[first_test.index]).all()
