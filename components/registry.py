"""Registry component: store a model version with its sha256 and evidence."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model], training_set: Input[Dataset], metrics: Input[Metrics], model_name: str, slipway_home: str
) -> int:
    """Register the model in the artifact store configured by SLIPWAY_* settings; returns the version."""
    from pathlib import Path

    import pandas as pd

    from slipway.data.churn_schema import feature_schema
    from slipway.registry import ModelRegistry, sha256_dataframe
    from slipway.settings import Settings
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    version = registry.register(
        model_name,
        model.path,
        metrics={k: float(v) for k, v in metrics.metadata.items()},
        params={k: str(v) for k, v in model.metadata.items()},
        training_data_sha256=sha256_dataframe(pd.read_parquet(training_set.path)),
        feature_schema=feature_schema(),
    )
    return version.version
