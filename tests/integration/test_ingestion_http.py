"""REST connector against a loopback API that paginates, throttles (429 + Retry-After) and fails (5xx)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from pydantic import SecretStr

from slipway.errors import ConnectorError
from slipway.ingestion import DatasetZones, HttpSource, IngestOptions, fetch_file, ingest_landed, spec_from_dict
from slipway.ingestion.integrate import SourceFrame, merge_sources
from slipway.ingestion.sources import run_ingestion
from slipway.settings import Settings
from slipway.storage import LocalArtifactStore
from tests.conftest import free_port
from tests.integration.test_ingestion_postgres import CUSTOMERS_SPEC, _ts, insert_customers, pg_url  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

TOKEN = "tok-Bearer-77c1"
BILLING = [
    {"id": i, "balance": round(i * 1.5, 2), "updated_at": f"2026-01-0{1 + i % 5}T00:00:00"} for i in range(1, 24)
]
BILLING.append({"id": 99, "balance": "lots", "updated_at": "2026-01-01T00:00:00"})  # bad row -> quarantine


class FakeApi:
    def __init__(self) -> None:
        self.changes = [{"id": i, "plan": "basic", "updated_at": f"2026-02-01T00:00:{i:02d}"} for i in range(1, 8)]
        self.hits: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.server: ThreadingHTTPServer | None = None
        self.url = ""


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    """Loopback JSON API: /billing (page), /usage (cursor), /ledger (offset), /changes (page, `updated_since`),
    /broken (always 500)."""
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            key = f"{parts.path}?{parts.query}"
            state.hits[key] += 1
            state.times.setdefault(key, []).append(time.monotonic())
            n = state.hits[key]
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"error": "unauthorized"})
            if parts.path == "/billing":
                page, size = int(q.get("page", 1)), int(q.get("per_page", 10))
                if page == 2 and n == 1:
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
                if page == 3 and n == 1:
                    return self._send(500, {"error": "boom"})
                return self._send(200, {"data": BILLING[(page - 1) * size : page * size]})
            if parts.path == "/usage":
                start = int(q.get("cursor", 0))
                if start == 4 and n == 1:
                    return self._send(503, {"error": "unavailable"})
                items = [{"id": i, "minutes": i * 10} for i in range(start + 1, min(start + 4, 10) + 1)]
                nxt = start + 4 if start + 4 < 10 else None
                return self._send(200, {"items": items, "next": nxt})
            if parts.path == "/changes":  # filters inclusively (>=), as many APIs do
                page, size = int(q.get("page", 1)), int(q.get("per_page", 10))
                since = q.get("updated_since")
                rows = [r for r in state.changes if since is None or r["updated_at"] >= since]
                return self._send(200, {"data": rows[(page - 1) * size : page * size]})
            if parts.path == "/ledger":
                off, lim = int(q.get("offset", 0)), int(q.get("limit", 5))
                return self._send(200, [{"id": i} for i in range(off + 1, min(off + lim, 12) + 1)])
            return self._send(500, {"error": "always"})

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.server, state.url = server, f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


BILLING_SPEC = {
    "name": "billing",
    "columns": [
        {"name": "id", "type": "integer"},
        {"name": "balance", "type": "number", "min": 0},
        {"name": "updated_at", "type": "datetime"},
    ],
    "keys": ["id"],
}


def test_page_pagination_429_and_500_are_retried(api: FakeApi, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    settings = Settings(ingest_http_token=SecretStr(TOKEN))
    uri = f"{api.url}/billing#pagination=page&records=data&page_size=10"
    report = run_ingestion(uri, spec_from_dict(BILLING_SPEC), settings, store=LocalArtifactStore(tmp_path))
    assert (report.rows_read, report.rows_curated, report.rows_quarantined) == (24, 23, 1)
    assert report.format == "jsonl" and report.rule_failures == {"type:balance": 1}
    assert api.hits["/billing?page=2&per_page=10"] == 2 and api.hits["/billing?page=3&per_page=10"] == 2
    t = api.times["/billing?page=2&per_page=10"]
    assert t[1] - t[0] >= 0.95  # Retry-After: 1 honoured
    assert TOKEN not in caplog.text


def test_cursor_and_offset_pagination(api: FakeApi) -> None:
    cursor = HttpSource(f"{api.url}/usage", token=SecretStr(TOKEN), pagination="cursor", records_key="items",
                        next_cursor_key="next")  # fmt: skip
    landed = cursor.fetch()
    ids = [json.loads(line)["id"] for line in landed.path.read_text().splitlines()]
    assert ids == list(range(1, 11)) and landed.rows_fetched == 10
    landed.close()
    offset = HttpSource(f"{api.url}/ledger", token=SecretStr(TOKEN), pagination="offset", page_size=5)
    landed = offset.fetch()
    assert [json.loads(line)["id"] for line in landed.path.read_text().splitlines()] == list(range(1, 13))
    landed.close()


def test_permanent_and_exhausted_errors(api: FakeApi, caplog: pytest.LogCaptureFixture) -> None:
    wrong = HttpSource(f"{api.url}/billing", token=SecretStr("wrong-token"))
    with pytest.raises(ConnectorError, match=r"HTTP 401.*check the token"):
        wrong.fetch()
    assert api.hits["/billing?page=1&per_page=100"] == 1  # a 401 is not retried
    broken = HttpSource(f"{api.url}/broken", token=SecretStr(TOKEN), attempts=3)
    with pytest.raises(ConnectorError, match="still HTTP 500 after 3 attempts"):
        broken.fetch()
    assert "wrong-token" not in caplog.text and TOKEN not in caplog.text


def test_merge_postgres_rest_and_file(api: FakeApi, pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Customers (PostgreSQL) + billing (REST) + usage (file), merged on id with lineage per value."""
    url = pg_url
    insert_customers(url, [(i, f"n{i}", f"u{i}@x.io", "Basic", _ts(1)) for i in range(1, 6)])
    store = LocalArtifactStore(tmp_path / "store")
    settings = Settings(ingest_pg_url=SecretStr(url), ingest_pg_sslmode="disable",
                        ingest_http_token=SecretStr(TOKEN))  # fmt: skip
    run_ingestion("postgres://customers", spec_from_dict(CUSTOMERS_SPEC), settings, store=store)
    run_ingestion(f"{api.url}/billing#page_size=10", spec_from_dict(BILLING_SPEC), settings, store=store)
    usage = tmp_path / "usage.csv"
    usage.write_text("id,minutes,updated_at\n1,100,2026-02-01T00:00:00\n2,200,2026-02-01T00:00:00\n")
    usage_spec = spec_from_dict({"name": "usage", "columns": [
        {"name": "id", "type": "integer"}, {"name": "minutes", "type": "integer"},
        {"name": "updated_at", "type": "datetime"}]})  # fmt: skip
    zones = DatasetZones(store)
    ingest_landed(fetch_file(str(usage)), usage_spec, zones, IngestOptions())
    frames = [
        SourceFrame("postgres", zones.read("customers", columns=["id", "plan", "updated_at"]).to_pandas(),
                    "updated_at"),
        SourceFrame("rest", zones.read("billing", columns=["id", "balance", "updated_at"]).to_pandas(),
                    "updated_at"),
        SourceFrame("file", zones.read("usage", columns=["id", "minutes", "updated_at"]).to_pandas(),
                    "updated_at"),
    ]  # fmt: skip
    merged = merge_sources(frames, keys=["id"], policy="priority")
    row1 = merged[merged["id"] == 1].iloc[0]
    assert (row1["plan"], row1["balance"], row1["minutes"]) == ("Basic", 1.5, 100)
    assert (row1["plan__source"], row1["balance__source"], row1["minutes__source"]) == ("postgres", "rest", "file")
    assert len(merged) == 23  # ids 1..23 from billing cover the 5 customers
    assert pd.isna(merged[merged["id"] == 9].iloc[0]["plan"])


