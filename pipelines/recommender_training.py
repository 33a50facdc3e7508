"""`recommender-training`: interactions (MovieLens file or synthetic) -> train and evaluate -> register."""

from kfp import dsl

from components.recommender import prepare_interactions, register_recommender_model, train_recommender_model


@dsl.pipeline(
    name="recommender-training",
    description="Load MovieLens-format or synthetic implicit interactions, train an item-item (or SVD) "
    "recommender, evaluate precision/recall/nDCG@K against a popularity baseline it must beat, and register it.",
)
def recommender_training(
    source_uri: str = "",
    n_users: int = 2000,
    n_items: int = 1000,
    min_rating: float = 0.0,
    algorithm: str = "item_knn",
    k: int = 10,
    seed: int = 42,
    model_name: str = "recommender",
    slipway_home: str = "/tmp/slipway",
) -> None:
    data = prepare_interactions(
        source_uri=source_uri, n_users=n_users, n_items=n_items, seed=seed, min_rating=min_rating
    ).set_display_name("prepare-interactions")
    train = train_recommender_model(
        interactions=data.outputs["interactions"], algorithm=algorithm, k=k, seed=seed
    ).set_display_name("train-evaluate")
    register_recommender_model(
        model=train.outputs["model"],
        interactions=data.outputs["interactions"],
        metrics=train.outputs["metrics"],
        model_name=model_name,
        slipway_home=slipway_home,
    ).set_display_name("register")
