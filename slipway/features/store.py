"""Feast feature store for the Telco churn features: write the source, apply, materialize, read.

The Feast repo lives in `feature_repo/` (entities, sources, views, the `churn_v1` service). Every function takes
the repo directory explicitly; relative paths in the repo (parquet source, registry, SQLite online store) resolve
against it, so generated data lands in `<repo_path>/data/` (gitignored).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import yaml

from slipway.data.churn_schema import FEATURE_COLUMNS, ID_COLUMN, TARGET_COLUMN, TIMESTAMP_COLUMN
from slipway.errors import ConfigError, FeatureStoreError

FEATURE_SOURCE_RELPATH = Path("data") / "churn_features.parquet"
CREATED_COLUMN = "created"
FEATURE_SERVICE = "churn_v1"
REPO_MODULES = ("entities", "sources", "features", "feature_services")

__all__ = [
    "FEATURE_SERVICE",
    "apply_repo",
    "build_training_set",
    "get_online_features",
    "materialize",
    "open_store",
    "redis_connection_string",
    "write_feature_source",
]


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def write_feature_source(curated: pd.DataFrame, repo_path: Path, as_of: datetime) -> Path:
    """Write the curated rows (without `Churn`) as the repo's parquet source, stamped `as_of`. Returns its path."""
    missing = [c for c in [ID_COLUMN, *FEATURE_COLUMNS] if c not in curated.columns]
    if missing:
        raise FeatureStoreError(f"curated frame lacks columns {missing}; pass the curated Telco churn table")
    frame = curated[[ID_COLUMN, *FEATURE_COLUMNS]].copy()
    ts = pd.Timestamp(_utc(as_of))
    frame[TIMESTAMP_COLUMN] = ts
    frame[CREATED_COLUMN] = ts
    path = Path(repo_path) / FEATURE_SOURCE_RELPATH
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def redis_connection_string(redis_url: str) -> str:
    """`redis://[:password@]host:port/N` -> Feast's `host:port,db=N[,password=...]`."""
    parsed = urlparse(redis_url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ConfigError(f"not a redis URL: {redis_url!r}; expected redis://host:port/db")
    parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
    db = parsed.path.lstrip("/")
    if db:
        parts.append(f"db={int(db)}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def open_store(
    repo_path: Path,
    online_store: str = "sqlite",
    redis_url: str | None = None,
    project: str | None = None,
) -> Any:
    """A FeatureStore over `repo_path`; `online_store="redis"` swaps in Redis without editing the repo.

    `project` overrides the project name (tests use a unique one so Redis keys never collide).
    """
    from feast import FeatureStore, RepoConfig

    repo_path = Path(repo_path).resolve()
    yaml_path = repo_path / "feature_store.yaml"
    if not yaml_path.exists():
        raise ConfigError(f"{yaml_path} not found; repo_path must be the Feast repo directory (feature_repo/)")
    raw: dict[str, Any] = yaml.safe_load(yaml_path.read_text())
    if online_store == "redis":
        if not redis_url:
            raise ConfigError("online_store='redis' needs redis_url (redis://host:port/db)")
        raw["online_store"] = {"type": "redis", "connection_string": redis_connection_string(redis_url)}
    elif online_store != "sqlite":
        raise ConfigError(f"unsupported online_store {online_store!r}; use 'sqlite' or 'redis'")
    if project:
        raw["project"] = project
    try:
        config = RepoConfig(**raw)
        config.repo_path = repo_path
        return FeatureStore(repo_path=str(repo_path), config=config)
    except Exception as e:
        raise FeatureStoreError(f"could not open the Feast store at {repo_path}: {e}") from e


def _load_repo_objects(repo_path: Path) -> list[Any]:
    """Import the repo modules (top-level names, as `feast apply` does) and collect the Feast objects in them.

    sys.modules entries of the same names are saved and restored so several repo copies can be loaded in one process.
    """
    from feast import Entity, FeatureService, FeatureView

    saved = {name: sys.modules.pop(name) for name in REPO_MODULES if name in sys.modules}
    sys.path.insert(0, str(repo_path))
    objects: list[Any] = []
    try:
        for name in REPO_MODULES:
            module = importlib.import_module(name)
            for attr in vars(module).values():
                if isinstance(attr, Entity | FeatureView | FeatureService) and not any(attr is o for o in objects):
                    objects.append(attr)
    finally:
        sys.path.remove(str(repo_path))
        for name in REPO_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return objects


def apply_repo(store: Any) -> list[str]:
    """Register every entity, feature view and feature service from the repo modules. Returns their names."""
    repo_path = Path(store.repo_path)
    try:
        objects = _load_repo_objects(repo_path)
        store.apply(objects)
    except FeatureStoreError:
        raise
    except Exception as e:
        raise FeatureStoreError(f"feast apply failed for {repo_path}: {e}") from e
    return sorted(o.name for o in objects)


def materialize(store: Any, end: datetime, start: datetime | None = None) -> None:
    """Load the latest feature values in [start, end] into the online store (start defaults to the epoch).

    Not `materialize_incremental`: on a first run that starts at now - ttl, which skips historical `as_of` stamps.
    """
    begin = _utc(start) if start is not None else datetime(1970, 1, 2, tzinfo=UTC)
    try:
        store.materialize(start_date=begin, end_date=_utc(end))
    except Exception as e:
        raise FeatureStoreError(f"feast materialize [{begin}, {end}] failed: {e}") from e


def _check_columns(df: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise FeatureStoreError(f"{what} lacks columns {missing}")


def build_training_set(store: Any, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of `churn_v1` onto `entity_df` (customerID, event_timestamp, Churn).

    Columns: customerID, event_timestamp, Churn, then the 19 features. Feast's file offline store drops entity rows
    whose timestamp precedes every feature row of that customer (and rows more than the views' ttl, 365 days,
    after the latest one), so the result can have fewer rows than `entity_df`.
    """
    _check_columns(entity_df, [ID_COLUMN, TIMESTAMP_COLUMN, TARGET_COLUMN], "entity_df")
    edf = entity_df[[ID_COLUMN, TIMESTAMP_COLUMN, TARGET_COLUMN]].copy()
    edf[TIMESTAMP_COLUMN] = pd.to_datetime(edf[TIMESTAMP_COLUMN], utc=True)
    try:
        service = store.get_feature_service(FEATURE_SERVICE)
        job = store.get_historical_features(entity_df=edf, features=service, full_feature_names=False)
        result = job.to_df()
    except Exception as e:
        raise FeatureStoreError(f"get_historical_features({FEATURE_SERVICE}) failed: {e}") from e
    _check_columns(result, FEATURE_COLUMNS, "historical features")
    result = result[[ID_COLUMN, TIMESTAMP_COLUMN, TARGET_COLUMN, *FEATURE_COLUMNS]]
    return result.sort_values([ID_COLUMN, TIMESTAMP_COLUMN]).reset_index(drop=True)


def get_online_features(store: Any, customer_ids: Sequence[str]) -> pd.DataFrame:
    """Latest materialized `churn_v1` features, one row per id (in order); unknown ids get nulls."""
    try:
        service = store.get_feature_service(FEATURE_SERVICE)
        response = store.get_online_features(
            features=service,
            entity_rows=[{ID_COLUMN: str(cid)} for cid in customer_ids],
            full_feature_names=False,
        )
        data = response.to_dict()
    except Exception as e:
        raise FeatureStoreError(f"get_online_features({FEATURE_SERVICE}) failed: {e}") from e
    # The response order is not the requested order: pick columns by the returned names.
    frame = pd.DataFrame(data)
    _check_columns(frame, [ID_COLUMN, *FEATURE_COLUMNS], "online features")
    return frame[[ID_COLUMN, *FEATURE_COLUMNS]]
