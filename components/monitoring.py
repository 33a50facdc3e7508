"""Monitoring component: Evidently data drift of a current batch against the training reference."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def drift_report(reference: Input[Dataset], current: Input[Dataset], report: Output[HTML], metrics: Output[Metrics]):
    """Write the Evidently drift report as an HTML artifact and log drift share and per-column flags."""
    import shutil
    import tempfile

    import pandas as pd

    from slipway.data.churn_schema import FEATURE_COLUMNS
    from slipway.monitoring.drift import run_drift_report

    with tempfile.TemporaryDirectory() as work:
        summary = run_drift_report(
            pd.read_parquet(reference.path), pd.read_parquet(current.path), work, columns=FEATURE_COLUMNS
        )
        shutil.copyfile(summary.html_path, report.path)
    metrics.log_metric("drift_share", float(summary.drift_share))
    metrics.log_metric("dataset_drift", float(summary.dataset_drift))
    metrics.log_metric("drifted_columns", float(len(summary.drifted_columns)))


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def check_serving_drift(
    model_name: str,
    window: str,
    end: str,
    slipway_home: str,
    payload_root: str,
    retrain_on_drift: bool,
    report: Output[HTML],
    metrics: Output[Metrics],
    check: Output[Artifact],
) -> str:
    """Check a window of the model's payload logs against its reference profile; alert and retrain on drift.

    Alert webhook, Pushgateway, thresholds and the KFP host for retraining come from SLIPWAY_* settings.
    Returns the status: drift, no-drift or insufficient-data.
    """
    import json
    import shutil
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    from slipway.monitoring.cli import build_retrain_trigger, check_drift_from_settings
    from slipway.settings import Settings

    settings = Settings(home=Path(slipway_home), monitoring_payload_root=Path(payload_root) if payload_root else None)
    stop = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(UTC)
    with tempfile.TemporaryDirectory() as work:
        result = check_drift_from_settings(
            settings,
            model_name,
            window,
            stop,
            out_dir=Path(work),
            retrain=retrain_on_drift,
            trigger_factory=build_retrain_trigger,
        )
        html = Path(work) / "drift_report.html"
        if html.exists():
            shutil.copyfile(html, report.path)
        else:
            Path(report.path).write_text(f"<html><body><p>{result.status}: {result.rows} rows</p></body></html>")
    Path(check.path).write_text(json.dumps(result.to_dict(), default=str, indent=2))
    metrics.log_metric("rows", float(result.rows))
    metrics.log_metric("drift_detected", float(result.detected))
    if result.summary is not None:
        metrics.log_metric("drift_share", float(result.summary.drift_share))
        metrics.log_metric("drifted_columns", float(len(result.summary.drifted_columns)))
    return result.status
