"""The stream processor against a real tansu broker and Redis: windows, late events, poison messages, sinks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from slipway.storage import LocalArtifactStore
from slipway.streaming.broker import CONSUMER_DEFAULTS
from slipway.streaming.detector import DetectorConfig
from slipway.streaming.events import make_event
from slipway.streaming.processor import ProcessorConfig, StreamProcessor
from slipway.streaming.simulator import SimulatedEvent, SimulatorConfig, simulate
from slipway.streaming.sinks import RawLanding, RedisSink
from tests.unit.test_streaming_windows import expected_windows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BASE = 1_764_000_000_000


def new_config(bootstrap: str, **kw: object) -> ProcessorConfig:
    tag = uuid.uuid4().hex[:8]
    defaults: dict[str, object] = {
        "topic": f"readings-{tag}",
        "late_topic": f"late-{tag}",
        "dlq_topic": f"dlq-{tag}",
        "group": f"proc-{tag}",
        "partitions": 2,
        "batch_size": 500,
        "checkpoint_interval_s": 0.5,
        "allowed_lateness_ms": 5_000,
        "broker_timeout_s": 10.0,
    }
    defaults.update(kw)
    return ProcessorConfig(bootstrap=bootstrap, **defaults)  # type: ignore[arg-type]


def produce(bootstrap: str, topic: str, events: Iterable[SimulatedEvent | tuple[int, bytes]]) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    n = 0
    for ev in events:
        if isinstance(ev, SimulatedEvent):
            partition, key, value = int(ev.sensor_id[-1]) % 2, ev.sensor_id.encode(), ev.payload()
        else:
            partition, key, value = ev[0], b"poison", ev[1]
        producer.produce(topic, key=key, value=value, partition=partition)
        n += 1
    assert producer.flush(30) == 0
    return n


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list[object]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}", **CONSUMER_DEFAULTS}
    )
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    got: list[object] = []
    import time

    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(m for m in consumer.consume(500, 0.2) if m.error() is None)
    consumer.close()
    return got


def window_log(client: object, sink: RedisSink) -> pd.DataFrame:
    entries = client.xrange(sink.windows_stream)  # type: ignore[attr-defined]
    rows = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    frame = pd.DataFrame(rows)
    for col in ("start_ms", "end_ms", "count"):
        frame[col] = frame[col].astype("int64")
    for col in ("mean", "min", "max", "std"):
        frame[col] = frame[col].astype("float64")
    return (
        frame.rename(columns={"start_ms": "start"}).sort_values(["kind", "sensor_id", "start"]).reset_index(drop=True)
    )


def assert_windows_match(got: pd.DataFrame, events: pd.DataFrame, lateness: int) -> None:
    events = events.assign(partition=events["sensor_id"].str[-1].astype(int) % 2)
    bound = {p: int(g["ts"].max()) - lateness for p, g in events.groupby("partition")}
    want = expected_windows(events, bound)
    assert not got.duplicated(["kind", "sensor_id", "start"]).any(), "a window result was written twice"
    assert len(got) == len(want) > 0
    assert (
        got[["kind", "sensor_id", "start", "count"]].values.tolist()
        == want[["kind", "sensor_id", "start", "count"]].values.tolist()
    )
    for col in ("mean", "min", "max", "std"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9)


@pytest.fixture
def redis_client(stream_redis: tuple[str, str]):  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(stream_redis[0])
    yield client
    client.close()


def test_windows_match_pandas_and_duplicates_are_dropped(
    kafka_broker: str, stream_redis: tuple[str, str], redis_client: object, tmp_path: Path
) -> None:
    cfg = new_config(kafka_broker, detector=DetectorConfig(window=120, threshold=5.0, cooldown=5, warmup=30))
    sim = SimulatorConfig(
        sensors=4,
        interval_ms=500,
        start_ms=BASE,
        out_of_order_rate=0.1,
        out_of_order_max_ms=3000,
        duplicate_rate=0.05,
        anomaly_rate=0.01,
    )
    events = list(simulate(sim, 600))
    sink = RedisSink(redis_client, stream_redis[1], cfg.group)
    raw = RawLanding(LocalArtifactStore(tmp_path / "artifacts"))
    from slipway.streaming.broker import ensure_topics

    ensure_topics(kafka_broker, cfg.topics())
    produce(kafka_broker, cfg.topic, events)
    totals = StreamProcessor(cfg, sink, raw=raw).run(max_seconds=60, stop_when_caught_up=True)

    n_dup = sum(e.kind == "duplicate" for e in events)
    assert totals["received"] == len(events)
    assert totals["duplicates"] == n_dup > 0
    assert totals["accepted"] == len(events) - n_dup and totals["late"] == totals["dead_letter"] == 0
    originals = pd.DataFrame(
        [(e.sensor_id, e.ts, e.value) for e in events if e.kind != "duplicate"], columns=["sensor_id", "ts", "value"]
    )
    got = window_log(redis_client, sink)
    assert_windows_match(got, originals, cfg.allowed_lateness_ms)
    assert totals["windows"] == len(got)

    # Latest aggregates per sensor, with a TTL.
    latest = redis_client.hgetall(sink.latest_key("sensor-0001"))  # type: ignore[attr-defined]
    last = got[(got["sensor_id"] == "sensor-0001") & (got["kind"] == "tumbling_10s")].iloc[-1]
    assert float(latest[b"t10_mean"]) == pytest.approx(last["mean"]) and int(latest[b"t10_count"]) == last["count"]
    assert 0 < redis_client.ttl(sink.latest_key("sensor-0001")) <= sink.ttl_s  # type: ignore[attr-defined]

    # Injected spikes are found, each with a score and a reason.
    anomalies = redis_client.xrange(sink.anomalies_stream)  # type: ignore[attr-defined]
    assert totals["anomalies"] == len(anomalies) > 0
    spikes = {e.event_id for e in events if e.anomaly and e.kind != "duplicate"}
    found = {f[b"event_id"].decode() for _, f in anomalies}
    assert len(found & spikes) >= 0.8 * len(spikes) and len(found - spikes) <= 0.2 * len(found)
    assert all(b"robust sd" in f[b"reason"] and float(f[b"score"]) >= 4.0 for _, f in anomalies)

    # Raw landing: every received event in Parquet, partitioned by date and hour, statuses reconcile.
    keys = raw.store.list("raw/sensor-readings")
    assert keys and all("/date=2025-11-24/hour=" in k for k in keys)
    landed = pd.concat(pd.read_parquet(raw.store.root / k) for k in keys)  # type: ignore[attr-defined]
    assert len(landed) == len(events)
    assert (landed["status"] == "duplicate").sum() == n_dup

    # Checkpoint offsets equal the committed offsets equal the end of each partition.
    ckpt = {p: orjson.loads(redis_client.hget(sink.checkpoint_key, f"p{p}"))["offset"] for p in (0, 1)}  # type: ignore[attr-defined]
    per_partition = pd.Series([int(e.sensor_id[-1]) % 2 for e in events]).value_counts().to_dict()
    assert ckpt == {0: per_partition[0], 1: per_partition[1]}


def test_late_events_go_to_the_side_output(
    kafka_broker: str, stream_redis: tuple[str, str], redis_client: object
) -> None:
    cfg = new_config(kafka_broker, allowed_lateness_ms=2_000, partitions=1)
    rows = [(1_000, 1.0), (5_000, 3.0), (12_000, 10.0), (12_500, 20.0), (3_000, 100.0), (25_000, 5.0), (2_000, 7.0)]
    events = [SimulatedEvent("sensor-0000", f"e{i}", BASE + t, v) for i, (t, v) in enumerate(rows)]
    from slipway.streaming.broker import ensure_topics

    ensure_topics(kafka_broker, cfg.topics())
    produce(kafka_broker, cfg.topic, events)
    sink = RedisSink(redis_client, stream_redis[1], cfg.group)
    totals = StreamProcessor(cfg, sink).run(max_seconds=60, stop_when_caught_up=True)
    assert (totals["accepted"], totals["late"]) == (5, 2)
    late = read_topic(kafka_broker, cfg.late_topic, 2)
    assert sorted(orjson.loads(m.value())["event_id"] for m in late) == ["e4", "e6"]  # type: ignore[attr-defined]
    assert all(dict(m.headers())["slipway-reason"] == b"late" for m in late)  # type: ignore[attr-defined]
    got = window_log(redis_client, sink)
    first = got[(got["kind"] == "tumbling_10s") & (got["start"] == BASE)]
    assert first[["count", "mean", "max"]].values.tolist() == [[2, 2.0, 3.0]]  # the late 100.0 is not folded in


def test_poison_messages_are_dead_lettered(
    kafka_broker: str, stream_redis: tuple[str, str], redis_client: object
) -> None:
    cfg = new_config(kafka_broker, partitions=1)
    poison = [
        b"{not json",
        b'{"event_id":"p2","sensor_id":"sensor-0000","ts":1764000001000}',
        b'{"event_id":"p3","sensor_id":"sensor-0000","ts":1764000001000,"value":"hot"}',
        b'{"event_id":"p4","sensor_id":"sensor-0000","ts":42,"value":1.0}',
    ]
    good = [make_event(f"g{i}", "sensor-0000", BASE + i * 1000, float(i)) for i in range(30)]
    from slipway.streaming.broker import ensure_topics

    ensure_topics(kafka_broker, cfg.topics())
    produce(kafka_broker, cfg.topic, [(0, v) for v in good[:10] + poison + good[10:]])
    sink = RedisSink(redis_client, stream_redis[1], cfg.group)
    totals = StreamProcessor(cfg, sink).run(max_seconds=60, stop_when_caught_up=True)
    assert (totals["received"], totals["accepted"], totals["dead_letter"]) == (34, 30, 4)
    dlq = [orjson.loads(m.value()) for m in read_topic(kafka_broker, cfg.dlq_topic, 4)]  # type: ignore[attr-defined]
    assert [d["reason"] for d in sorted(dlq, key=lambda d: d["offset"])] == [
        "bad_json",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
    ]
    assert sorted(d["offset"] for d in dlq) == [10, 11, 12, 13]
    assert dlq[0]["topic"] == cfg.topic and all(d["detail"] for d in dlq)
    counters = orjson.loads(redis_client.hget(sink.counters_key, "p0"))  # type: ignore[attr-defined]
    assert counters["dead_letter"] == 4
    # The good readings still form windows: [0 s, 10 s) and [10 s, 20 s) closed (watermark 29 s, lateness 5 s).
    got = window_log(redis_client, sink)
    assert got[got["kind"] == "tumbling_10s"]["count"].tolist() == [10, 10]
