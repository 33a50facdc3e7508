"""Sensor events on the wire, and the checks that send poison messages to the dead-letter topic.

An event is a JSON object keyed on the topic by `sensor_id`:
`{"event_id": "s-00001-42", "sensor_id": "s-00001", "ts": 1764000000000, "value": 71.3}`
with `ts` the event time in epoch milliseconds. Anything else is rejected with a reason, never dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson

_loads = orjson.loads


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


REQUIRED_FIELDS = ("event_id", "sensor_id", "ts", "value")
MIN_TS_MS = 946_684_800_000  # 2000-01-01: earlier event times are clock faults, not data
MAX_FUTURE_MS = 24 * 3600 * 1000  # more than a day ahead of the processor's clock is a clock fault
MAX_ID_LEN = 200

__all__ = [
    "MAX_FUTURE_MS",
    "MIN_TS_MS",
    "Event",
    "ParsedBatch",
    "Rejection",
    "dumps",
    "make_event",
    "parse_batch",
    "parse_event",
]


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    sensor_id: str
    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was dead-lettered: `kind` is one of bad_json, missing_field, wrong_type, bad_timestamp."""

    kind: str
    detail: str


def make_event(event_id: str, sensor_id: str, ts_ms: int, value: float) -> bytes:
    return dumps({"event_id": event_id, "sensor_id": sensor_id, "ts": int(ts_ms), "value": float(value)})


def parse_event(raw: bytes | None, now_ms: int | None = None) -> Event | Rejection:
    """Decode and check one message value. Returns an Event, or a Rejection that says what is wrong."""
    if raw is None:
        return Rejection("bad_json", "empty message value (tombstone)")
    try:
        obj = _loads(raw)
    except ValueError as e:
        return Rejection("bad_json", f"not JSON: {str(e)[:120]}")
    if not isinstance(obj, dict):
        return Rejection("bad_json", f"expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        return Rejection("missing_field", f"missing {missing}")
    event_id, sensor_id, ts, value = obj["event_id"], obj["sensor_id"], obj["ts"], obj["value"]
    for name, v in (("event_id", event_id), ("sensor_id", sensor_id)):
        if not isinstance(v, str) or not v or len(v) > MAX_ID_LEN:
            return Rejection("wrong_type", f"{name} must be a non-empty string of at most {MAX_ID_LEN} chars")
    if not isinstance(ts, int) or isinstance(ts, bool):
        return Rejection("wrong_type", f"ts must be integer epoch milliseconds, got {type(ts).__name__}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection("wrong_type", f"value must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        return Rejection("wrong_type", "value must be finite")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    if ts < MIN_TS_MS or ts > now + MAX_FUTURE_MS:
        return Rejection("bad_timestamp", f"ts {ts} is before 2000-01-01 or more than a day in the future")
    return Event(event_id, sensor_id, ts, value)


@dataclass
class ParsedBatch:
    """Columns of the valid events (with their index in the input) and the rejections (index, why)."""

    index: list[int]
    event_ids: list[str]
    sensor_ids: list[str]
    ts: list[int]
    values: list[float]
    rejected: list[tuple[int, Rejection]]


def _fast_ok(obj: Any, lo: int, hi: int) -> bool:
    """True when `obj` is a well-formed event (the common case); anything else goes through parse_event."""
    if type(obj) is not dict:
        return False
    e, s, t, v = obj.get("event_id"), obj.get("sensor_id"), obj.get("ts"), obj.get("value")
    return (
        type(e) is str
        and type(s) is str
        and 0 < len(e) <= MAX_ID_LEN
        and 0 < len(s) <= MAX_ID_LEN
        and type(t) is int
        and lo <= t <= hi
        and type(v) is float
        and math.isfinite(v)
    )


def parse_batch(raws: list[bytes | None], now_ms: int | None = None) -> ParsedBatch:
    """Parse many message values at once: one orjson call for the whole batch when every value is a braced
    object and the element count matches, else (or for any value that fails the fast check) `parse_event`."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    lo, hi = MIN_TS_MS, now + MAX_FUTURE_MS
    objs: list[Any] | None = None
    if raws and all(r is not None and r[:1] == b"{" and r[-1:] == b"}" for r in raws):
        try:
            objs = _loads(b"[" + b",".join(raws) + b"]")  # type: ignore[arg-type]
        except ValueError:
            objs = None
        if objs is not None and len(objs) != len(raws):
            objs = None
    out = ParsedBatch([], [], [], [], [], [])
    for i, raw in enumerate(raws):
        obj = objs[i] if objs is not None else None
        if obj is not None and _fast_ok(obj, lo, hi):
            out.index.append(i)
            out.event_ids.append(obj["event_id"])
            out.sensor_ids.append(obj["sensor_id"])
            out.ts.append(obj["ts"])
            out.values.append(obj["value"])
            continue
        ev = parse_event(raw, now)
        if isinstance(ev, Rejection):
            out.rejected.append((i, ev))
        else:
            out.index.append(i)
            out.event_ids.append(ev.event_id)
            out.sensor_ids.append(ev.sensor_id)
            out.ts.append(ev.ts)
            out.values.append(ev.value)
    return out
