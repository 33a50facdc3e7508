"""Real-time IoT pipeline: Kafka-API broker, sensor simulator, event-time windows, online anomaly detection, sinks.

Modules: `broker` (tansu locally, topics), `events` (wire format, poison checks), `simulator`, `windows`
(per-partition watermarks, tumbling and hopping windows), `detector` (robust z-score on river), `nab` (NAB
scoring), `sinks` (Redis, raw Parquet landing, Feast push), `processor` (the consumer loop and checkpoints),
`insights` (live HTTP page), `mqtt_bridge` (optional MQTT ingress), `cli` (`slipway stream ...`).
"""
