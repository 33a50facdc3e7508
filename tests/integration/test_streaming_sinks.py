"""Sinks on real servers: idempotent Redis writes, raw Parquet landing on S3 (moto), Feast push, live insights."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from slipway.storage import S3ArtifactStore
from slipway.streaming.detector import Anomaly
from slipway.streaming.sinks import FeastSensorPusher, RawLanding, RedisSink, apply_sensor_objects
from slipway.streaming.windows import HOPPING, TUMBLING, WindowResult

pytestmark = pytest.mark.integration

REPO_SRC = Path(__file__).resolve().parents[2] / "feature_repo"
END = 1_764_000_060_000
WINDOWS = [
    WindowResult(TUMBLING, "sensor-a", END - 10_000, END, 10, 61.5, 60.0, 63.0, 0.9),
    WindowResult(HOPPING, "sensor-a", END - 60_000, END, 60, 60.5, 58.0, 63.0, 1.2),
    WindowResult(TUMBLING, "sensor-b", END - 10_000, END, 8, 40.0, 39.0, 41.0, 0.5),
]
ANOMALY = Anomaly("sensor-b", "sensor-b-17", END - 3_000, 55.0, 9.5, 40.2, 1.1, "value 55 is 9.5 robust sd above ...")


@pytest.fixture
def sink(stream_redis: tuple[str, str]):  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(stream_redis[0])
    yield RedisSink(client, stream_redis[1], "g", ttl_s=600)
    client.close()


def test_redis_writes_are_idempotent(sink: RedisSink) -> None:
    sink.write(WINDOWS, [ANOMALY])
    sink.write(WINDOWS, [ANOMALY])  # a replay after a crash writes the same results again
    assert sink.client.xlen(sink.windows_stream) == 3
    assert sink.client.xlen(sink.anomalies_stream) == 1
    latest = sink.client.hgetall(sink.latest_key("sensor-a"))
    assert float(latest[b"t10_mean"]) == 61.5 and float(latest[b"h1m_std"]) == 1.2
    assert int(latest[b"t10_end_ms"]) == END
    assert 0 < sink.client.ttl(sink.latest_key("sensor-a")) <= 600


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_insights_api_and_page(sink: RedisSink) -> None:
    from fastapi.testclient import TestClient

    from slipway.streaming.insights import create_app

    sink.write(WINDOWS, [ANOMALY], counters={0: b'{"received": 7, "late": 1}', 1: b'{"received": 3, "late": 0}'})
    client = TestClient(create_app(sink.client, sink.prefix, token="s3cret"))
    assert client.get("/api/sensors").status_code == 401
    assert client.get("/api/sensors", headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    sensors = client.get("/api/sensors", headers=auth).json()
    assert [s["sensor_id"] for s in sensors] == ["sensor-a", "sensor-b"]
    assert sensors[0]["t10_count"] == 10 and sensors[0]["h1m_mean"] == 60.5 and "h1m_mean" not in sensors[1]
    anomalies = client.get("/api/anomalies", headers=auth).json()
    assert [(a["sensor_id"], a["event_id"], a["score"]) for a in anomalies] == [("sensor-b", "sensor-b-17", 9.5)]
    assert client.get("/api/stats", headers=auth).json()["totals"] == {"received": 10, "late": 1}
    page = client.get("/")
    assert page.status_code == 200 and "setInterval(refresh" in page.text
    assert client.get("/readyz").json() == {"status": "ready"}


def test_raw_landing_on_s3(minio_client, s3_bucket: str) -> None:  # type: ignore[no-untyped-def]
    store = S3ArtifactStore(minio_client, s3_bucket)
    landing = RawLanding(store)
    hour = 3_600_000
    t0 = 1_764_000_000_000 - 1_764_000_000_000 % hour  # 2025-11-24T16:00Z
    landing.add(
        pd.DataFrame(
            {
                "partition": [0, 0, 1],
                "offset": [5, 6, 9],
                "event_id": ["a", "b", "c"],
                "sensor_id": ["s0", "s0", "s1"],
                "ts": [t0 + 10, t0 + hour + 5, t0 + 20],
                "value": [1.0, 2.0, 3.0],
                "status": ["accepted", "accepted", "late"],
            }
        )
    )
    keys = landing.flush()
    assert keys == [
        "raw/sensor-readings/date=2025-11-24/hour=16/part-p000-000000000005.parquet",
        "raw/sensor-readings/date=2025-11-24/hour=16/part-p001-000000000009.parquet",
        "raw/sensor-readings/date=2025-11-24/hour=17/part-p000-000000000006.parquet",
    ]
    assert store.list("raw/sensor-readings") == sorted(keys)
    back = pd.read_parquet(io.BytesIO(store.get_bytes(keys[1])))
    assert back[["event_id", "value", "status"]].values.tolist() == [["c", 3.0, "late"]]
    assert landing.flush() == []


@pytest.mark.slow
def test_feast_push_serves_fresh_window_features(tmp_path: Path) -> None:
    from slipway.features.store import open_store

    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO_SRC, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    store = open_store(repo)
    assert apply_sensor_objects(store) == ["sensor", "sensor_window_push", "sensor_window_stats"]
    pusher = FeastSensorPusher(store)
    assert pusher.push(WINDOWS) == 2
    online = store.get_online_features(
        features=[f"sensor_window_stats:{f}" for f in ("t10_mean", "t10_count", "h1m_std")],
        entity_rows=[{"sensor_id": "sensor-a"}, {"sensor_id": "sensor-b"}, {"sensor_id": "nope"}],
    ).to_dict()
    assert online["t10_mean"] == [61.5, 40.0, None]
    assert online["t10_count"] == [10, 8, None]
    assert online["h1m_std"][0] == 1.2
    assert online["h1m_std"][1] is None or pd.isna(online["h1m_std"][1])  # no 1 min window closed yet for b
    # A newer window replaces the served value.
    newer = WindowResult(TUMBLING, "sensor-a", END, END + 10_000, 9, 70.0, 69.0, 71.0, 0.4)
    pusher.push([newer])
    again = store.get_online_features(
        features=["sensor_window_stats:t10_mean"], entity_rows=[{"sensor_id": "sensor-a"}]
    )
    assert again.to_dict()["t10_mean"] == [70.0]
