"""Run reports: an HTML validation report, Prometheus text metrics and the scalars KFP shows as Metrics."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

if TYPE_CHECKING:
    from slipway.ingestion.engine import IngestionReport


def kfp_metrics(report: IngestionReport) -> dict[str, float]:
    """Scalars for `Output[Metrics].log_metric` (KFP renders them in the run's Metrics tab)."""
    out: dict[str, float] = {
        "rows_read": report.rows_read,
        "rows_curated": report.rows_curated,
        "rows_quarantined": report.rows_quarantined,
        "files_quarantined": report.files_quarantined,
        "bytes_read": report.bytes_read,
        "duration_seconds": round(report.duration_s, 3),
        "version": report.version or 0,
        "new_version": int(report.new_version),
    }
    for rule, count in sorted(report.rule_failures.items()):
        out[f"failures.{rule}"] = count
    return out


def prometheus_registry(report: IngestionReport) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ["dataset"]
    ds = report.dataset

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, labels, registry=registry).labels(ds).set(value)

    gauge("slipway_ingest_rows_read", "Records read from the source in the last run.", report.rows_read)
    gauge("slipway_ingest_rows_curated", "Records written to the curated zone in the last run.", report.rows_curated)
    gauge("slipway_ingest_rows_quarantined", "Records quarantined in the last run.", report.rows_quarantined)
    gauge("slipway_ingest_files_quarantined", "Whole files quarantined in the last run.", report.files_quarantined)
    gauge("slipway_ingest_bytes_read", "Bytes landed from the source in the last run.", report.bytes_read)
    gauge("slipway_ingest_duration_seconds", "Wall time of the last run.", report.duration_s)
    gauge("slipway_ingest_dataset_version", "Dataset version after the last run.", report.version or 0)
    gauge("slipway_ingest_last_run_timestamp_seconds", "Unix time the last run finished.", report.finished_at)
    rules = Gauge(
        "slipway_ingest_rule_failures", "Rows failing each rule in the last run.", ["dataset", "rule"],
        registry=registry,
    )  # fmt: skip
    for rule, count in report.rule_failures.items():
        rules.labels(ds, rule).set(count)
    outliers = Gauge(
        "slipway_ingest_outliers", "Curated rows flagged as outliers per column.", ["dataset", "column"],
        registry=registry,
    )  # fmt: skip
    for column, count in report.outliers.items():
        outliers.labels(ds, column).set(count)
    return registry


def write_prometheus(report: IngestionReport, path: str | Path, pushgateway: str | None = None) -> Path:
    """Write the Prometheus text exposition (node-exporter textfile format); push it too if a gateway is set."""
    registry = prometheus_registry(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    if pushgateway:
        push_to_gateway(pushgateway, job=f"slipway-ingest-{report.dataset}", registry=registry, timeout=10)
    return path


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=9>none</td></tr>'}</table>"


def write_html(report: IngestionReport, path: str | Path, samples: list[dict[str, Any]]) -> Path:
    """A self-contained HTML validation report (KFP renders it as an HTML artifact)."""
    summary = [
        ("dataset", report.dataset), ("source", report.source), ("status", report.status),
        ("format", f"{report.format} (compression={report.compression}, confidence={report.confidence:.2f})"),
        ("rows read", report.rows_read), ("rows curated", report.rows_curated),
        ("rows quarantined", report.rows_quarantined), ("files quarantined", report.files_quarantined),
        ("version", f"{report.version} ({'new' if report.new_version else 'unchanged'})"),
        ("duration", f"{report.duration_s:.2f} s"), ("error", report.error or ""),
    ]  # fmt: skip
    rules = sorted(report.rule_failures.items(), key=lambda kv: -kv[1])
    sample_rows = [(s.get("source_line"), ", ".join(s.get("reasons", [])), json.dumps(s.get("raw"))[:300])
                   for s in samples]  # fmt: skip
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Ingestion report: {html.escape(report.dataset)}
</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}th{{background:#f3f3f3}}</style>
</head><body><h1>Ingestion report: {html.escape(report.dataset)}</h1>
<h2>Summary</h2>{_table(summary, ("item", "value"))}
<h2>Failures per rule</h2>{_table(rules, ("rule", "rows"))}
<h2>Outliers flagged (kept, marked in <code>_outliers</code>)</h2>{
        _table(sorted(report.outliers.items()), ("column", "rows"))
    }
<h2>Quarantined rows (first {len(samples)}, PII masked)</h2>{_table(sample_rows, ("position", "reasons", "raw"))}
</body></html>"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
