"""Faults: SIGKILL mid-stream and restart (0 lost, 0 duplicated window results), a broker that starts late."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pandas as pd
import pytest

from slipway.errors import BrokerUnavailableError
from slipway.streaming.broker import TopicSpec, ensure_topics, start_tansu, wait_for_broker
from slipway.streaming.simulator import SimulatorConfig, simulate
from slipway.streaming.sinks import RedisSink
from tests.conftest import free_port
from tests.integration.test_streaming_processor import BASE, assert_windows_match, window_log

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def wait_until(cond, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_sigkill_and_restart_loses_and_duplicates_no_window(
    kafka_broker: str, stream_redis: tuple[str, str], tmp_path: Path
) -> None:
    import redis
    from confluent_kafka import Producer

    tag = uuid.uuid4().hex[:8]
    topic, group = f"readings-{tag}", f"proc-{tag}"
    env = {
        **os.environ,
        "SLIPWAY_HOME": str(tmp_path / "home"),
        "SLIPWAY_KAFKA_BOOTSTRAP": kafka_broker,
        "SLIPWAY_STREAM_TOPIC": topic,
        "SLIPWAY_STREAM_LATE_TOPIC": f"late-{tag}",
        "SLIPWAY_STREAM_DLQ_TOPIC": f"dlq-{tag}",
        "SLIPWAY_STREAM_GROUP": group,
        "SLIPWAY_STREAM_PARTITIONS": "2",
        "SLIPWAY_STREAM_REDIS_URL": stream_redis[0],
        "SLIPWAY_STREAM_REDIS_PREFIX": stream_redis[1],
        "SLIPWAY_STREAM_BATCH_SIZE": "200",
        "SLIPWAY_STREAM_CHECKPOINT_INTERVAL_S": "1.0",
        "SLIPWAY_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "slipway.cli", "stream", "process"]
    client = redis.Redis.from_url(stream_redis[0])
    sink = RedisSink(client, stream_redis[1], group)
    sim = SimulatorConfig(sensors=4, interval_ms=100, start_ms=BASE, out_of_order_rate=0.05, duplicate_rate=0.03)
    events = list(simulate(sim, 5000))
    per_partition = {0: 0, 1: 0}
    for e in events:
        per_partition[int(e.sensor_id[-1]) % 2] += 1
    ensure_topics(kafka_broker, [TopicSpec(topic, 2)])

    def produce() -> None:
        producer = Producer({"bootstrap.servers": kafka_broker, "linger.ms": 5})
        started = time.monotonic()
        for i, e in enumerate(events):
            ahead = started + i / 2500 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            producer.produce(topic, key=e.sensor_id.encode(), value=e.payload(), partition=int(e.sensor_id[-1]) % 2)
            producer.poll(0)
        producer.flush(30)

    def checkpoint() -> dict[str, dict[str, int]]:
        return {k.decode(): orjson.loads(v) for k, v in client.hgetall(sink.checkpoint_key).items()}

    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    producer = threading.Thread(target=produce, daemon=True)
    try:
        producer.start()
        wait_until(lambda: client.xlen(sink.windows_stream) >= 40, 30, "window results before the kill")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        written = client.xlen(sink.windows_stream)
        saved = checkpoint()
        checkpointed = sum(c["counters"]["windows"] for c in saved.values())
        # Window results written after the last checkpoint will be recomputed on restart: the replay path runs.
        assert written > checkpointed
        assert sum(c["offset"] for c in saved.values()) < len(events)

        second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            producer.join(30)
            wait_until(
                lambda: (
                    {k: c["offset"] for k, c in checkpoint().items()} == {f"p{p}": n for p, n in per_partition.items()}
                ),
                60,
                "the restarted processor to reach the end of both partitions",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=20)
        assert second.returncode == 0, err.decode()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()

    final = checkpoint()
    n_dup = sum(e.kind == "duplicate" for e in events)
    totals = {
        k: sum(c["counters"][k] for c in final.values()) for k in ("received", "accepted", "duplicates", "windows")
    }
    # Counters restored from the checkpoint plus the replay: every message counted exactly once.
    assert totals["received"] == len(events)
    assert (totals["accepted"], totals["duplicates"]) == (len(events) - n_dup, n_dup)
    got = window_log(client, sink)
    assert totals["windows"] == len(got)
    originals = pd.DataFrame(
        [(e.sensor_id, e.ts, e.value) for e in events if e.kind != "duplicate"], columns=["sensor_id", "ts", "value"]
    )
    assert_windows_match(got, originals, 5_000)  # 0 lost, 0 duplicated, values equal to the batch recomputation
    client.close()


def test_broker_unavailable_at_start_is_retried_with_backoff() -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        wait_for_broker(bootstrap, timeout_s=1.0)

    result: dict[str, object] = {}

    def connect() -> None:
        started = time.monotonic()
        result["topics"] = ensure_topics(bootstrap, [TopicSpec("late-start", 1)], timeout_s=20)
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=connect)
    thread.start()
    time.sleep(1.5)  # the broker comes up after the client started retrying
    with start_tansu(port):
        thread.join(25)
    assert result["topics"] == ["late-start"]
    assert 1.5 <= float(result["waited"]) < 10  # type: ignore[arg-type]


def test_rebalance_hands_partition_state_over_through_checkpoints(
    kafka_broker: str, stream_redis: tuple[str, str]
) -> None:
    """A second processor joins mid-stream: partitions move with their state; windows stay exact."""
    import redis
    from confluent_kafka import Producer

    from slipway.streaming.processor import ProcessorConfig, StreamProcessor

    tag = uuid.uuid4().hex[:8]
    cfg = ProcessorConfig(
        bootstrap=kafka_broker,
        topic=f"readings-{tag}",
        late_topic=f"late-{tag}",
        dlq_topic=f"dlq-{tag}",
        group=f"proc-{tag}",
        partitions=2,
        batch_size=200,
        checkpoint_interval_s=0.5,
        broker_timeout_s=10,
    )
    ensure_topics(kafka_broker, cfg.topics())
    sim = SimulatorConfig(sensors=4, interval_ms=100, start_ms=BASE, out_of_order_rate=0.05, duplicate_rate=0.02)
    events = list(simulate(sim, 3000))
    clients = [redis.Redis.from_url(stream_redis[0]) for _ in range(2)]
    sinks = [RedisSink(c, stream_redis[1], cfg.group) for c in clients]
    first, second = StreamProcessor(cfg, sinks[0]), StreamProcessor(cfg, sinks[1])
    runners = [threading.Thread(target=p.run, kwargs={"max_seconds": 90}) for p in (first, second)]

    def produce() -> None:
        producer = Producer({"bootstrap.servers": kafka_broker, "linger.ms": 5})
        started = time.monotonic()
        for i, e in enumerate(events):
            ahead = started + i / 1500 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            producer.produce(cfg.topic, key=e.sensor_id.encode(), value=e.payload(), partition=int(e.sensor_id[-1]) % 2)
            producer.poll(0)
        producer.flush(30)

    producer = threading.Thread(target=produce)
    try:
        runners[0].start()
        producer.start()
        wait_until(lambda: clients[0].xlen(sinks[0].windows_stream) >= 20, 30, "windows from the first processor")
        runners[1].start()
        wait_until(lambda: len(second.assigned) == 1 and len(first.assigned) == 1, 30, "the rebalance")
        producer.join(30)
        per_partition = {0: 0, 1: 0}
        for e in events:
            per_partition[int(e.sensor_id[-1]) % 2] += 1

        def offsets() -> dict[str, int]:
            return {
                k.decode(): orjson.loads(v)["offset"] for k, v in clients[0].hgetall(sinks[0].checkpoint_key).items()
            }

        wait_until(lambda: offsets() == {"p0": per_partition[0], "p1": per_partition[1]}, 60, "both partitions done")
    finally:
        first.stop()
        second.stop()
        for r in runners:
            if r.is_alive():
                r.join(30)
    got = window_log(clients[0], sinks[0])
    originals = pd.DataFrame(
        [(e.sensor_id, e.ts, e.value) for e in events if e.kind != "duplicate"], columns=["sensor_id", "ts", "value"]
    )
    assert_windows_match(got, originals, 5_000)
    counters = [orjson.loads(v) for v in clients[0].hgetall(sinks[0].counters_key).values()]
    assert sum(c["received"] for c in counters) == len(events)
    assert sum(c["duplicates"] for c in counters) == sum(e.kind == "duplicate" for e in events)
    for c in clients:
        c.close()
