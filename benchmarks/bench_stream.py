"""Stream processor throughput and alert latency against raw confluent-kafka produce/consume, in the same run.

    .venv/bin/python benchmarks/bench_stream.py --events 400000 --latency-seconds 20

Starts its own tansu broker on loopback and uses Redis db 14 under a random prefix (deleted afterwards).
1. Throughput: N simulated readings (1,000 sensors at 10 Hz, 3 partitions) are produced as fast as possible (raw produce
   rate), read back by a bare consumer that only touches each value (raw consume rate), then processed by the
   StreamProcessor with every sink but Feast on (windows, detector, Redis writes, raw Parquet landing, checkpoints
   every 2 s). Rates are events/s from the first message to the last, excluding the consumer-group join; the
   processor's CPU seconds (all threads) are reported beside its wall time, because the machine may be shared.
2. Latency (on a fresh broker): readings stamped with the wall clock at send time are produced at 5k/s with injected
   spikes; the processor runs as its own process (`slipway stream process`); alert latency is the Redis stream
   entry time of each anomaly minus the event's timestamp. The peer is the raw broker path: a bare consumer
   process on the same topic measures receive time minus the event timestamp.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.netutil import free_port  # noqa: E402
from slipway.streaming.broker import CONSUMER_DEFAULTS, TopicSpec, ensure_topics, start_tansu  # noqa: E402
from slipway.streaming.simulator import SimulatorConfig, produce_events, simulate  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payloads(n: int) -> list[tuple[bytes, bytes]]:
    # 1,000 sensors at 10 Hz: a 10 s pane holds ~100 readings, as in a live stream of this rate.
    sensors = 1000
    cfg = SimulatorConfig(sensors=sensors, interval_ms=100, out_of_order_rate=0.01, duplicate_rate=0.005)
    out = [(e.sensor_id.encode(), e.payload()) for e in simulate(cfg, n // sensors)]
    return out[:n]


def raw_produce(bootstrap: str, topic: str, data: list[tuple[bytes, bytes]]) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10000})
    started = time.perf_counter()
    for key, value in data:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(60)
    return len(data) / (time.perf_counter() - started)


def raw_consume(bootstrap: str, topic: str, n: int, partitions: int) -> float:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex[:6]}", **CONSUMER_DEFAULTS}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, nbytes, started = 0, 0, None
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        msgs = consumer.consume(5000, 0.5)
        if msgs and started is None:
            started = time.perf_counter()
        for m in msgs:
            if m.error() is None:
                nbytes += len(m.value())
                got += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    assert got == n, f"raw consumer read {got} of {n}"
    return n / elapsed


def processor_throughput(bootstrap: str, topic: str, n: int, partitions: int, prefix: str) -> dict[str, float]:
    import redis

    from slipway.storage import LocalArtifactStore
    from slipway.streaming.processor import ProcessorConfig, StreamProcessor
    from slipway.streaming.sinks import RawLanding, RedisSink

    tag = uuid.uuid4().hex[:6]
    cfg = ProcessorConfig(
        bootstrap=bootstrap,
        topic=topic,
        late_topic=f"late-{tag}",
        dlq_topic=f"dlq-{tag}",
        group=f"bench-{tag}",
        partitions=partitions,
        batch_size=10000,
        checkpoint_interval_s=2.0,
    )
    client = redis.Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory() as tmp:
        proc = StreamProcessor(cfg, RedisSink(client, prefix, cfg.group), raw=RawLanding(LocalArtifactStore(tmp)))
        first: list[float] = []
        busy = [0.0, 0.0, 0.0]  # wall and CPU seconds inside process_messages; wall seconds in Redis writes
        inner = proc.process_messages

        def timed(msgs):  # type: ignore[no-untyped-def]
            if not first:
                first.append(time.perf_counter())
                first.append(cpu_seconds())
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return inner(msgs)
            finally:
                busy[0] += time.perf_counter() - t0
                busy[1] += time.thread_time() - c0

        proc.process_messages = timed  # type: ignore[method-assign]
        sink_write = proc.sink.write

        def timed_write(*a, **kw):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return sink_write(*a, **kw)
            finally:
                busy[2] += time.perf_counter() - t0

        proc.sink.write = timed_write  # type: ignore[method-assign]
        totals = proc.run(max_seconds=300, stop_when_caught_up=True)
        elapsed = time.perf_counter() - first[0]
        cpu = cpu_seconds() - first[1]
        landed = len(list(Path(tmp).rglob("*.parquet")))
    assert totals["received"] == n, totals
    return {
        "events_per_s": n / elapsed,
        "seconds": elapsed,
        "cpu_seconds": cpu,  # this process, all threads (librdkafka's included)
        "cpu_us_per_event": cpu / n * 1e6,
        "process_wall_s": busy[0],
        "process_cpu_s": busy[1],
        "redis_write_wall_s": busy[2],
        "windows": totals["windows"],
        "duplicates": totals["duplicates"],
        "late": totals["late"],
        "anomalies": totals["anomalies"],
        "parquet_files": landed,
    }


def stage_costs(bootstrap: str, topic: str, n: int, partitions: int) -> dict[str, float]:
    """CPU µs a reading of each processing stage without sinks, on the same backlog (process-wide CPU time)."""
    from confluent_kafka import Consumer, TopicPartition

    from slipway.streaming.detector import SensorDetectors
    from slipway.streaming.events import parse_batch
    from slipway.streaming.windows import WindowEngine, hash_ids

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"stages-{uuid.uuid4().hex[:6]}", **CONSUMER_DEFAULTS}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    spent = dict.fromkeys(("consume", "parse", "hash", "windows", "detector"), 0.0)
    engine, detectors, got = WindowEngine(), SensorDetectors(), 0
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        t = time.process_time()
        msgs = [m for m in consumer.consume(10000, 0.5) if m.error() is None]
        spent["consume"] += time.process_time() - t
        t = time.process_time()
        parts = [m.partition() for m in msgs]
        batch = parse_batch([m.value() for m in msgs])
        spent["parse"] += time.process_time() - t
        t = time.process_time()
        hashes = hash_ids(batch.event_ids)
        spent["hash"] += time.process_time() - t
        t = time.process_time()
        out = engine.process([parts[i] for i in batch.index], batch.sensor_ids, hashes, batch.ts, batch.values)
        spent["windows"] += time.process_time() - t
        t = time.process_time()
        for i in np.flatnonzero(out.status == 0).tolist():
            detectors.observe(batch.sensor_ids[i], batch.event_ids[i], batch.ts[i], batch.values[i])
        spent["detector"] += time.process_time() - t
        got += len(msgs)
    consumer.close()
    return {k: v / max(got, 1) * 1e6 for k, v in spent.items()}


def raw_latency_consumer(bootstrap: str, topic: str, seconds: float, out: str) -> None:
    """Child process: receive time minus event timestamp per message, until `out`.stop exists (or `seconds`)."""
    import orjson
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex[:6]}", **CONSUMER_DEFAULTS}
    )
    ready = Path(out + ".ready")
    consumer.subscribe([topic], on_assign=lambda c, ps: ready.touch())
    lat: list[tuple[int, int]] = []
    deadline = time.monotonic() + seconds
    stop = Path(out + ".stop")
    while time.monotonic() < deadline and not stop.exists():
        msgs = consumer.consume(1000, 0.05)
        now = int(time.time() * 1000)
        for m in msgs:
            if m.error() is None and m.key() != b"warmup":
                ts = orjson.loads(m.value())["ts"]
                lat.append((ts, now - ts))
    consumer.close()
    Path(out).write_text(json.dumps(lat))


def latency(bootstrap: str, rate: float, seconds: float, prefix: str) -> dict[str, float]:
    import redis
    from confluent_kafka import Producer

    from slipway.streaming.events import make_event

    tag = uuid.uuid4().hex[:6]
    topic, group = f"live-{tag}", f"live-{tag}"
    ensure_topics(bootstrap, [TopicSpec(topic, 3)])
    env = {
        **os.environ,
        "SLIPWAY_KAFKA_BOOTSTRAP": bootstrap,
        "SLIPWAY_STREAM_TOPIC": topic,
        "SLIPWAY_STREAM_LATE_TOPIC": f"late-{tag}",
        "SLIPWAY_STREAM_DLQ_TOPIC": f"dlq-{tag}",
        "SLIPWAY_STREAM_GROUP": group,
        "SLIPWAY_STREAM_REDIS_URL": REDIS_URL,
        "SLIPWAY_STREAM_REDIS_PREFIX": prefix,
        "SLIPWAY_STREAM_DETECTOR_COOLDOWN": "20",
        "SLIPWAY_STREAM_RAW_LANDING": "false",
        "SLIPWAY_LOG_LEVEL": "WARNING",
    }
    client = redis.Redis.from_url(REDIS_URL)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "raw.json")
        env["SLIPWAY_HOME"] = tmp
        proc = subprocess.Popen(
            [sys.executable, "-m", "slipway.cli", "stream", "process"], env=env, stdout=subprocess.DEVNULL
        )
        peer = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                "raw-latency",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--seconds",
                str(seconds + 90),
                "--out",
                out,
            ]
        )
        # Warm up until both consumers are assigned and the processor has checkpointed a warm-up reading.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            now = int(time.time() * 1000)
            for p in range(3):
                producer.produce(topic, key=b"warmup", value=make_event(f"w{now}{p}", "warmup", now, 0.0), partition=p)
            producer.flush(5)
            if client.exists(f"{prefix}:checkpoint:{group}") and Path(out + ".ready").exists():
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("processor or raw consumer did not start within 90 s")
        sim = SimulatorConfig(sensors=50, interval_ms=10, anomaly_rate=0.004, seed=7)
        started_ms = int(time.time() * 1000)
        sent = produce_events(producer, topic, simulate(sim, 10**6), rate=rate, live=True, max_seconds=seconds)
        time.sleep(2)
        proc.terminate()
        proc.wait(30)
        Path(out + ".stop").touch()
        peer.wait(60)
        raw_pairs = np.array(json.loads(Path(out).read_text()), dtype=float).reshape(-1, 2)
        print(
            "raw latency by second:",
            [
                (int(sec), float(np.percentile(raw_pairs[(raw_pairs[:, 0] - started_ms) // 1000 == sec][:, 1], 99)))
                for sec in range(int(seconds))
                if ((raw_pairs[:, 0] - started_ms) // 1000 == sec).any()
            ],
            file=sys.stderr,
        )
        raw = raw_pairs[:, 1]
    alerts = []
    for entry_id, fields in client.xrange(f"{prefix}:anomalies"):
        ts = int(fields[b"ts"])
        if ts >= started_ms + 1000 and fields[b"sensor_id"] != b"warmup":  # skip the detectors' warm-up
            alerts.append(int(entry_id.split(b"-")[0]) - ts)
    lat = np.array(alerts, dtype=float)
    return {
        "rate_sent": sent / seconds,
        "alerts": len(lat),
        "alert_p50_ms": float(np.percentile(lat, 50)),
        "alert_p99_ms": float(np.percentile(lat, 99)),
        "alert_max_ms": float(lat.max()),
        "raw_messages": len(raw),
        "raw_p50_ms": float(np.percentile(raw, 50)),
        "raw_p99_ms": float(np.percentile(raw, 99)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--latency-rate", type=float, default=5000)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--role", default="bench")
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.role == "raw-latency":
        raw_latency_consumer(args.bootstrap, args.topic, args.seconds, args.out)
        return
    import redis

    prefix = f"slipway-bench-stream-{uuid.uuid4().hex[:8]}"
    port = free_port()
    result: dict[str, object] = {"events": args.events, "cores": os.cpu_count()}
    try:
        with start_tansu(port):
            bootstrap = f"127.0.0.1:{port}"
            topic = f"bench-{uuid.uuid4().hex[:6]}"
            ensure_topics(bootstrap, [TopicSpec(topic, args.partitions)])
            data = payloads(args.events)
            result["raw_produce_per_s"] = raw_produce(bootstrap, topic, data)
            del data
            result["raw_consume_per_s"] = raw_consume(bootstrap, topic, args.events, args.partitions)
            result["processor"] = processor_throughput(bootstrap, topic, args.events, args.partitions, prefix)
            ratio = result["processor"]["events_per_s"] / result["raw_consume_per_s"]  # type: ignore[index, operator]
            result["processor_vs_raw_consume"] = ratio
            result["stages_cpu_us_per_event"] = stage_costs(bootstrap, topic, args.events, args.partitions)
        if args.latency_seconds > 0:
            # A fresh broker: tansu's memory engine fetches more slowly while it holds the throughput backlog.
            port = free_port()
            with start_tansu(port):
                live = latency(f"127.0.0.1:{port}", args.latency_rate, args.latency_seconds, prefix + "-live")
            result["latency"] = live
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
