"""`slipway ingest` and `slipway data versions | read`: the command-line face of `slipway.ingestion`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from slipway.errors import SlipwayError
from slipway.settings import Settings

data_app = typer.Typer(help="Versioned datasets in the curated zone: list versions, read any version.")


def _settings() -> Settings:
    from slipway.logging_config import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _store(out: Path | None, settings: Settings):  # type: ignore[no-untyped-def]
    from slipway.storage import LocalArtifactStore, store_from_settings

    return LocalArtifactStore(out) if out is not None else store_from_settings(settings)


def ingest_command(uri: str, dataset: str, out: Path | None, report_dir: Path | None) -> None:
    """Run one ingestion and print its accounting as the last line (JSON); exit 2 with one line on failure."""
    settings = _settings()
    from slipway.ingestion.sources import run_ingestion

    try:
        report = run_ingestion(uri, dataset, settings, store=_store(out, settings), report_dir=report_dir)
    except (SlipwayError, OSError) as e:
        typer.echo(f"error: cannot ingest {uri}: {e}", err=True)
        raise typer.Exit(2) from e
    if report.status != "ok":
        typer.echo(f"error: cannot ingest {uri}: {report.error} (file quarantined: {report.quarantine_key})", err=True)
        raise typer.Exit(2)
    summary = {
        "rows_read": report.rows_read,
        "rows_curated": report.rows_curated,
        "rows_quarantined": report.rows_quarantined,
        "format": report.format,
        "version": report.version,
        "new_version": report.new_version,
        "dataset": report.dataset,
        "run_id": report.run_id,
        "quarantine": report.quarantine_key,
        "report": report.html_report,
    }
    typer.echo(json.dumps(summary, default=str))


@data_app.command("versions")
def versions(
    dataset: str = typer.Argument(..., help="Dataset name."),
    store: Path = typer.Option(None, help="Local store folder (as given to `ingest --out`); default: settings."),
) -> None:
    """List a dataset's versions: number, creation time, rows, files, partitions (one JSON object per line)."""
    settings = _settings()
    from slipway.ingestion.zones import DatasetZones

    infos = DatasetZones(_store(store, settings)).versions(dataset)
    if not infos:
        typer.echo(f"error: dataset {dataset!r} has no versions", err=True)
        raise typer.Exit(1)
    for info in infos:
        typer.echo(json.dumps(info.to_dict()))


@data_app.command("read")
def read(
    dataset: str = typer.Argument(..., help="Dataset name."),
    version: int = typer.Option(0, help="Version to read (time travel); 0 means the latest."),
    date_from: str = typer.Option("", "--from", help="First date partition (YYYY-MM-DD), inclusive."),
    date_to: str = typer.Option("", "--to", help="Last date partition (YYYY-MM-DD), inclusive."),
    out: Path = typer.Option(..., help="Parquet file to write."),
    store: Path = typer.Option(None, help="Local store folder; default: settings."),
    latest: bool = typer.Option(False, help="One row per key: the one from the newest version (upsert view)."),
) -> None:
    """Export one version (optionally a date range, pruned by partition) to a Parquet file."""
    settings = _settings()
    import pyarrow.parquet as pq

    from slipway.ingestion.zones import DatasetZones

    zones = DatasetZones(_store(store, settings))
    try:
        partitions = (date_from or None, date_to or None) if (date_from or date_to) else None
        table = zones.read(dataset, version or None, partitions=partitions, latest=latest)
    except SlipwayError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    typer.echo(json.dumps({"dataset": dataset, "version": version or zones.latest_version(dataset),
                           "rows": table.num_rows, "out": str(out)}))  # fmt: skip
