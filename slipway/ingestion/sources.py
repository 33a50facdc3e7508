"""Source URIs -> connectors, configured from Settings (the entry points' one place for credentials).

path/to/file.csv | file:///abs/path      local file (any supported format, compressed or not)
s3://bucket/key                           object on SLIPWAY_S3_ENDPOINT
postgres://schema.table?watermark=col     table on SLIPWAY_INGEST_PG_URL, incremental when watermark is set
https://host/path#pagination=cursor&records=data&page_size=100   REST API (token: SLIPWAY_INGEST_HTTP_TOKEN);
                                          add &since_field=updated_at[&since_param=updated_since] for incremental loads
kafka://topic?max_messages=100000         topic on SLIPWAY_KAFKA_BOOTSTRAP (drained up to its end)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from slipway.errors import ConfigError
from slipway.ingestion.connectors import HttpSource, KafkaSource, Landed, PostgresSource, S3Options, fetch_file
from slipway.ingestion.engine import IngestionReport, IngestOptions, ingest_landed
from slipway.ingestion.spec import DatasetSpec, load_spec
from slipway.ingestion.zones import DatasetZones
from slipway.settings import Settings
from slipway.storage import ArtifactStore, store_from_settings


def s3_options(settings: Settings) -> S3Options | None:
    if not settings.s3_endpoint:
        return None
    return S3Options(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        region=settings.s3_region,
        secure=settings.s3_secure,
        ca_bundle=settings.ingest_s3_ca_bundle,
        attempts=settings.ingest_retry_attempts,
    )


def _options(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=False))


def land(uri: str, settings: Settings, zones: DatasetZones, dataset: str) -> Landed:
    """Fetch `uri` with the connector its scheme names."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and Path(uri).exists()):  # "" or a Windows drive letter
        return fetch_file(parts.path if scheme == "file" else uri)
    if scheme == "s3":
        return fetch_file(uri, s3_options(settings))
    if scheme in ("postgres", "postgresql"):
        if settings.ingest_pg_url is None:
            raise ConfigError("postgres:// sources need SLIPWAY_INGEST_PG_URL (from a Secret)")
        opts = _options(parts.query)
        pg = PostgresSource(
            url=settings.ingest_pg_url,
            table=(parts.netloc + parts.path).strip("/"),
            watermark=opts.get("watermark"),
            chunk_rows=int(opts.get("chunk_rows", 50_000)),
            sslmode=settings.ingest_pg_sslmode,
            sslrootcert=settings.ingest_pg_sslrootcert,
            attempts=settings.ingest_retry_attempts,
        )
        return pg.fetch(zones.load_state(dataset, f"postgres-{pg.table}"))
    if scheme in ("http", "https"):
        http_opts: dict[str, Any] = _options(parts.fragment)
        verify: bool | str = settings.ingest_http_verify
        if settings.ingest_http_ca_bundle:
            verify = str(settings.ingest_http_ca_bundle)
        http = HttpSource(
            url=uri.split("#", 1)[0],
            token=settings.ingest_http_token,
            pagination=http_opts.pop("pagination", "page"),
            records_key=http_opts.pop("records", "data"),
            page_size=int(http_opts.pop("page_size", 100)),
            verify=verify,
            timeout_s=settings.ingest_http_timeout_s,
            attempts=settings.ingest_retry_attempts + 1,
            **http_opts,
        )
        return http.fetch(zones.load_state(dataset, http.state_key) if http.since_field else None)
    if scheme == "kafka":
        opts = _options(parts.query)
        kafka = KafkaSource(
            bootstrap=settings.kafka_bootstrap,
            topic=(parts.netloc + parts.path).strip("/"),
            group_id=opts.get("group", settings.ingest_kafka_group),
            security_protocol=settings.kafka_security_protocol,
            ssl_ca_location=Path(settings.kafka_ssl_ca_location) if settings.kafka_ssl_ca_location else None,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            max_messages=int(opts.get("max_messages", 1_000_000)),
            timeout_s=settings.ingest_kafka_timeout_s,
        )
        return kafka.fetch()
    raise ConfigError(f"unsupported source {uri!r}: use a path, s3://, postgres://, http(s):// or kafka://")


def options_from_settings(settings: Settings, report_dir: Path | None = None) -> IngestOptions:
    return IngestOptions(
        chunk_rows=settings.ingest_chunk_rows,
        max_field_bytes=settings.ingest_max_field_bytes,
        pii_salt=settings.ingest_pii_salt.get_secret_value() if settings.ingest_pii_salt else "",
        keep_raw=settings.ingest_keep_raw,
        report_dir=report_dir or settings.ingest_metrics_dir,
        pushgateway=settings.ingest_pushgateway_url,
    )


def zones_from_settings(settings: Settings, store: ArtifactStore | None = None) -> DatasetZones:
    return DatasetZones(store or store_from_settings(settings), server_side_encryption=settings.ingest_s3_sse)


def run_ingestion(
    uri: str,
    dataset: str | DatasetSpec,
    settings: Settings,
    *,
    store: ArtifactStore | None = None,
    report_dir: Path | None = None,
) -> IngestionReport:
    """Land `uri`, validate it against `dataset` and commit a version in the configured (or given) store."""
    spec = load_spec(dataset, settings.ingest_schema_dir)
    zones = zones_from_settings(settings, store)
    landed = land(uri, settings, zones, spec.name)
    return ingest_landed(landed, spec, zones, options_from_settings(settings, report_dir))
