"""`churn-training`: ingest -> features (Feast) -> train -> register -> render InferenceService, plus drift."""

from kfp import dsl

from components.data import ingest_churn, prepare_source
from components.deploy import render_inference_service
from components.features import build_training_set
from components.monitoring import drift_report
from components.registry import register_model
from components.training import train_churn_model


@dsl.pipeline(
    name="churn-training",
    description="Ingest Telco churn data, build a point-in-time training set in Feast, train, register and "
    "render the KServe InferenceService; report drift of a fresh batch against the training data.",
)
def churn_training(
    source_uri: str = "",
    n_rows: int = 3000,
    seed: int = 42,
    algorithm: str = "logistic_regression",
    feast_repo: str = "/app/feature_repo",
    online_store: str = "sqlite",
    model_name: str = "churn",
    slipway_home: str = "/tmp/slipway",
    storage_uri_prefix: str = "s3://slipway-artifacts/models",
    image: str = "ghcr.io/slipway-mlops/slipway:0.1.0",
    namespace: str = "slipway",
    canary_traffic_percent: int = 10,
    current_seed: int = 7,
) -> None:
    source = prepare_source(source_uri=source_uri, n_rows=n_rows, seed=seed).set_display_name("prepare-source")
    ingest = ingest_churn(raw=source.outputs["raw"]).set_display_name("ingest-validate-cleanse")
    features = build_training_set(
        curated=ingest.outputs["curated"], feast_repo=feast_repo, online_store=online_store
    ).set_display_name("feast-training-set")
    train = train_churn_model(
        training_set=features.outputs["training_set"], algorithm=algorithm, seed=seed
    ).set_display_name("train-evaluate")
    register = register_model(
        model=train.outputs["model"],
        training_set=features.outputs["training_set"],
        metrics=train.outputs["metrics"],
        model_name=model_name,
        slipway_home=slipway_home,
    ).set_display_name("register")
    render_inference_service(
        model_name=model_name,
        version=register.output,
        storage_uri_prefix=storage_uri_prefix,
        image=image,
        namespace=namespace,
        canary_traffic_percent=canary_traffic_percent,
    ).set_display_name("render-inferenceservice")

    batch = prepare_source(source_uri="", n_rows=n_rows, seed=current_seed).set_display_name("current-batch")
    current = ingest_churn(raw=batch.outputs["raw"]).set_display_name("ingest-current-batch")
    drift_report(reference=ingest.outputs["curated"], current=current.outputs["curated"]).set_display_name(
        "drift-report"
    )
