"""Ingestion component: land a source, validate and cleanse it, commit a dataset version, publish reports."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def ingest_source(
    source_uri: str,
    dataset: str,
    store_root: str,
    report: Output[HTML],
    metrics: Output[Metrics],
    summary: Output[Artifact],
) -> None:
    """Ingest `source_uri` into `dataset` (store_root: a local zones folder; empty means the settings' store)."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from slipway.ingestion.sources import run_ingestion
    from slipway.logging_config import configure_logging
    from slipway.settings import Settings
    from slipway.storage import LocalArtifactStore

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    store = LocalArtifactStore(store_root) if store_root else None
    with tempfile.TemporaryDirectory() as work:
        result = run_ingestion(source_uri, dataset, settings, store=store, report_dir=Path(work))
        shutil.copyfile(result.html_report or "", report.path)
    for key, value in result.metrics.items():
        metrics.log_metric(key, value)
    Path(summary.path).write_text(json.dumps(result.to_dict(), default=str, indent=2))
    summary.metadata.update({"dataset": result.dataset, "version": result.version or 0, "status": result.status})
    if result.status != "ok":
        raise RuntimeError(f"ingestion of {source_uri} rejected the whole input: {result.error}")
