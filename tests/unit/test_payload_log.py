"""PayloadLogger: the agreed layout and line format, buffering, retries, and reading back with the monitoring reader."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipway.monitoring.payloads import ReadStats, read_payload_logs
from slipway.serving.payload_log import LocalSink, PayloadLogger, StoreSink, partition_key, sink_from_target

pytestmark = pytest.mark.unit

ROWS = [{"tenure": 3, "Contract": "Month-to-month"}, {"tenure": 40, "Contract": "Two year"}]
_PATH = re.compile(r"payload-logs/churn/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/[A-Za-z0-9_.-]+\.jsonl$")


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def test_local_layout_and_lines(tmp_path: Path) -> None:
    with PayloadLogger(tmp_path, "churn", 3, variant="canary", flush_seconds=60) as plog:
        plog.log("req-1", ROWS, [0.8, 0.1])
        plog.log("req-2", ROWS[:1], [0.7])
        assert not list(tmp_path.rglob("*.jsonl"))  # buffered until flushed
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1 and _PATH.search(files[0].as_posix()), files
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [ln["row_id"] for ln in lines] == ["req-1:0", "req-1:1", "req-2:0"]
    first = lines[0]
    assert set(first) == {
        "ts",
        "request_id",
        "row_id",
        "model",
        "version",
        "variant",
        "features",
        "prediction",
        "label",
    }
    assert first["model"] == "churn" and first["version"] == 3 and first["variant"] == "canary"
    assert first["features"] == ROWS[0] and first["prediction"] == 0.8 and first["label"] is None
    ts = datetime.fromisoformat(first["ts"])
    assert ts.tzinfo is not None and partition_key(ts) in files[0].as_posix()
    assert plog.rows_logged == plog.rows_written == 3 and plog.rows_dropped == 0


def test_monitoring_reader_round_trip(tmp_path: Path) -> None:
    with PayloadLogger(tmp_path, "churn", 1) as plog:
        plog.log("abc", ROWS, [0.25, 0.75])
    start, end = _window()
    stats = ReadStats()
    frame = read_payload_logs(tmp_path, "churn", start, end, stats=stats)
    assert len(frame) == 2 and stats.rows == 2 and not stats.rejected
    assert frame["prediction"].tolist() == [0.25, 0.75]
    assert frame["tenure"].tolist() == [3, 40]
    assert frame["row_id"].tolist() == ["abc:0", "abc:1"]


def test_flush_on_size_without_close(tmp_path: Path) -> None:
    plog = PayloadLogger(tmp_path, "churn", 1, max_rows=2, flush_seconds=60)
    try:
        plog.log("a", ROWS, [0.1, 0.2])
        deadline = time.monotonic() + 5
        while plog.rows_written < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert plog.rows_written == 2
        assert len(list(tmp_path.rglob("*.jsonl"))) == 1
    finally:
        plog.close()


class _FlakySink:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.lines: list[bytes] = []

    def write(self, model: str, partition: str, lines: list[bytes]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk full")
        self.lines.extend(lines)

    def close(self) -> None:
        pass


def test_failed_write_keeps_rows_and_overflow_is_counted() -> None:
    sink = _FlakySink(failures=1)
    plog = PayloadLogger(sink, "churn", 1, flush_seconds=60, max_buffered_rows=3)
    plog.log("r1", ROWS, [0.1, 0.2])
    with pytest.raises(OSError):
        plog.flush()
    assert plog.rows_written == 0 and plog.rows_dropped == 0
    plog.log("r2", ROWS, [0.3, 0.4])  # 4 buffered > 3 allowed: nothing dropped until a failure requeues
    plog.close()
    ids = [json.loads(line)["row_id"] for line in sink.lines]
    assert ids == ["r1:0", "r1:1", "r2:0", "r2:1"]
    assert plog.rows_written == 4

    sink = _FlakySink(failures=1)
    plog = PayloadLogger(sink, "churn", 1, flush_seconds=60, max_buffered_rows=3)
    plog.log("r1", ROWS + ROWS, [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(OSError):
        plog.flush()
    assert plog.rows_dropped == 1  # the oldest row, logged with an error
    plog.close()
    assert [json.loads(line)["row_id"] for line in sink.lines] == ["r1:1", "r1:2", "r1:3"]
    assert plog.rows_logged == plog.rows_written + plog.rows_dropped


def test_mismatched_lengths_are_refused(tmp_path: Path) -> None:
    with PayloadLogger(tmp_path, "churn", 1) as plog, pytest.raises(ValueError, match="2 rows but 1"):
        plog.log("x", ROWS, [0.5])


def test_sink_from_target(tmp_path: Path) -> None:
    assert isinstance(sink_from_target(tmp_path), LocalSink)
    with pytest.raises(Exception, match="kafka://host:port/topic"):
        sink_from_target("kafka://broker-only")


@pytest.mark.integration
def test_artifact_store_sink_on_moto(minio_client, s3_bucket: str) -> None:  # type: ignore[no-untyped-def]
    from slipway.storage import S3ArtifactStore

    store = S3ArtifactStore(minio_client, s3_bucket)
    sink = StoreSink(store)
    with PayloadLogger(sink, "churn", 2, variant="stable") as plog:
        plog.log("s3-1", ROWS, [0.9, 0.05])
        plog.flush()
        plog.log("s3-2", ROWS[:1], [0.4])
    keys = store.list("payload-logs/churn")
    assert len(keys) == 2 and all(_PATH.search(k) for k in keys), keys  # one immutable object per flush
    start, end = _window()
    frame = read_payload_logs(store, "churn", start, end)
    assert sorted(frame["row_id"]) == ["s3-1:0", "s3-1:1", "s3-2:0"]
    assert set(frame["version"]) == {2} and set(frame["variant"]) == {"stable"}


@pytest.mark.integration
def test_kafka_sink_on_tansu(kafka_broker: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"payload-logs-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=10)
    with PayloadLogger(f"kafka://{kafka_broker}/{topic}", "churn", 4, variant="canary") as plog:
        plog.log("k-1", ROWS, [0.3, 0.6])
    consumer = Consumer({"bootstrap.servers": kafka_broker, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])  # no group join: read the partition from the start
    received: dict[str, dict] = {}
    deadline = time.monotonic() + 15
    try:
        while len(received) < 2 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                received[msg.key().decode()] = json.loads(msg.value())
    finally:
        consumer.close()
    assert set(received) == {"k-1:0", "k-1:1"}
    assert received["k-1:1"]["prediction"] == 0.6 and received["k-1:1"]["version"] == 4
    assert received["k-1:0"]["variant"] == "canary" and received["k-1:0"]["features"] == ROWS[0]
