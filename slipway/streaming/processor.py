"""The stream processor: consume sensor readings, window them by event time, detect anomalies, write the sinks.

Built directly on confluent-kafka (librdkafka) rather than a stream framework. quixstreams, the obvious Python
choice, cannot be installed beside kserve (their pydantic pins conflict), and three things this job needs are
easier to get right by hand anyway:
- per-partition watermarks: one global watermark marks most of a multi-partition backlog late on replay;
- batch consumption (`consume(num_messages=...)`) with vectorised window arithmetic, for throughput;
- idempotent sinks plus a state checkpoint, for exactly-once window results across crashes.

Delivery: messages are keyed by `sensor_id`, so a sensor's readings stay in one partition. Every
`checkpoint_interval_s` the processor (1) flushes the late and dead-letter producers, (2) lands raw Parquet, (3)
pushes Feast features, (4) writes each partition's full state (open panes, watermark, detector windows, counters)
with its next offset to Redis in one transaction, and only then (5) commits those offsets to Kafka. On restart or
reassignment a partition resumes from its Redis checkpoint: state restored, consumer seeked to the checkpoint's
offset. Processing is deterministic per partition, so the replayed messages rebuild the same windows and anomalies,
and the guarded writes in Redis drop what was already written: 0 lost and 0 duplicated window results after a
SIGKILL. Without a checkpoint a partition starts from its committed offset (or the earliest) with empty state.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from slipway.errors import BrokerUnavailableError, StreamStateError
from slipway.streaming.broker import CONSUMER_DEFAULTS, TopicSpec, ensure_topics
from slipway.streaming.detector import Anomaly, DetectorConfig, SensorDetectors
from slipway.streaming.events import Rejection, dumps, parse_batch
from slipway.streaming.sinks import FeastSensorPusher, RawLanding, RedisSink
from slipway.streaming.windows import ACCEPTED, DUPLICATE, LATE, WindowEngine, WindowResult, hash_ids

logger = logging.getLogger(__name__)

__all__ = ["COUNTER_NAMES", "ProcessorConfig", "StreamProcessor"]

COUNTER_NAMES = ("received", "accepted", "duplicates", "late", "dead_letter", "windows", "anomalies")
STATE_VERSION = 1


@dataclass
class ProcessorConfig:
    bootstrap: str
    topic: str = "sensor-readings"
    late_topic: str = "sensor-readings-late"
    dlq_topic: str = "sensor-readings-dlq"
    group: str = "slipway-stream-processor"
    partitions: int = 3
    batch_size: int = 5000
    poll_timeout_s: float = 0.05
    checkpoint_interval_s: float = 2.0
    pane_ms: int = 10_000
    hop_window_ms: int = 60_000
    allowed_lateness_ms: int = 5_000
    broker_timeout_s: float = 30.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    client_options: dict[str, Any] = field(default_factory=dict)  # librdkafka security settings
    heartbeat_file: Path | None = None  # touched every few seconds while the loop runs (liveness probe)

    def topics(self) -> list[TopicSpec]:
        return [
            TopicSpec(self.topic, self.partitions),
            TopicSpec(self.late_topic, self.partitions),
            TopicSpec(self.dlq_topic, 1),
        ]


class StreamProcessor:
    def __init__(
        self,
        config: ProcessorConfig,
        sink: RedisSink,
        raw: RawLanding | None = None,
        feast: FeastSensorPusher | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.raw = raw
        self.feast = feast
        self.engine = WindowEngine(config.pane_ms, config.hop_window_ms, config.allowed_lateness_ms)
        self.detectors = SensorDetectors(config.detector)
        self.sensor_partition: dict[str, int] = {}
        self.positions: dict[int, int] = {}  # next offset to read, per partition
        self.counters: dict[int, dict[str, int]] = {}
        self.assigned: set[int] = set()
        self._dirty: set[int] = set()
        self._feast_pending: list[WindowResult] = []
        self._stop = threading.Event()
        self.consumer: Any = None
        self.producer: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(COUNTER_NAMES, 0)
        for c in self.counters.values():
            for k in COUNTER_NAMES:
                out[k] += c[k]
        return out

    def _connect(self) -> None:
        from confluent_kafka import Consumer, Producer

        opts = self.config.client_options
        ensure_topics(self.config.bootstrap, self.config.topics(), self.config.broker_timeout_s, opts)
        self.producer = Producer({"bootstrap.servers": self.config.bootstrap, "linger.ms": 5, "acks": "all", **opts})
        self.consumer = Consumer(
            {"bootstrap.servers": self.config.bootstrap, "group.id": self.config.group, **CONSUMER_DEFAULTS, **opts}
        )
        self.consumer.subscribe([self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def run(self, max_seconds: float | None = None, stop_when_caught_up: bool = False) -> dict[str, int]:
        """Process until stopped (SIGTERM/SIGINT, `stop()`), `max_seconds`, or, if asked, the end of the backlog."""
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
        try:
            return self._run(max_seconds, stop_when_caught_up)
        finally:
            for sig, handler in previous.items():  # the handlers held this processor (and its clients) alive
                signal.signal(sig, handler)
            if self.producer is not None:
                self.producer.flush(10)
                self.producer = None  # its broker connections close with it, not at interpreter exit

    def _run(self, max_seconds: float | None, stop_when_caught_up: bool) -> dict[str, int]:
        self._connect()
        started = last_checkpoint = time.monotonic()
        beat = 0.0
        try:
            while not self._stop.is_set():
                if self.config.heartbeat_file is not None and time.monotonic() - beat > 5:
                    self.config.heartbeat_file.touch()
                    beat = time.monotonic()
                msgs = self.consumer.consume(self.config.batch_size, self.config.poll_timeout_s)
                if msgs:
                    self.process_messages(msgs)
                elif stop_when_caught_up and self._caught_up():
                    break
                now = time.monotonic()
                if now - last_checkpoint >= self.config.checkpoint_interval_s:
                    self.checkpoint()
                    last_checkpoint = now
                if max_seconds is not None and now - started >= max_seconds:
                    break
                self.producer.poll(0)
            self.checkpoint()
            totals = self.totals()  # before close(): closing revokes the partitions and drops their state
        finally:
            self.consumer.close()
        return totals

    def _caught_up(self) -> bool:
        if not self.assigned:
            return False
        from confluent_kafka import TopicPartition

        for p in self.assigned:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(self.config.topic, p), timeout=5)
            if self.positions.get(p, 0) < high:
                return False
        return True

    # -- rebalancing ---------------------------------------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            data = self.sink.load_checkpoint(tp.partition)
            if data is not None:
                self._restore(tp.partition, data)
                tp.offset = self.positions[tp.partition]
            else:
                self.counters[tp.partition] = dict.fromkeys(COUNTER_NAMES, 0)
            self.assigned.add(tp.partition)
        logger.info("assigned %s", [(tp.partition, tp.offset) for tp in partitions])
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = [tp.partition for tp in partitions]
        self.checkpoint(revoked)
        for p in revoked:
            self.engine.drop(p)
            sensors = [s for s, sp in self.sensor_partition.items() if sp == p]
            self.detectors.drop(sensors)
            for s in sensors:
                del self.sensor_partition[s]
            self.positions.pop(p, None)
            self.counters.pop(p, None)
            self._dirty.discard(p)
            self.assigned.discard(p)
        logger.info("revoked %s", revoked)

    def _restore(self, partition: int, data: dict[str, Any]) -> None:
        if data.get("version") != STATE_VERSION or data.get("topic") != self.config.topic:
            raise StreamStateError(
                f"checkpoint of partition {partition} is for {data.get('topic')!r} v{data.get('version')}, not "
                f"{self.config.topic!r} v{STATE_VERSION}; use another SLIPWAY_STREAM_REDIS_PREFIX or delete it"
            )
        self.engine.restore(partition, data["engine"])
        self.detectors.restore(data["detectors"])
        for sensor in data["detectors"]:
            self.sensor_partition[sensor] = partition
        self.positions[partition] = int(data["offset"])
        self.counters[partition] = {k: int(data["counters"].get(k, 0)) for k in COUNTER_NAMES}

    # -- the work ------------------------------------------------------------------------------------------------
    def process_messages(self, msgs: Sequence[Any]) -> tuple[list[WindowResult], list[Anomaly]]:
        from confluent_kafka import KafkaError

        good = []
        for m in msgs:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                logger.warning("consume error: %s", err)
        if not good:
            return [], []
        all_parts = [m.partition() for m in good]
        all_offsets = [m.offset() for m in good]
        raws = [m.value() for m in good]
        for p, off in zip(all_parts, all_offsets, strict=True):
            self.positions[p] = off + 1  # offsets rise within a partition, so the last one wins
        for p in set(all_parts):
            self._dirty.add(p)
            self.counters.setdefault(p, dict.fromkeys(COUNTER_NAMES, 0))
        for p in all_parts:
            self.counters[p]["received"] += 1
        batch = parse_batch(raws)
        for i, why in batch.rejected:
            self._dead_letter(good[i], why)
            self.counters[all_parts[i]]["dead_letter"] += 1
        if not batch.index:
            return [], []
        parts = [all_parts[i] for i in batch.index]
        offsets = [all_offsets[i] for i in batch.index]
        ids, sensors, stamps, values = batch.event_ids, batch.sensor_ids, batch.ts, batch.values
        outcome = self.engine.process(parts, sensors, hash_ids(ids), stamps, values)
        status = outcome.status
        part_arr = np.asarray(parts)
        for p in set(parts):
            mine = part_arr == p
            counters = self.counters[p]
            counters["accepted"] += int(np.count_nonzero(mine & (status == ACCEPTED)))
            counters["duplicates"] += int(np.count_nonzero(mine & (status == DUPLICATE)))
            counters["late"] += int(np.count_nonzero(mine & (status == LATE)))
        accepted = np.flatnonzero(status == ACCEPTED).tolist()
        self.sensor_partition.update(zip([sensors[i] for i in accepted], [parts[i] for i in accepted], strict=True))
        anomalies: list[Anomaly] = []
        observe = self.detectors.observe
        for i in accepted:
            anomaly = observe(sensors[i], ids[i], stamps[i], values[i])
            if anomaly is not None:
                anomalies.append(anomaly)
                self.counters[parts[i]]["anomalies"] += 1
        for i in np.flatnonzero(status == LATE).tolist():
            self._send_late(parts[i], offsets[i], sensors[i], raws[batch.index[i]])
        for w in outcome.windows:
            self.counters[self.sensor_partition[w.sensor_id]]["windows"] += 1
        self.sink.write(outcome.windows, anomalies)
        if self.raw is not None:
            self.raw.add(
                pd.DataFrame(
                    {
                        "partition": parts,
                        "offset": offsets,
                        "event_id": ids,
                        "sensor_id": sensors,
                        "ts": stamps,
                        "value": values,
                        "status": pd.Categorical.from_codes(outcome.status, ["accepted", "duplicate", "late"]),
                    }
                )
            )
        if self.feast is not None:
            self._feast_pending.extend(outcome.windows)
        return outcome.windows, anomalies

    def _dead_letter(self, msg: Any, why: Rejection) -> None:
        raw = msg.value() or b""
        payload = {
            "reason": why.kind,
            "detail": why.detail,
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": (msg.key() or b"").decode("utf-8", "replace"),
            "value": raw[:65536].decode("utf-8", "replace"),
        }
        key = f"{msg.topic()}:{msg.partition()}:{msg.offset()}"
        self._produce(self.config.dlq_topic, key, dumps(payload), [("slipway-reason", why.kind.encode())])

    def _send_late(self, partition: int, offset: int, sensor: str, raw: bytes) -> None:
        headers = [
            ("slipway-reason", b"late"),
            ("slipway-source", f"{self.config.topic}:{partition}:{offset}".encode()),
            ("slipway-watermark", str(self.engine.watermark(partition)).encode()),
        ]
        self._produce(self.config.late_topic, sensor, raw, headers)

    def _produce(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.1)

    def checkpoint(self, partitions: Sequence[int] | None = None) -> None:
        """Make every side output and sink durable, store state with offsets, then commit the offsets."""
        parts = [p for p in (partitions if partitions is not None else list(self._dirty)) if p in self.positions]
        if not parts:
            return
        remaining = self.producer.flush(30)
        if remaining:
            raise BrokerUnavailableError(f"{remaining} late/dead-letter messages not delivered in 30 s; not committing")
        if self.raw is not None:
            self.raw.flush()
        if self.feast is not None and self._feast_pending:
            try:
                self.feast.push(self._feast_pending)
            except Exception:  # the online store is a cache: Redis holds the windows, so log and go on
                logger.exception("feast push failed; online features are stale until the next push")
            self._feast_pending = []
        blobs: dict[int, bytes] = {}
        counters: dict[int, bytes] = {}
        for p in parts:
            sensors = sorted(s for s, sp in self.sensor_partition.items() if sp == p)
            blobs[p] = orjson.dumps(
                {
                    "version": STATE_VERSION,
                    "topic": self.config.topic,
                    "offset": self.positions[p],
                    "engine": self.engine.snapshot(p),
                    "detectors": self.detectors.snapshot(sensors),
                    "counters": self.counters[p],
                    "saved_ms": int(time.time() * 1000),
                }
            )
            counters[p] = orjson.dumps(self.counters[p])
        self.sink.write([], [], checkpoint=blobs, counters=counters)
        from confluent_kafka import TopicPartition

        self.consumer.commit(
            offsets=[TopicPartition(self.config.topic, p, self.positions[p]) for p in parts], asynchronous=False
        )
        self._dirty.difference_update(parts)
