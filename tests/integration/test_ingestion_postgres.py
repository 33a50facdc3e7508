"""PostgreSQL connector against the real local server: chunked reads, watermark increments, merge with REST + file."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from slipway.errors import ConnectorError
from slipway.ingestion import DatasetZones, IngestOptions, PostgresSource, ingest_landed, spec_from_dict
from slipway.ingestion.sources import run_ingestion
from slipway.settings import Settings
from slipway.storage import LocalArtifactStore
from tests.conftest import port_open, require

pytestmark = pytest.mark.integration

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "pg-Secret-9f3a"  # trust auth ignores it; it must still never reach a log line

CUSTOMERS_SPEC = {
    "name": "customers",
    "columns": [
        {"name": "id", "type": "integer", "unique": True},
        {"name": "name"},
        {"name": "email", "pii": "hash"},
        {"name": "plan", "allowed": ["Basic", "Pro"]},
        {"name": "updated_at", "type": "datetime"},
    ],
    "keys": ["id"],
    "partition_by": "updated_at",
}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A database of our own (slipway_test_<random>), dropped afterwards."""
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not listening on 127.0.0.1:5432")
    import sqlalchemy as sa

    name = f"slipway_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/{name}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE customers (id integer PRIMARY KEY, name text, email text, plan text,"
            " updated_at timestamptz NOT NULL)"
        ))  # fmt: skip
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def insert_customers(url: str, rows: list[tuple]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO customers VALUES (:id, :name, :email, :plan, :ts)"),
            [dict(zip(("id", "name", "email", "plan", "ts"), r, strict=True)) for r in rows],
        )
    engine.dispose()


def _ts(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, tzinfo=dt.UTC)


def test_incremental_loads_by_watermark(pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    insert_customers(pg_url, [(i, f"n{i}", f"u{i}@x.io", "Basic" if i % 2 else "Pro", _ts(1 + i % 3, i))
                              for i in range(1, 8)])  # fmt: skip
    insert_customers(pg_url, [(8, "bad", "u8@x.io", "Gold", _ts(3, 12))])  # quarantined: unknown plan
    settings = Settings(ingest_pg_url=SecretStr(pg_url), ingest_pg_sslmode="disable", ingest_chunk_rows=3)
    store = LocalArtifactStore(tmp_path / "store")
    spec = spec_from_dict(CUSTOMERS_SPEC)

    first = run_ingestion("postgres://customers?watermark=updated_at&chunk_rows=3", spec, settings, store=store)
    assert (first.rows_read, first.rows_curated, first.rows_quarantined) == (8, 7, 1)
    assert first.format == "parquet" and first.version == 1
    zones = DatasetZones(store)
    assert zones.load_state("customers", "postgres-customers")["watermark"].startswith("2026-01-03T12:00:00")

    again = run_ingestion("postgres://customers?watermark=updated_at", spec, settings, store=store)
    assert (again.rows_read, again.version, again.new_version) == (0, 1, False)  # nothing new, nothing fetched

    insert_customers(pg_url, [(9, "n9", "u9@x.io", "Pro", _ts(4)), (10, "n10", "u10@x.io", "Basic", _ts(4, 1))])
    third = run_ingestion("postgres://customers?watermark=updated_at", spec, settings, store=store)
    assert (third.rows_read, third.rows_curated, third.version) == (2, 2, 2)
    table = zones.read("customers").to_pandas()
    assert sorted(table["id"]) == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert "u1@x.io" not in set(table["email"])  # PII hashed
    assert zones.read("customers", partitions=("2026-01-04", "2026-01-04")).num_rows == 2

    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in str(v) for v in third.to_dict().values())


def test_permanent_errors_are_clear(pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    zones = DatasetZones(LocalArtifactStore(tmp_path / "store"))
    missing = PostgresSource(url=SecretStr(pg_url), table="no_such_table", attempts=2)
    with pytest.raises(ConnectorError, match="no_such_table"):
        ingest_landed(missing.fetch({}), spec_from_dict(CUSTOMERS_SPEC), zones, IngestOptions())
    with pytest.raises(ConnectorError, match="invalid SQL identifier"):
        PostgresSource(url=SecretStr(pg_url), table="customers; DROP TABLE customers")
    down = PostgresSource(url=SecretStr(f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/x"), table="t",
                          attempts=2)  # fmt: skip
    with pytest.raises(ConnectorError, match="cannot reach PostgreSQL after 2 attempts") as err:
        down.fetch({})
    assert PASSWORD not in str(err.value) and PASSWORD not in caplog.text
