"""Registry component: store a model version with its sha256 and evidence."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    training_set: Input[Dataset],
    metrics: Input[Metrics],
    model_name: str,
    slipway_home: str,
    model_card: Input[Markdown],
    model_card_html: Input[HTML],
    annotations: str = "{}",
) -> int:
    """Register the model in the artifact store configured by SLIPWAY_* settings; returns the version."""
    import json
    import tempfile
    from pathlib import Path

    import joblib
    import pandas as pd

    from slipway.data.churn_schema import FEATURE_COLUMNS, TARGET_COLUMN, feature_schema
    from slipway.monitoring.profile import write_reference_files
    from slipway.registry import ModelRegistry, sha256_dataframe
    from slipway.serving.fast import write_onnx_export
    from slipway.settings import Settings
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    frame = pd.read_parquet(training_set.path)
    fitted = joblib.load(model.path)
    with tempfile.TemporaryDirectory() as work:
        # The drift reference travels with the version: profile (summaries + predictions) and a small sample.
        reference = write_reference_files(frame, FEATURE_COLUMNS, work, model=fitted, target=TARGET_COLUMN)
        # The server's compiled fast path, when the export matches sklearn within 1e-6 (linear models).
        onnx = write_onnx_export(fitted, feature_schema()["features"], Path(work) / "model.onnx")
        if onnx is not None:
            reference["model.onnx"] = onnx
        version = registry.register(
            model_name,
            model.path,
            metrics={k: float(v) for k, v in metrics.metadata.items()},
            params={k: str(v) for k, v in model.metadata.items()},
            training_data_sha256=sha256_dataframe(frame),
            feature_schema=feature_schema(),
            extra_files={**reference, "model_card.md": model_card.path, "model_card.html": model_card_html.path},
            annotations=json.loads(annotations),
        )
    return version.version
