"""Feast end to end: write the source, apply, materialize, point-in-time training set, online reads (SQLite, Redis)."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from slipway.data.churn_schema import FEATURE_COLUMNS, ID_COLUMN, RAW_COLUMNS, TARGET_COLUMN, TIMESTAMP_COLUMN
from slipway.errors import FeatureStoreError
from slipway.features import store as fs

pytestmark = pytest.mark.integration

REPO_SRC = Path(__file__).resolve().parents[2] / "feature_repo"
AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
NUMERIC = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]


@pytest.fixture(scope="module")
def curated(telco_csv: Path) -> pd.DataFrame:
    raw = pd.read_csv(telco_csv, dtype=str, keep_default_na=False)
    raw = raw[raw["TotalCharges"].str.strip() != ""].head(200).reset_index(drop=True)
    for col in ("SeniorCitizen", "tenure"):
        raw[col] = raw[col].astype("int64")
    for col in ("MonthlyCharges", "TotalCharges"):
        raw[col] = raw[col].astype("float64")
    return raw[RAW_COLUMNS]


@pytest.fixture
def repo(tmp_path: Path, curated: pd.DataFrame) -> Path:
    path = tmp_path / "feature_repo"
    shutil.copytree(REPO_SRC, path, ignore=shutil.ignore_patterns("data", "__pycache__"))
    fs.write_feature_source(curated, path, AS_OF)
    return path


def _assert_rows_match(got: pd.DataFrame, source: pd.DataFrame) -> None:
    src = source.set_index(ID_COLUMN)
    for _, row in got.iterrows():
        expected = src.loc[row[ID_COLUMN]]
        for col in FEATURE_COLUMNS:
            if col in NUMERIC:
                assert float(row[col]) == pytest.approx(float(expected[col])), (row[ID_COLUMN], col)
            else:
                assert row[col] == expected[col], (row[ID_COLUMN], col)


def test_write_feature_source_drops_target(repo: Path, curated: pd.DataFrame) -> None:
    frame = pd.read_parquet(repo / "data" / "churn_features.parquet")
    assert TARGET_COLUMN not in frame.columns
    assert len(frame) == len(curated)
    assert set(frame[TIMESTAMP_COLUMN]) == {pd.Timestamp(AS_OF)}
    assert set(frame["created"]) == {pd.Timestamp(AS_OF)}


def test_redis_connection_string() -> None:
    assert fs.redis_connection_string("redis://127.0.0.1:6379/13") == "127.0.0.1:6379,db=13"
    assert fs.redis_connection_string("redis://:pw@h:6380") == "h:6380,password=pw"


def test_sqlite_end_to_end(repo: Path, curated: pd.DataFrame) -> None:
    store = fs.open_store(repo)
    names = fs.apply_repo(store)
    assert {"customer", "customer_demographics", "customer_services", "customer_account", "churn_v1"} <= set(names)
    fs.materialize(store, AS_OF + timedelta(hours=1))

    ids = curated[ID_COLUMN].tolist()
    after = pd.DataFrame(
        {ID_COLUMN: ids, TIMESTAMP_COLUMN: AS_OF + timedelta(days=1), TARGET_COLUMN: curated[TARGET_COLUMN]}
    )
    training = fs.build_training_set(store, after)
    assert len(training) == len(after)
    assert list(training.columns) == [ID_COLUMN, TIMESTAMP_COLUMN, TARGET_COLUMN, *FEATURE_COLUMNS]
    assert training[FEATURE_COLUMNS].notna().all().all()
    _assert_rows_match(training, curated)
    labels = curated.set_index(ID_COLUMN)[TARGET_COLUMN]
    assert (training[TARGET_COLUMN].to_numpy() == labels.loc[training[ID_COLUMN]].to_numpy()).all()

    # Point in time: a row stamped before the features existed gets no features. Feast 0.67's file offline store
    # drops such rows (observed; STACK_NOTES) instead of returning nulls, so only the rows after as_of remain.
    before = pd.DataFrame(
        {ID_COLUMN: ids[:5], TIMESTAMP_COLUMN: AS_OF - timedelta(days=1), TARGET_COLUMN: curated[TARGET_COLUMN][:5]}
    )
    mixed = fs.build_training_set(store, pd.concat([after.head(10), before], ignore_index=True))
    assert len(mixed) == 10
    assert (mixed[TIMESTAMP_COLUMN] > pd.Timestamp(AS_OF)).all()
    assert mixed[FEATURE_COLUMNS].notna().all().all()
    _assert_rows_match(mixed, curated)

    online = fs.get_online_features(store, ids[:3])
    assert online[ID_COLUMN].tolist() == ids[:3]
    assert online[FEATURE_COLUMNS].notna().all().all()
    _assert_rows_match(online, curated)


def test_training_set_rejects_bad_entity_df(repo: Path) -> None:
    store = fs.open_store(repo)
    with pytest.raises(FeatureStoreError):
        fs.build_training_set(store, pd.DataFrame({ID_COLUMN: ["x"]}))


def test_redis_online_store(repo: Path, curated: pd.DataFrame, redis_url: str) -> None:
    redis = pytest.importorskip("redis")
    project = f"slipway_test_{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    store = fs.open_store(repo, online_store="redis", redis_url=redis_url, project=project)
    try:
        fs.apply_repo(store)
        fs.materialize(store, AS_OF + timedelta(hours=1))
        ids = curated[ID_COLUMN].tolist()[:3]
        online = fs.get_online_features(store, ids)
        assert online[ID_COLUMN].tolist() == ids
        assert online[FEATURE_COLUMNS].notna().all().all()
        _assert_rows_match(online, curated)
        assert any(project.encode() in key for key in client.scan_iter(count=1000))
    finally:
        store.teardown()
        leftover = [key for key in client.scan_iter(count=1000) if project.encode() in key]
        if leftover:
            client.delete(*leftover)
        client.close()
    assert not [key for key in client.scan_iter(count=1000) if project.encode() in key]
