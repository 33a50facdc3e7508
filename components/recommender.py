"""Recommender components: interactions in, a ranked-list model evaluated against popularity, registered."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def prepare_interactions(
    source_uri: str, n_users: int, n_items: int, seed: int, min_rating: float, interactions: Output[Dataset]
) -> int:
    """A MovieLens-format file (u.data / ratings.csv / ratings.dat) or, with no source, synthetic interactions."""
    from slipway.recommender.data import generate_interactions, load_movielens

    if source_uri:
        result = load_movielens(source_uri, min_rating=min_rating or None)
        frame = result.frame
        interactions.metadata.update(result.to_dict())
    else:
        frame = generate_interactions(n_users, n_items, seed=seed)
        interactions.metadata.update({"source": "synthetic", "rows_loaded": len(frame)})
    frame.to_parquet(interactions.path, index=False)
    return len(frame)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def train_recommender_model(
    interactions: Input[Dataset],
    algorithm: str,
    k: int,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> float:
    """Leave-last-2-out precision/recall/nDCG@K against a popularity baseline (must be beaten); refit on all data."""
    import pandas as pd

    from slipway.recommender.training import train_and_evaluate

    outcome = train_and_evaluate(pd.read_parquet(interactions.path), algorithm, k=k, seed=seed)
    outcome.model.save(model.path)
    flat = outcome.flat_metrics()
    for key, value in flat.items():
        metrics.log_metric(key, float(value))
    model.metadata.update({"framework": "slipway-recommender", **{p: str(v) for p, v in outcome.params.items()}})
    rows = [f"| {name} | {flat[name]:.4f} | {flat['baseline_' + name]:.4f} |" for name in outcome.metrics.as_flat()]
    with open(report.path, "w") as fh:
        fh.write(f"# {algorithm} vs popularity (K={k})\n\n| metric | model | popularity |\n|---|---|---|\n")
        fh.write("\n".join(rows) + "\n")
    return float(outcome.metrics.ndcg)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def register_recommender_model(
    model: Input[Model], interactions: Input[Dataset], metrics: Input[Metrics], model_name: str, slipway_home: str
) -> int:
    """Register the recommender (sha256, ranking metrics, serving schema); returns the version."""
    from pathlib import Path

    import pandas as pd

    from slipway.recommender.training import register_recommender
    from slipway.registry import ModelRegistry
    from slipway.settings import Settings
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    return register_recommender(
        registry,
        model_name,
        model.path,
        {k: float(v) for k, v in metrics.metadata.items()},
        dict(model.metadata),
        pd.read_parquet(interactions.path),
    )
