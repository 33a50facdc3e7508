"""S3 sources and zones on moto (SSE flag on), and Kafka topic drains on the tansu broker."""

from __future__ import annotations

import gzip
import io
import json
import logging
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from slipway.data.churn import generate_synthetic_churn
from slipway.errors import ConnectorError
from slipway.ingestion import DatasetZones, KafkaSource, churn_spec, ingest_landed, spec_from_dict
from slipway.ingestion.engine import IngestOptions
from slipway.ingestion.sources import run_ingestion
from slipway.settings import Settings
from slipway.storage import S3ArtifactStore

pytestmark = pytest.mark.integration

S3_SECRET = "moto-Secret-Key-31"


def test_s3_source_to_s3_zones(moto_s3: str, minio_client, s3_bucket: str, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    minio_client.make_bucket(s3_bucket)
    frame = generate_synthetic_churn(40, seed=5)
    body = gzip.compress((frame.to_csv(index=False) + "broken,row\n").encode())
    minio_client.put_object(s3_bucket, "landing/churn.csv.gz", io.BytesIO(body), len(body))
    settings = Settings(s3_endpoint=moto_s3, s3_access_key=SecretStr("testing"), s3_secret_key=SecretStr(S3_SECRET),
                        s3_secure=False, s3_bucket=f"{s3_bucket}-zones", ingest_s3_sse=True)  # fmt: skip

    report = run_ingestion(f"s3://{s3_bucket}/landing/churn.csv.gz", "churn", settings)
    assert (report.rows_read, report.rows_curated, report.rows_quarantined) == (41, 40, 1)
    assert (report.format, report.compression, report.version) == ("csv", "gzip", 1)
    zones_bucket = f"{s3_bucket}-zones"
    keys = {o.object_name for o in minio_client.list_objects(zones_bucket, recursive=True)}
    assert "curated/churn/_versions/v000001.json" in keys
    assert any(k.startswith("raw/churn/") and k.endswith("churn.csv.gz") for k in keys)
    assert any(k.startswith("quarantine/churn/") for k in keys)
    zones = DatasetZones(S3ArtifactStore(minio_client, zones_bucket))
    assert zones.read("churn").num_rows == 40
    assert [v.version for v in zones.versions("churn")] == [1]
    again = run_ingestion(f"s3://{s3_bucket}/landing/churn.csv.gz", "churn", settings)
    assert (again.version, again.new_version) == (1, False)

    with pytest.raises(ConnectorError, match="NoSuchKey"):
        run_ingestion(f"s3://{s3_bucket}/landing/missing.csv", "churn", settings)
    assert S3_SECRET not in caplog.text


def _create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {"retention.ms": "3600000", "retention.bytes": "104857600", "cleanup.policy": "delete"}
    futures = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config=configs)])
    for future in futures.values():
        future.result(timeout=15)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=str(i).encode())
    assert producer.flush(15) == 0


SENSOR_SPEC = {
    "name": "sensor",
    "columns": [
        {"name": "sensor_id", "regex": r"^s-\d+$"},
        {"name": "value", "type": "number", "min": -50, "max": 150},
        {"name": "ts", "type": "datetime"},
    ],
    "keys": ["sensor_id", "ts"],
    "partition_by": "ts",
}


def test_kafka_drain_lands_batches_once(kafka_broker: str, tmp_path: Path) -> None:
    from slipway.storage import LocalArtifactStore

    topic = f"ingest-{uuid.uuid4().hex[:8]}"
    _create_topic(kafka_broker, topic)
    good = [json.dumps({"sensor_id": f"s-{i % 5}", "value": i, "ts": f"2026-01-0{1 + i % 3}T00:00:{i:02d}"}).encode()
            for i in range(40)]  # fmt: skip
    _produce(
        kafka_broker,
        topic,
        [*good, b"not json", json.dumps({"sensor_id": "s-1", "value": 999, "ts": "2026-01-01T00:00:00"}).encode()],
    )
    zones = DatasetZones(LocalArtifactStore(tmp_path))
    spec = spec_from_dict(SENSOR_SPEC)
    group = f"g-{topic}"

    def drain():  # type: ignore[no-untyped-def]
        source = KafkaSource(kafka_broker, topic, group_id=group, timeout_s=30)
        return ingest_landed(source.fetch(), spec, zones, IngestOptions())

    first = drain()
    assert (first.rows_read, first.rows_curated, first.rows_quarantined) == (42, 40, 2)
    assert first.rule_failures == {"malformed_json": 1, "range:value": 1}
    assert zones.read("sensor").num_rows == 40
    second = drain()  # offsets were committed with the version: nothing is read twice
    assert (second.rows_read, second.version, second.new_version) == (0, 1, False)
    _produce(kafka_broker, topic, [json.dumps({"sensor_id": "s-9", "value": 1, "ts": "2026-01-05T00:00:00"}).encode()])
    third = drain()
    assert (third.rows_read, third.rows_curated, third.version) == (1, 1, 2)
    assert zones.read("sensor", partitions=("2026-01-05", None)).num_rows == 1

    with pytest.raises(ConnectorError, match="topic not found"):
        KafkaSource(kafka_broker, f"missing-{topic}", timeout_s=5).fetch()


def test_churn_spec_still_default(tmp_path: Path) -> None:
    assert churn_spec().keys == ["customerID"]
