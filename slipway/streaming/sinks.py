"""Sinks of the stream processor: Redis (live aggregates, window log, anomalies, checkpoints), raw Parquet landing
in the artifact store, and the Feast online store.

Redis layout under a prefix P (all writes idempotent, so replaying offsets after a crash is harmless):
- `P:latest:<sensor>`: hash of the sensor's latest 10 s and 1 min aggregates, with a TTL.
- `P:windows`: stream of every closed window; `P:anomalies`: stream of anomalies. Each entry is appended by a Lua
  script only if its guard key (`P:seen:<window or event key>`, SET NX with a TTL) is new.
- `P:checkpoint:<group>`: hash, one field per partition: the processor's state and next offset (JSON).
- `P:counters:<group>`: hash, one field per partition: absolute counters (JSON), written with the checkpoint.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from slipway.errors import FeatureStoreError, StreamStateError
from slipway.storage import ArtifactStore
from slipway.streaming.detector import Anomaly
from slipway.streaming.events import dumps
from slipway.streaming.windows import HOPPING, TUMBLING, WindowResult

logger = logging.getLogger(__name__)

__all__ = ["FeastSensorPusher", "RawLanding", "RedisSink", "latest_features"]

# KEYS: guard, stream. ARGV: guard ttl (s), stream maxlen, then field/value pairs.
_GUARDED_XADD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[2]), '*', unpack(ARGV, 3))
end
return false
"""

_PREFIXES = {TUMBLING: "t10", HOPPING: "h1m"}
_HOUR_MS = 3_600_000


