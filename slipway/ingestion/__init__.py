"""Batch ingestion and data quality: connectors, format detection, validation, cleansing, quarantine,
versioned zones, source integration and run metrics."""

from slipway.ingestion.connectors import HttpSource, KafkaSource, Landed, PostgresSource, S3Options, fetch_file
from slipway.ingestion.engine import IngestionReport, IngestOptions, ingest_landed, process_file
from slipway.ingestion.formats import FormatGuess, detect_format
from slipway.ingestion.spec import ColumnSpec, DatasetSpec, RuleSpec, churn_spec, load_spec, spec_from_dict
from slipway.ingestion.zones import DatasetZones, VersionInfo

__all__ = [
    "ColumnSpec",
    "DatasetSpec",
    "DatasetZones",
    "FormatGuess",
    "HttpSource",
    "IngestOptions",
    "IngestionReport",
    "KafkaSource",
    "Landed",
    "PostgresSource",
    "RuleSpec",
    "S3Options",
    "VersionInfo",
    "churn_spec",
    "detect_format",
    "fetch_file",
    "ingest_landed",
    "load_spec",
    "process_file",
    "spec_from_dict",
]
