"""Streaming sensor features: the stream processor pushes each sensor's latest window aggregates online.

Self-contained (imports only feast) so it can be applied on its own by slipway.streaming.sinks.apply_sensor_objects.
"""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64

sensor = Entity(
    name="sensor",
    join_keys=["sensor_id"],
    value_type=ValueType.STRING,
    description="An IoT sensor (the Kafka message key of sensor-readings).",
)

sensor_window_batch_source = FileSource(
    name="sensor_window_batch_source",
    path="data/sensor_windows.parquet",
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
)

sensor_window_push = PushSource(name="sensor_window_push", batch_source=sensor_window_batch_source)

sensor_window_stats = FeatureView(
    name="sensor_window_stats",
    entities=[sensor],
    ttl=timedelta(hours=1),
    schema=[
        Field(name=f"{window}_{stat}", dtype=Int64 if stat == "count" else Float64)
        for window in ("t10", "h1m")
        for stat in ("mean", "min", "max", "std", "count")
    ],
    source=sensor_window_push,
    online=True,
    description="Latest 10 s tumbling (t10) and 1 min hopping (h1m) aggregates per sensor, pushed by the stream.",
)
