"""Data components: synthetic source, ingest (detect, validate, cleanse, quarantine)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def prepare_source(source_uri: str, n_rows: int, seed: int, raw: Output[Dataset]) -> None:
    """Bring the input into the pipeline: a user file when `source_uri` is set, else synthetic churn data."""
    import shutil

    from slipway.data.churn import generate_synthetic_churn

    if source_uri:
        shutil.copyfile(source_uri, raw.path)
        raw.metadata["source_uri"] = source_uri
    else:
        generate_synthetic_churn(n_rows=n_rows, seed=seed).to_csv(raw.path, index=False)
        raw.metadata["source_uri"] = f"synthetic://churn?rows={n_rows}&seed={seed}"


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def ingest_churn(raw: Input[Dataset], curated: Output[Dataset], quarantine: Output[Dataset], metrics: Output[Metrics]):
    """Detect the format, validate and cleanse; rejected rows go to quarantine with reasons."""
    import os
    import shutil
    import tempfile

    from slipway.data.ingest import ingest_file

    with tempfile.TemporaryDirectory() as work:
        result = ingest_file(raw.path, dataset="churn", out_dir=work)
        shutil.copyfile(result.curated_path, curated.path)
        # An empty quarantine file still travels, so downstream steps and the UI always find one.
        if os.path.exists(result.quarantine_path):
            shutil.copyfile(result.quarantine_path, quarantine.path)
        else:
            open(quarantine.path, "w").close()
    for key in ("rows_read", "rows_curated", "rows_quarantined"):
        metrics.log_metric(key, getattr(result, key))
    curated.metadata.update({"format": result.format, "rows": result.rows_curated})