CHANGES_SPEC = {
    "name": "changes",
    "columns": [{"name": "id", "type": "integer"}, {"name": "plan"}, {"name": "updated_at", "type": "datetime"}],
    "keys": ["id"],
}


def test_incremental_http_fetches_only_records_changed_since_the_last_commit(api: FakeApi, tmp_path: Path) -> None:
    settings = Settings(ingest_http_token=SecretStr(TOKEN))
    store = LocalArtifactStore(tmp_path)
    uri = f"{api.url}/changes#page_size=3&since_field=updated_at&since_param=updated_since"
    first = run_ingestion(uri, spec_from_dict(CHANGES_SPEC), settings, store=store)
    assert (first.rows_read, first.rows_curated, first.version) == (7, 7, 1)
    zones = DatasetZones(store)
    assert zones.load_state("changes", "http-" + api.url.split("://")[1] + "/changes") == {
        "since": "2026-02-01T00:00:07"
    }
    # Nothing changed: the API sends the boundary record again (it filters with >=); it is not ingested twice.
    again = run_ingestion(uri, spec_from_dict(CHANGES_SPEC), settings, store=store)
    assert again.rows_read == 0 and again.version == 1 and not again.new_version
    assert api.hits["/changes?page=1&per_page=3&updated_since=2026-02-01T00%3A00%3A07"] == 1
    api.changes += [
        {"id": 3, "plan": "premium", "updated_at": "2026-02-02T09:00:00"},  # an update of an existing id
        {"id": 8, "plan": "basic", "updated_at": "2026-02-02T10:00:00"},
    ]
    third = run_ingestion(uri, spec_from_dict(CHANGES_SPEC), settings, store=store)
    assert (third.rows_read, third.rows_curated, third.version) == (2, 2, 2)
    latest = zones.read("changes").to_pandas()
    assert len(latest) == 9 and set(latest.loc[latest["id"] == 3, "plan"]) == {"basic", "premium"}
    current = zones.read("changes", latest=True).to_pandas()  # the upsert view: one row per id, the newest
    assert len(current) == 8 and current.loc[current["id"] == 3, "plan"].tolist() == ["premium"]
    # Without a query parameter the records are still filtered on the client.
    plain = HttpSource(f"{api.url}/changes", token=SecretStr(TOKEN), page_size=3, since_field="updated_at")
    landed = plain.fetch({"since": "2026-02-02T09:00:00"})
    try:
        assert landed.rows_fetched == 1 and json.loads(landed.path.read_text())["id"] == 8
        assert landed.new_state == {"since": "2026-02-02T10:00:00"}
    finally:
        landed.close()
