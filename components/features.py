"""Feature-store component: publish curated features to Feast and build a point-in-time training set."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def build_training_set(
    curated: Input[Dataset], feast_repo: str, online_store: str, training_set: Output[Dataset]
) -> None:
    """Apply the Feast repo, materialize online features and join labels to features point-in-time."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import pandas as pd

    from slipway.features.store import (
        apply_repo,
        build_training_set,
        materialize,
        open_store,
        write_feature_source,
    )

    frame = pd.read_parquet(curated.path)
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_feature_source(frame, Path(feast_repo), as_of)
    store = open_store(Path(feast_repo), online_store=online_store)
    apply_repo(store)
    materialize(store, end=as_of + timedelta(seconds=1))
    # Labels are observed after the feature snapshot, so the join takes the snapshot's values.
    entity_df = frame[["customerID", "Churn"]].assign(event_timestamp=as_of + timedelta(seconds=1))
    result = build_training_set(store, entity_df)
    result.to_parquet(training_set.path, index=False)
    training_set.metadata["rows"] = len(result)
