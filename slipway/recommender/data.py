"""Interaction data for the recommender: a synthetic generator, a MovieLens-format loader and a time split.

Every frame has the columns `user_id` (str), `item_id` (str), `rating` (float; 1.0 for implicit events) and
`timestamp` (int, Unix seconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slipway.errors import DataFormatError

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
_START_TS = 1_767_225_600  # 2026-01-01T00:00:00Z
_WINDOW_S = 90 * 86_400


def generate_interactions(
    n_users: int = 2000,
    n_items: int = 1000,
    *,
    n_clusters: int = 10,
    mean_interactions: float = 25.0,
    zipf_exponent: float = 1.0,
    taste_strength: float = 0.8,
    seed: int = 42,
) -> pd.DataFrame:
    """Implicit interactions with a Zipf popularity skew and user taste clusters.

    Each item belongs to one of `n_clusters` genres and has a Zipf popularity `1 / rank**zipf_exponent`. A user of
    genre `c` picks, without repetition, from a mixture: with weight `taste_strength` the popularity restricted to
    genre `c`, otherwise the global popularity. So a popularity ranking is a fair baseline, and a model that learns
    co-occurrence (the taste clusters) should beat it.
    """
    if n_users < 1 or n_items < 10 or not 1 <= n_clusters <= n_items:
        raise ValueError("need n_users >= 1, n_items >= 10 and 1 <= n_clusters <= n_items")
    if not 0.0 <= taste_strength <= 1.0:
        raise ValueError(f"taste_strength must be within [0, 1], got {taste_strength}")
    rng = np.random.default_rng(seed)
    ranks = rng.permutation(n_items)
    popularity = 1.0 / (ranks + 1.0) ** zipf_exponent
    popularity /= popularity.sum()
    item_cluster = rng.integers(0, n_clusters, size=n_items)
    mixtures = np.empty((n_clusters, n_items))
    for c in range(n_clusters):
        in_genre = np.where(item_cluster == c, popularity, 0.0)
        genre = in_genre / in_genre.sum() if in_genre.sum() > 0 else popularity
        mixtures[c] = taste_strength * genre + (1.0 - taste_strength) * popularity
    user_cluster = rng.integers(0, n_clusters, size=n_users)
    cap = max(3, n_items // 4)
    counts = np.clip(3 + rng.poisson(max(mean_interactions - 3.0, 0.0), size=n_users), 3, cap)
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    width = len(str(n_users))
    for u in range(n_users):
        chosen = rng.choice(n_items, size=int(counts[u]), replace=False, p=mixtures[user_cluster[u]])
        users.append(np.full(len(chosen), u))
        items.append(chosen)
        stamps.append(np.sort(rng.integers(_START_TS, _START_TS + _WINDOW_S, size=len(chosen))))
    all_users = np.concatenate(users)
    all_items = np.concatenate(items)
    item_width = len(str(n_items))
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u:0{width}d}" for u in all_users],
            "item_id": [f"i{i:0{item_width}d}" for i in all_items],
            "rating": 1.0,
            "timestamp": np.concatenate(stamps).astype(np.int64),
        }
    )
    # ground truth for behavioural tests and analysis (pandas attrs: kept by copies, not written to files)
    frame.attrs["item_cluster"] = {f"i{i:0{item_width}d}": int(c) for i, c in enumerate(item_cluster)}
    frame.attrs["user_cluster"] = {f"u{u:0{width}d}": int(c) for u, c in enumerate(user_cluster)}
    logger.info("generated %d interactions of %d users on %d items", len(frame), n_users, n_items)
    return frame


@dataclass
class LoadResult:
    """A loaded interaction file and its row accounting: `rows_read == rows_loaded + rejected + filtered + dups`."""

    frame: pd.DataFrame
    format: str
    rows_read: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    filtered_low_rating: int = 0
    duplicates: int = 0

    @property
    def rows_loaded(self) -> int:
        return len(self.frame)

    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + len(self.rejected) + self.filtered_low_rating + self.duplicates

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rejected": len(self.rejected),
            "filtered_low_rating": self.filtered_low_rating,
            "duplicates": self.duplicates,
        }


def _detect_format(first_line: str) -> tuple[str, str, bool]:
    """(format name, separator, has header) from the first line of a MovieLens file."""
    line = first_line.strip()
    if "::" in line:
        return "ratings.dat", "::", False
    if "\t" in line:
        return "u.data", "\t", False
    if "," in line:
        header = line.lower().split(",")
        return "ratings.csv", ",", header[:2] == ["userid", "movieid"]
    raise DataFormatError(
        f"first line {line[:80]!r} is not MovieLens: expected u.data (tab-separated user item rating timestamp), "
        "ratings.csv (userId,movieId,rating,timestamp) or ratings.dat (user::item::rating::timestamp)"
    )


def load_movielens(path: str | Path, *, min_rating: float | None = None) -> LoadResult:
    """Load MovieLens `u.data`, `ratings.csv` or `ratings.dat` (format detected from content) as interactions.

    Malformed rows are rejected with their line number and a reason; with `min_rating`, lower ratings are dropped
    (explicit ratings turned into implicit positives) and counted; repeated (user, item) pairs keep the latest.
    """
    src = Path(path)
    if not src.is_file():
        raise DataFormatError(f"{src} does not exist or is not a file")
    with open(src, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    if not lines:
        raise DataFormatError(f"{src} is empty")
    fmt, sep, has_header = _detect_format(lines[0])
    body = list(enumerate(lines, start=1))[1 if has_header else 0 :]
    rows: list[tuple[str, str, float, int]] = []
    rejected: list[dict[str, Any]] = []
    filtered = 0
    for line_no, raw in body:
        parts = [p.strip() for p in raw.split(sep)]
        if len(parts) != 4:
            rejected.append({"line": line_no, "raw": raw[:200], "reason": f"expected 4 fields, got {len(parts)}"})
            continue
        user, item, rating_s, ts_s = parts
        if not user or not item:
            rejected.append({"line": line_no, "raw": raw[:200], "reason": "empty user or item id"})
            continue
        try:
            rating = float(rating_s)
            ts = int(float(ts_s))
        except ValueError:
            rejected.append({"line": line_no, "raw": raw[:200], "reason": "rating or timestamp is not a number"})
            continue
        if not np.isfinite(rating) or ts < 0:
            rejected.append({"line": line_no, "raw": raw[:200], "reason": "rating not finite or timestamp negative"})
            continue
        if min_rating is not None and rating < min_rating:
            filtered += 1
            continue
        rows.append((user, item, rating, ts))
    frame = pd.DataFrame(rows, columns=INTERACTION_COLUMNS)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    before = len(frame)
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates(["user_id", "item_id"], keep="last")
    frame = frame.reset_index(drop=True)
    result = LoadResult(
        frame=frame,
        format=fmt,
        rows_read=len(body),
        rejected=rejected,
        filtered_low_rating=filtered,
        duplicates=before - len(frame),
    )
    logger.info("loaded %s (%s): %s", src, fmt, result.to_dict())
    return result


def split_last_n(frame: pd.DataFrame, n: int = 2, *, min_train: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-last-n-out per user by timestamp; users with fewer than `n + min_train` events stay in train only."""
    ordered = frame.sort_values(["user_id", "timestamp"], kind="stable")
    position_from_end = ordered.groupby("user_id").cumcount(ascending=False)
    size = ordered.groupby("user_id")["item_id"].transform("size")
    is_test = (position_from_end < n) & (size >= n + min_train)
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)