class RedisSink:
    def __init__(self, client: Any, prefix: str, group: str, ttl_s: int = 3600, stream_maxlen: int = 100_000) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group
        self.ttl_s = ttl_s
        self.stream_maxlen = stream_maxlen
        self._xadd = client.register_script(_GUARDED_XADD)

    @property
    def windows_stream(self) -> str:
        return f"{self.prefix}:windows"

    @property
    def anomalies_stream(self) -> str:
        return f"{self.prefix}:anomalies"

    @property
    def checkpoint_key(self) -> str:
        return f"{self.prefix}:checkpoint:{self.group}"

    @property
    def counters_key(self) -> str:
        return f"{self.prefix}:counters:{self.group}"

    def latest_key(self, sensor_id: str) -> str:
        return f"{self.prefix}:latest:{sensor_id}"

    def _append(self, pipe: Any, guard: str, stream: str, fields: dict[str, Any]) -> None:
        flat: list[Any] = [self.ttl_s, self.stream_maxlen]
        for k, v in fields.items():
            flat.extend((k, v))
        self._xadd(keys=[f"{self.prefix}:seen:{guard}", stream], args=flat, client=pipe)

    def write(
        self,
        windows: Sequence[WindowResult],
        anomalies: Sequence[Anomaly],
        checkpoint: dict[int, bytes] | None = None,
        counters: dict[int, bytes] | None = None,
    ) -> None:
        """Write results (and optionally a checkpoint) in one MULTI/EXEC transaction."""
        if not windows and not anomalies and not checkpoint:
            return
        pipe = self.client.pipeline(transaction=True)
        latest: dict[str, dict[str, Any]] = defaultdict(dict)
        for w in windows:
            self._append(pipe, f"w:{w.key}", self.windows_stream, {k: str(v) for k, v in w.to_dict().items()})
            tag = _PREFIXES[w.kind]
            latest[w.sensor_id].update(
                {
                    f"{tag}_start_ms": w.start_ms,
                    f"{tag}_end_ms": w.end_ms,
                    f"{tag}_count": w.count,
                    f"{tag}_mean": w.mean,
                    f"{tag}_min": w.min,
                    f"{tag}_max": w.max,
                    f"{tag}_std": w.std,
                }
            )
        for sensor, mapping in latest.items():
            pipe.hset(self.latest_key(sensor), mapping=mapping)
            pipe.expire(self.latest_key(sensor), self.ttl_s)
        for a in anomalies:
            self._append(pipe, f"a:{a.sensor_id}:{a.event_id}", self.anomalies_stream, a.to_fields())
        if checkpoint:
            pipe.hset(self.checkpoint_key, mapping={f"p{p}": blob for p, blob in checkpoint.items()})
        if counters:
            pipe.hset(self.counters_key, mapping={f"p{p}": blob for p, blob in counters.items()})
        pipe.execute()

    def load_checkpoint(self, partition: int) -> dict[str, Any] | None:
        import orjson

        blob = self.client.hget(self.checkpoint_key, f"p{partition}")
        if blob is None:
            return None
        try:
            data: dict[str, Any] = orjson.loads(blob)
        except orjson.JSONDecodeError as e:
            raise StreamStateError(
                f"checkpoint {self.checkpoint_key}[p{partition}] is not valid JSON; delete the field to restart "
                "that partition from its committed offset"
            ) from e
        return data

    def delete_all(self) -> int:
        """Remove every key under the prefix (tests and `stream reset`)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        return int(self.client.delete(*keys)) if keys else 0


def raw_key(prefix: str, date: str, hour: str, partition: int, first_offset: int) -> str:
    return f"{prefix}/date={date}/hour={hour}/part-p{partition:03d}-{first_offset:012d}.parquet"


class RawLanding:
    """Buffers raw events and lands them as Parquet micro-batches partitioned by event date and hour.

    A file is named by its source partition and first offset, so a replay from the same checkpoint rewrites it.
    """

    def __init__(self, store: ArtifactStore, prefix: str = "raw/sensor-readings") -> None:
        # Load the Parquet engine now rather than inside the first checkpoint.
        pd.DataFrame({"x": [0]}).to_parquet(io.BytesIO(), index=False)
        self.store = store
        self.prefix = prefix
        self._rows: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame) -> None:
        """`frame` has columns partition, offset, event_id, sensor_id, ts, value, status."""
        if len(frame):
            self._rows.append(frame)

    @property
    def pending(self) -> int:
        return sum(len(f) for f in self._rows)

    def flush(self) -> list[str]:
        if not self._rows:
            return []
        frame = pd.concat(self._rows, ignore_index=True)
        self._rows = []
        frame["event_time"] = pd.to_datetime(frame["ts"], unit="ms", utc=True)
        keys = []
        # Group on the integer hour (strftime on every row costs more than the rest of the flush).
        for (hour_ms, partition), part in frame.groupby([frame["ts"] // _HOUR_MS * _HOUR_MS, "partition"], sort=True):
            stamp = datetime.fromtimestamp(int(hour_ms) / 1000, tz=UTC)
            buf = io.BytesIO()
            part.reset_index(drop=True).to_parquet(buf, index=False)
            date, hour = stamp.strftime("%Y-%m-%d"), stamp.strftime("%H")
            key = raw_key(self.prefix, date, hour, int(partition), int(part["offset"].min()))
            self.store.put_bytes(key, buf.getvalue())
            keys.append(key)
        return keys


def latest_features(windows: Iterable[WindowResult], into: dict[str, dict[str, Any]]) -> set[str]:
    """Fold window results into per-sensor feature rows (the Feast `sensor_window_stats` schema)."""
    changed = set()
    for w in windows:
        row = into.setdefault(w.sensor_id, {"sensor_id": w.sensor_id})
        tag = _PREFIXES[w.kind]
        row.update({f"{tag}_mean": w.mean, f"{tag}_min": w.min, f"{tag}_max": w.max, f"{tag}_std": w.std})
        row[f"{tag}_count"] = w.count
        stamp = datetime.fromtimestamp(w.end_ms / 1000, tz=UTC)
        row["event_timestamp"] = max(row.get("event_timestamp", stamp), stamp)
        changed.add(w.sensor_id)
    return changed


class FeastSensorPusher:
    """Pushes fresh window features to the Feast online store through `sensor_window_push` (feature_repo/sensors.py)."""

    PUSH_SOURCE = "sensor_window_push"
    FEATURE_VIEW = "sensor_window_stats"

    def __init__(self, store: Any) -> None:
        self.store = store
        self.rows: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, repo_path: Path, online_store: str = "sqlite", redis_url: str | None = None) -> FeastSensorPusher:
        from slipway.features.store import open_store

        store = open_store(repo_path, online_store=online_store, redis_url=redis_url)
        apply_sensor_objects(store)
        return cls(store)

    def push(self, windows: Sequence[WindowResult]) -> int:
        changed = latest_features(windows, self.rows)
        if not changed:
            return 0
        from feast.data_source import PushMode

        frame = pd.DataFrame([self.rows[s] for s in sorted(changed)])
        for tag in _PREFIXES.values():
            for stat in ("mean", "min", "max", "std"):
                frame[f"{tag}_{stat}"] = frame.get(f"{tag}_{stat}", pd.Series(dtype="float64")).astype("float64")
            frame[f"{tag}_count"] = frame.get(f"{tag}_count", pd.Series(dtype="float64")).fillna(0).astype("int64")
        try:
            self.store.push(self.PUSH_SOURCE, frame, to=PushMode.ONLINE)
        except Exception as e:
            raise FeatureStoreError(f"feast push to {self.PUSH_SOURCE} failed: {e}") from e
        return len(frame)


def apply_sensor_objects(store: Any) -> list[str]:
    """Register the sensor entity, push source and feature view from `<repo>/sensors.py`."""
    import importlib.util

    from feast import Entity, FeatureView, PushSource

    path = Path(store.repo_path) / "sensors.py"
    spec = importlib.util.spec_from_file_location("slipway_feast_sensors", path)
    if spec is None or spec.loader is None or not path.exists():
        raise FeatureStoreError(f"{path} not found; the Feast repo needs sensors.py for streaming features")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    objects = [v for v in vars(module).values() if isinstance(v, Entity | FeatureView | PushSource)]
    try:
        store.apply(objects)
    except Exception as e:
        raise FeatureStoreError(f"feast apply of {path} failed: {e}") from e
    return sorted(o.name for o in objects)


def encode(obj: Any) -> bytes:
    return dumps(obj)
