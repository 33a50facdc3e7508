"""Source connectors. Each lands what it fetched as one local file (the raw zone keeps it verbatim), then the
file goes through the same detect -> read -> cleanse -> validate path as any uploaded file.

Credentials arrive as `SecretStr` from Settings (or a Kubernetes Secret mounted as env) and never appear in
logs, errors or source URIs. Transient failures (connection errors, timeouts, HTTP 429/5xx, S3 5xx) are retried
with exponential backoff; permanent ones (404, 401, a missing table) fail at once with a message.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from slipway.errors import ConnectorError

logger = logging.getLogger(__name__)


@dataclass
class Landed:
    """A fetched batch on local disk, plus what to persist once its version is committed."""

    path: Path
    name: str
    source: str  # URI without credentials, recorded as lineage
    state_key: str | None = None
    new_state: dict[str, Any] | None = None
    on_commit: Callable[[], None] | None = None
    rows_fetched: int | None = None
    cleanup: list[Path] = field(default_factory=list)
    on_close: Callable[[], None] | None = None  # releases connections whether or not the run committed

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()
            self.on_close = None
        for path in self.cleanup:
            if path.is_file():
                path.unlink()
            if path.parent.name.startswith("slipway-land-") and not any(path.parent.iterdir()):
                path.parent.rmdir()


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="slipway-land-"))


def _retrying(is_transient: Callable[[BaseException], bool], attempts: int, max_wait: float = 8.0) -> Retrying:
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, max=max_wait),
        reraise=True,
    )


# ---------------------------------------------------------------------------------------------- files / S3


@dataclass
class S3Options:
    endpoint: str
    access_key: SecretStr | None
    secret_key: SecretStr | None
    region: str = "us-east-1"
    secure: bool = True
    ca_bundle: Path | None = None
    attempts: int = 5


def s3_client(opts: S3Options) -> Any:
    import urllib3
    from minio import Minio

    http = None
    if opts.secure:
        http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", ca_certs=str(opts.ca_bundle) if opts.ca_bundle else None, timeout=30.0
        )
    return Minio(
        opts.endpoint,
        access_key=opts.access_key.get_secret_value() if opts.access_key else None,
        secret_key=opts.secret_key.get_secret_value() if opts.secret_key else None,
        secure=opts.secure,
        region=opts.region,
        http_client=http,
    )


def fetch_file(uri: str, s3: S3Options | None = None) -> Landed:
    """A local path is used in place; `s3://bucket/key` is downloaded (with retries) to a temp file."""
    if not uri.startswith("s3://"):
        path = Path(uri)
        if not path.is_file():
            raise ConnectorError(f"{uri}: no such file; check the path")
        return Landed(path=path, name=path.name, source=str(path.resolve()))
    if s3 is None:
        raise ConnectorError(f"{uri}: S3 sources need SLIPWAY_S3_ENDPOINT (and keys) in the settings")
    from minio.error import S3Error

    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise ConnectorError(f"{uri}: expected s3://bucket/key")
    client = s3_client(s3)
    dest = _workdir() / Path(key).name

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, S3Error):
            return exc.code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout")
        return isinstance(exc, (OSError, ConnectionError, TimeoutError)) or type(exc).__module__.startswith("urllib3")

    try:
        for attempt in _retrying(transient, s3.attempts):
            with attempt:
                client.fget_object(bucket, key, str(dest))
    except S3Error as exc:
        raise ConnectorError(f"{uri}: S3 refused the download ({exc.code}); check the bucket, key and keys") from exc
    except Exception as exc:
        raise ConnectorError(f"{uri}: S3 download failed after {s3.attempts} attempts ({type(exc).__name__})") from exc
    return Landed(path=dest, name=Path(key).name, source=uri, cleanup=[dest])


# ---------------------------------------------------------------------------------------------- PostgreSQL

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


@dataclass
class PostgresSource:
    """A table read in chunks; with `watermark` set, only rows whose watermark is above the stored one."""

    url: SecretStr  # postgresql+psycopg://user:password@host:port/db
    table: str
    watermark: str | None = None
    chunk_rows: int = 50_000
    sslmode: str | None = None  # disable | require | verify-ca | verify-full
    sslrootcert: Path | None = None
    attempts: int = 5

    def __post_init__(self) -> None:
        for ident in [self.table, *([self.watermark] if self.watermark else [])]:
            if not _IDENT.match(ident):
                raise ConnectorError(f"invalid SQL identifier {ident!r}: use [schema.]name of letters, digits, _")

    @property
    def source(self) -> str:
        url = urlsplit(self.url.get_secret_value())
        return f"postgresql://{url.hostname}:{url.port or 5432}{url.path}/{self.table}"

    def fetch(self, state: dict[str, Any]) -> Landed:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import sqlalchemy as sa
        from sqlalchemy.exc import DBAPIError, OperationalError

        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if self.sslmode:
            connect_args["sslmode"] = self.sslmode
        if self.sslrootcert:
            connect_args["sslrootcert"] = str(self.sslrootcert)
        engine = sa.create_engine(self.url.get_secret_value(), connect_args=connect_args, pool_pre_ping=True)
        table = ".".join(f'"{p}"' for p in self.table.split("."))
        sql = f"SELECT * FROM {table}"  # identifiers validated above; values are bound parameters
        params: dict[str, Any] = {}
        last = state.get("watermark")
        if self.watermark:
            if last is not None:
                sql += f' WHERE "{self.watermark}" > :wm'
                params["wm"] = _parse_watermark(last)
            sql += f' ORDER BY "{self.watermark}"'
        dest = _workdir() / f"{self.table}.parquet"
        rows = 0
        high = last

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, OperationalError) or (
                isinstance(exc, DBAPIError) and bool(getattr(exc, "connection_invalidated", False))
            )

        try:
            for attempt in _retrying(transient, self.attempts):
                with attempt:
                    rows, high = 0, last
                    writer: pq.ParquetWriter | None = None
                    with engine.connect() as conn:
                        result = conn.execution_options(stream_results=True, max_row_buffer=self.chunk_rows).execute(
                            sa.text(sql), params
                        )
                        names = list(result.keys())
                        schema = pa.schema([(n, pa.string()) for n in names])
                        writer = pq.ParquetWriter(dest, schema)
                        try:
                            for chunk in result.partitions(self.chunk_rows):
                                cols = list(zip(*chunk, strict=True))
                                batch = pa.table(
                                    {n: pa.array([_text(v) for v in c], pa.string()) for n, c in zip(names, cols,
                                                                                                   strict=True)},
                                    schema=schema,
                                )  # fmt: skip
                                writer.write_table(batch)
                                rows += len(chunk)
                                if self.watermark:
                                    high = _text(chunk[-1][names.index(self.watermark)])
                        finally:
                            writer.close()
        except OperationalError as exc:
            raise ConnectorError(
                f"{self.source}: cannot reach PostgreSQL after {self.attempts} attempts ({exc.orig.__class__.__name__})"
            ) from exc
        except DBAPIError as exc:
            raise ConnectorError(f"{self.source}: query failed: {str(exc.orig).splitlines()[0]}") from exc
        finally:
            engine.dispose()
        logger.info("%s: fetched %d rows (watermark %s -> %s)", self.source, rows, last, high)
        return Landed(
            path=dest,
            name=dest.name,
            source=self.source,
            state_key=f"postgres-{self.table}",
            new_state={"watermark": high} if self.watermark else None,
            rows_fetched=rows,
            cleanup=[dest],
        )


def _parse_watermark(value: str) -> Any:
    for parse in (int, float, dt.datetime.fromisoformat):
        try:
            return parse(value)  # type: ignore[operator]
        except ValueError:
            continue
    return value


# ---------------------------------------------------------------------------------------------- HTTP REST


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def _later(value: Any, than: Any) -> bool:
    """`value` > `than` for watermarks stored as text: numbers and ISO times compare as such, else as text."""
    a, b = _parse_watermark(str(value)), _parse_watermark(str(than))
    try:
        return bool(a > b)
    except TypeError:  # e.g. a number against a time, or naive against aware
        return str(value) > str(than)


@dataclass
class HttpSource:
    """A paginated JSON REST endpoint: `page` (page=1,2..), `offset` (offset/limit), `cursor` or `none`.

    Incremental loads: with `since_field` (a record field that grows with every change, e.g. `updated_at`) the
    largest value fetched is kept as state once the batch is committed. The next run sends it as `since_param`
    (e.g. `updated_since`) when that is set, and drops records not later than it either way, so an API that
    filters inclusively, or not at all, still yields only new records.
    """

    url: str
    token: SecretStr | None = None
    pagination: str = "page"
    records_key: str = "data"
    page_size: int = 100
    page_param: str = "page"
    size_param: str = "per_page"
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    next_cursor_key: str = "next_cursor"
    verify: bool | str = True  # False, True or a CA bundle path
    timeout_s: float = 10.0
    attempts: int = 6
    max_retry_after_s: float = 30.0
    max_pages: int = 10_000
    since_field: str | None = None
    since_param: str | None = None

    @property
    def source(self) -> str:
        return self.url.split("?")[0]

    @property
    def state_key(self) -> str:
        return "http-" + self.source.split("://", 1)[-1]

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after_s)
        return float(wait_exponential(multiplier=0.2, max=5)(state))

    def _get(self, client: Any, params: dict[str, Any]) -> Any:
        import httpx

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, (_RetryableStatus, httpx.TransportError))),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = client.get(self.url, params=params)
                    if response.status_code == 429 or response.status_code >= 500:
                        logger.warning("%s: HTTP %d, retrying", self.source, response.status_code)
                        raise _RetryableStatus(response.status_code, _retry_after(response.headers.get("Retry-After")))
                    if response.status_code >= 400:
                        raise ConnectorError(
                            f"{self.source}: HTTP {response.status_code} {response.reason_phrase}; "
                            + ("check the token" if response.status_code in (401, 403) else "check the URL/params")
                        )
                    return response.json()
        except _RetryableStatus as exc:
            raise ConnectorError(f"{self.source}: still HTTP {exc.status} after {self.attempts} attempts") from exc
        except httpx.TransportError as exc:
            raise ConnectorError(f"{self.source}: unreachable after {self.attempts} attempts ({exc!r})") from exc
        except ValueError as exc:
            raise ConnectorError(f"{self.source}: response is not JSON") from exc

    def fetch(self, state: dict[str, Any] | None = None) -> Landed:
        import httpx

        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        dest = _workdir() / "records.jsonl"
        rows = 0
        since = (state or {}).get("since") if self.since_field else None
        high, seen_before = since, 0
        with (
            httpx.Client(headers=headers, verify=self.verify, timeout=self.timeout_s) as client,
            open(dest, "w", encoding="utf-8") as out,
        ):
            cursor: str | None = None
            for page in range(self.max_pages):
                params: dict[str, Any] = {}
                if self.pagination == "page":
                    params = {self.page_param: page + 1, self.size_param: self.page_size}
                elif self.pagination == "offset":
                    params = {self.offset_param: page * self.page_size, self.limit_param: self.page_size}
                elif self.pagination == "cursor" and cursor:
                    params = {self.cursor_param: cursor}
                if self.since_param and since is not None:
                    params[self.since_param] = since
                body = self._get(client, params)
                records = body if isinstance(body, list) else body.get(self.records_key, [])
                if not isinstance(records, list):
                    raise ConnectorError(f"{self.source}: {self.records_key!r} in the response is not a list")
                for rec in records:
                    mark = rec.get(self.since_field) if self.since_field and isinstance(rec, dict) else None
                    if mark is not None and since is not None and not _later(mark, since):
                        seen_before += 1  # committed by an earlier run
                        continue
                    if mark is not None and (high is None or _later(mark, high)):
                        high = mark
                    out.write(json.dumps(rec, default=str) + "\n")
                    rows += 1
                if self.pagination == "none":
                    break
                if self.pagination == "cursor":
                    cursor = body.get(self.next_cursor_key) if isinstance(body, dict) else None
                    if not cursor:
                        break
                elif len(records) < self.page_size:
                    break
            else:
                raise ConnectorError(f"{self.source}: more than {self.max_pages} pages; raise max_pages")
        if seen_before:
            logger.info("%s: skipped %d records not later than %s=%s", self.source, seen_before, self.since_field,
                        since)  # fmt: skip
        logger.info("%s: fetched %d records", self.source, rows)
        return Landed(
            path=dest, name="records.jsonl", source=self.source, rows_fetched=rows, cleanup=[dest],
            state_key=self.state_key if self.since_field else None,
            new_state={"since": high} if self.since_field and high is not None else None,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------- Kafka


@dataclass
class KafkaSource:
    """Drain a topic from the group's committed offsets to the end seen at start; offsets are committed only
    after the batch is committed as a dataset version, so a failed run re-reads the same messages."""

    bootstrap: str
    topic: str
    group_id: str = "slipway-ingestion"
    security_protocol: str = "PLAINTEXT"  # SSL / SASL_SSL for TLS
    ssl_ca_location: Path | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    max_messages: int = 1_000_000
    timeout_s: float = 30.0

    @property
    def source(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}"

    def _config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.partition.eof": True,
            "security.protocol": self.security_protocol,
            "client.id": f"slipway-ingest-{uuid.uuid4().hex[:6]}",
        }
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = str(self.ssl_ca_location)
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return conf

    def fetch(self, state: dict[str, Any] | None = None) -> Landed:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

        consumer = Consumer(self._config())
        try:
            meta = consumer.list_topics(self.topic, timeout=10)
            info = meta.topics.get(self.topic)
            if info is None or info.error is not None or not info.partitions:
                raise ConnectorError(f"{self.source}: topic not found ({info.error if info else 'no metadata'})")
            parts = [TopicPartition(self.topic, p) for p in sorted(info.partitions)]
            committed = consumer.committed(parts, timeout=10)
            # Start from the group's committed offsets (earliest for a new group). The end of each partition is
            # taken from the fetch responses (partition EOF), which every Kafka-API broker reports.
            starts = {tp.partition: (tp.offset if tp.offset >= 0 else OFFSET_BEGINNING) for tp in committed}
            consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
            dest = _workdir() / f"{self.topic}.jsonl"
            positions: dict[int, int] = {p: o for p, o in starts.items() if o >= 0}
            at_end: set[int] = set()
            count = 0
            deadline = time.monotonic() + self.timeout_s
            with open(dest, "w", encoding="utf-8") as out:
                while len(at_end) < len(starts) and count < self.max_messages:
                    if time.monotonic() > deadline:
                        raise ConnectorError(f"{self.source}: drain timed out after {self.timeout_s}s")
                    msg = consumer.poll(0.5)
                    if msg is None:
                        continue
                    error, partition, offset = msg.error(), int(msg.partition() or 0), int(msg.offset() or 0)
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(partition)
                            continue
                        raise ConnectorError(f"{self.source}: {error}")
                    at_end.discard(partition)
                    positions[partition] = offset + 1
                    out.write(_value_line(msg.value()) + "\n")
                    count += 1
        except KafkaException as exc:
            consumer.close()
            raise ConnectorError(f"{self.source}: {exc}") from exc
        except BaseException:
            consumer.close()
            raise

        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                consumer.close()

        def commit() -> None:
            offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=False)

        logger.info("%s: drained %d messages", self.source, count)
        return Landed(
            path=dest,
            name=dest.name,
            source=self.source,
            on_commit=commit,
            on_close=close,
            rows_fetched=count,
            new_state={"offsets": {str(p): o for p, o in positions.items()}},
            state_key=f"kafka-{self.topic}",
            cleanup=[dest],
        )


def _value_line(value: bytes | None) -> str:
    """One message as one JSONL line; a value that is not a JSON object stays visible as a bad line."""
    if value is None:
        return "null"
    text = value.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text))
    except json.JSONDecodeError:
        return text.replace("\r", " ").replace("\n", " ")
