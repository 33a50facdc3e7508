"""Sensor simulator: seasonal readings with noise and drift, injected anomalies, and the disorder real links cause.

`simulate()` yields events in send order. Each sensor follows `base + daily sine + slow drift + noise`; with the
configured probabilities an event is replaced by a spike (an anomaly, recorded in `SimulatedEvent.anomaly`),
sent out of order (delayed within the allowed lateness), sent late (delayed beyond it) or sent twice. `replay_csv`
plays a CSV series (e.g. NAB's machine temperature) as one sensor.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slipway.streaming.events import make_event

__all__ = ["SimulatedEvent", "SimulatorConfig", "produce_events", "replay_csv", "simulate"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class SimulatorConfig:
    sensors: int = 10
    interval_ms: int = 1000  # event-time spacing of one sensor's readings
    start_ms: int = 1_764_000_000_000  # 2025-11-24T16:00Z
    seed: int = 42
    base: float = 60.0
    daily_amplitude: float = 8.0
    drift_per_day: float = 1.5
    noise_sd: float = 0.5
    anomaly_rate: float = 0.0
    anomaly_magnitude: float = 12.0  # spike size in units of noise_sd
    out_of_order_rate: float = 0.0
    out_of_order_max_ms: int = 3000  # keep below the processor's allowed lateness
    late_rate: float = 0.0
    late_delay_ms: int = 30_000  # well beyond the allowed lateness
    duplicate_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    sensor_id: str
    event_id: str
    ts: int
    value: float
    anomaly: bool = False
    kind: str = "normal"  # normal, out_of_order, late, duplicate

    def payload(self) -> bytes:
        return make_event(self.event_id, self.sensor_id, self.ts, self.value)


def sensor_name(i: int) -> str:
    return f"sensor-{i:04d}"


def simulate(config: SimulatorConfig, n_per_sensor: int) -> Iterator[SimulatedEvent]:
    """Events for `config.sensors` sensors, `n_per_sensor` readings each, in the order they are sent.

    The send order is event time plus the delay each event suffers; an event is sent when the clock of the fastest
    sensor passes its send time, so disorder is bounded and reproducible for a seed.
    """
    rng = np.random.default_rng(config.seed)
    phases = rng.uniform(0, 2 * math.pi, config.sensors)
    offsets = rng.normal(0, 5, config.sensors)
    pending: list[tuple[int, int, SimulatedEvent]] = []  # (send time, tie-break, event)
    seq = 0
    for k in range(n_per_sensor):
        ts_k = config.start_ms + k * config.interval_ms
        u = rng.random((config.sensors, 4))
        noise = rng.normal(0, config.noise_sd, config.sensors)
        for i in range(config.sensors):
            ts = ts_k
            days = (ts - config.start_ms) / DAY_MS
            value = (
                config.base
                + offsets[i]
                + config.daily_amplitude * math.sin(2 * math.pi * (ts % DAY_MS) / DAY_MS + phases[i])
                + config.drift_per_day * days
                + noise[i]
            )
            anomaly = bool(u[i, 0] < config.anomaly_rate)
            if anomaly:
                value += config.anomaly_magnitude * config.noise_sd * (1 if u[i, 1] < 0.5 else -1)
            sensor = sensor_name(i)
            ev = SimulatedEvent(sensor, f"{sensor}-{k}", ts, round(value, 6), anomaly)
            delay = 0
            if u[i, 2] < config.late_rate:
                delay, ev = config.late_delay_ms, _with_kind(ev, "late")
            elif u[i, 2] < config.late_rate + config.out_of_order_rate:
                delay = 1 + int(u[i, 3] * config.out_of_order_max_ms)
                ev = _with_kind(ev, "out_of_order")
            heapq.heappush(pending, (ts + delay, seq, ev))
            seq += 1
            if u[i, 3] < config.duplicate_rate:
                heapq.heappush(pending, (ts + delay + 1, seq, _with_kind(ev, "duplicate")))
                seq += 1
        while pending and pending[0][0] <= ts_k:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def _with_kind(ev: SimulatedEvent, kind: str) -> SimulatedEvent:
    return SimulatedEvent(ev.sensor_id, ev.event_id, ev.ts, ev.value, ev.anomaly, kind)


def replay_csv(
    path: str | Path, sensor_id: str, time_column: str = "timestamp", value_column: str = "value"
) -> Iterator[SimulatedEvent]:
    """Play a CSV series as one sensor, in file order, with its own timestamps as event times."""
    frame = pd.read_csv(path, usecols=[time_column, value_column])
    stamps = pd.to_datetime(frame[time_column], utc=True).astype("int64") // 1_000_000
    for i, (ts, value) in enumerate(zip(stamps.tolist(), frame[value_column].tolist(), strict=True)):
        yield SimulatedEvent(sensor_id, f"{sensor_id}-{i}", int(ts), float(value))


def produce_events(
    producer: Any,
    topic: str,
    events: Iterator[SimulatedEvent],
    rate: float | None = None,
    live: bool = False,
    max_seconds: float | None = None,
) -> int:
    """Send events keyed by sensor_id at `rate` events/s (None: as fast as possible). Returns the count sent.

    `live=True` restamps each event with the wall clock at send time, so latency can be measured from `ts`.
    """
    sent = 0
    started = time.monotonic()
    for ev in events:
        if rate:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        payload = ev.payload()
        if live:
            payload = make_event(ev.event_id, ev.sensor_id, int(time.time() * 1000), ev.value)
        while True:
            try:
                producer.produce(topic, key=ev.sensor_id.encode(), value=payload)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
    producer.flush(30)
    return sent
