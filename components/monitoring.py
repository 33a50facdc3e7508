"""Monitoring component: Evidently data drift of a current batch against the training reference."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Output

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
