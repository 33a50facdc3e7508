"""Payload logging for model servers: one JSON line per scored row, buffered off the request path.

Layout (local folder, or the same keys on an artifact store):
`payload-logs/<model>/dt=YYYY-MM-DD/hour=HH/<writer-id>.jsonl`, each line
`{"ts", "request_id", "row_id": "<request_id>:<i>", "model", "version", "variant", "features", "prediction",
"label": null}`; `slipway.monitoring.payloads.read_payload_logs` reads it back. On an artifact store objects are
immutable, so every flush writes a new object whose name is the writer id plus a sequence number.
A Kafka sink sends the same JSON objects to a topic (key = row_id) instead.

`PayloadLogger.log` only appends to a buffer; a daemon thread flushes it when `max_rows` are waiting or every
`flush_seconds`, and `close()` flushes the rest. A failed write keeps the rows for the next attempt; rows are only
dropped (counted in `rows_dropped`, logged) when the buffer exceeds `max_buffered_rows`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from slipway.errors import ConfigError, SlipwayError
from slipway.storage import ArtifactStore

logger = logging.getLogger(__name__)

PAYLOAD_PREFIX = "payload-logs"

__all__ = [
    "PAYLOAD_PREFIX",
    "KafkaSink",
    "LocalSink",
    "PayloadLogger",
    "PayloadSink",
    "StoreSink",
    "partition_key",
    "sink_from_target",
]


class PayloadSink(Protocol):
    """Writes a batch of rows (already JSON-encoded lines) for one model and hour partition."""

    def write(self, model: str, partition: str, lines: list[bytes]) -> None: ...

    def close(self) -> None: ...


def partition_key(ts: datetime) -> str:
    """`dt=YYYY-MM-DD/hour=HH` of a UTC timestamp."""
    ts = ts.astimezone(UTC)
    return f"dt={ts:%Y-%m-%d}/hour={ts:%H}"


def default_writer_id() -> str:
    """Host, process and a random suffix: unique per process, so two writers never share a file."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LocalSink:
    """Appends to `<root>/payload-logs/<model>/<partition>/<writer-id>.jsonl` (one file per writer and hour)."""

    def __init__(self, root: str | Path, writer_id: str | None = None) -> None:
        self.root = Path(root)
        self.writer_id = writer_id or default_writer_id()

    def write(self, model: str, partition: str, lines: list[bytes]) -> None:
        path = self.root / PAYLOAD_PREFIX / model / partition / f"{self.writer_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(b"".join(lines))

    def close(self) -> None:
        return None


class StoreSink:
    """One new object per flush and partition: `<writer-id>-<seq>.jsonl` (objects cannot be appended to)."""

    def __init__(self, store: ArtifactStore, writer_id: str | None = None) -> None:
        self.store = store
        self.writer_id = writer_id or default_writer_id()
        self._seq = 0

    def write(self, model: str, partition: str, lines: list[bytes]) -> None:
        self._seq += 1
        key = f"{PAYLOAD_PREFIX}/{model}/{partition}/{self.writer_id}-{self._seq:06d}.jsonl"
        self.store.put_bytes(key, b"".join(lines))

    def close(self) -> None:
        return None


class KafkaSink:
    """Produces each row to a Kafka topic with confluent-kafka (key = row_id); `write` waits for delivery."""

    def __init__(self, bootstrap_servers: str, topic: str, *, timeout: float = 10.0) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.timeout = timeout
        self._producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 20, "acks": "all"})

    def write(self, model: str, partition: str, lines: list[bytes]) -> None:
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for line in lines:
            key = json.loads(line)["row_id"].encode()
            self._producer.produce(self.topic, value=line.rstrip(b"\n"), key=key, on_delivery=on_delivery)
            self._producer.poll(0)
        left = self._producer.flush(self.timeout)
        if left or failures:
            raise SlipwayError(
                f"Kafka topic {self.topic!r}: {left} message(s) undelivered after {self.timeout:g} s, "
                f"{len(failures)} failed ({failures[:1]}); check the broker"
            )

    def close(self) -> None:
        self._producer.flush(self.timeout)


def sink_from_target(target: str | Path | ArtifactStore | PayloadSink) -> PayloadSink:
    """A sink from a folder path, an `ArtifactStore`, `kafka://host:port/topic`, or a ready sink."""
    if isinstance(target, (str, Path)):
        text = str(target)
        if text.startswith("kafka://"):
            rest = text[len("kafka://") :]
            brokers, _, topic = rest.partition("/")
            if not brokers or not topic:
                raise ConfigError(f"payload log target {text!r}: use kafka://host:port/topic")
            return KafkaSink(brokers, topic)
        return LocalSink(text)
    if hasattr(target, "write") and hasattr(target, "close"):
        return target  # type: ignore[return-value]
    return StoreSink(target)  # type: ignore[arg-type]


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class PayloadLogger:
    """Buffered writer of scored rows for one model version (and traffic variant)."""

    def __init__(
        self,
        root_or_store: str | Path | ArtifactStore | PayloadSink,
        model: str,
        version: int,
        variant: str | None = None,
        *,
        max_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_buffered_rows: int = 100_000,
    ) -> None:
        self.sink = sink_from_target(root_or_store)
        self.model = model
        self.version = int(version)
        self.variant = variant
        self.max_rows = max_rows
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self.rows_logged = 0
        self.rows_written = 0
        self.rows_dropped = 0
        self._buffer: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def log(self, request_id: str, rows: Sequence[dict[str, Any]], predictions: Sequence[float]) -> None:
        """Queue one line per row; never blocks on I/O. `rows` and `predictions` must have the same length."""
        if len(rows) != len(predictions):
            raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions")
        if self._closed:
            raise SlipwayError("payload logger is closed")
        now = datetime.now(UTC)
        ts, partition = now.isoformat(), partition_key(now)
        lines = []
        for i, (row, pred) in enumerate(zip(rows, predictions, strict=True)):
            record = {
                "ts": ts,
                "request_id": request_id,
                "row_id": f"{request_id}:{i}",
                "model": self.model,
                "version": self.version,
                "variant": self.variant,
                "features": row,
                "prediction": float(pred),
                "label": None,
            }
            lines.append((partition, (json.dumps(record, default=_json_default) + "\n").encode()))
        with self._lock:
            self._buffer.extend(lines)
            self.rows_logged += len(lines)
            waiting = len(self._buffer)
        if self._thread is None:
            self._start()
        if waiting >= self.max_rows:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:  # started lazily, so a logger made before a worker fork still works after it
                self._thread = threading.Thread(target=self._run, name="payload-log-flush", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the rows stay buffered; the error is logged and retried
                logger.exception("payload log flush failed for %s v%s; retrying later", self.model, self.version)

    def flush(self) -> int:
        """Write every buffered row now; returns how many were written. Failed rows return to the buffer."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            by_partition: dict[str, list[bytes]] = defaultdict(list)
            for partition, line in batch:
                by_partition[partition].append(line)
            written = 0
            pending = list(by_partition.items())
            while pending:
                partition, lines = pending[0]
                try:
                    self.sink.write(self.model, partition, lines)
                except Exception:  # the rows stay buffered; the error is logged and retried
                    self.rows_written += written
                    self._requeue([(p, line) for p, rows in pending for line in rows])
                    raise
                written += len(lines)
                pending.pop(0)
            self.rows_written += written
            return written

    def _requeue(self, rows: list[tuple[str, bytes]]) -> None:
        with self._lock:
            self._buffer[:0] = rows
            excess = len(self._buffer) - self.max_buffered_rows
            if excess > 0:
                del self._buffer[:excess]
                self.rows_dropped += excess
                logger.error("payload log buffer full: dropped the %d oldest rows of %s", excess, self.model)

    def close(self) -> None:
        """Stop the flush thread and write what is left (raises if the final write fails)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.flush()
        finally:
            self.sink.close()

    def __enter__(self) -> PayloadLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
