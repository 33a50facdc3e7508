"""`churn-training`: ingest -> features (Feast) -> hold out a test part -> model selection fanned out over
candidates (ParallelFor, Collected) -> train the winner -> champion/challenger -> model card -> register ->
stage -> render InferenceService, plus drift of a fresh batch."""

from kfp import dsl

from components.data import ingest_churn, prepare_source
from components.deploy import render_inference_service
from components.features import build_training_set
from components.monitoring import drift_report
from components.registry import register_model
from components.training import apply_champion_decision, compare_with_champion, train_churn_model, write_model_card
from components.tuning import evaluate_candidate, plan_candidates, select_candidate, split_holdout

ALL_ALGORITHMS = "logistic_regression,random_forest,gradient_boosting,svm"
CANDIDATE_PARALLELISM = 4


@dsl.pipeline(
    name="churn-training",
    description="Ingest Telco churn data, build a point-in-time training set in Feast, compare and tune four "
    "classifiers under one repeated stratified k-fold, train the winner, test it on a held-out part, compare it "
    "with the production model, register it with a model card and render the KServe InferenceService; report "
    "drift of a fresh batch against the training data.",
)
def churn_training(
    source_uri: str = "",
    n_rows: int = 3000,
    seed: int = 42,
    algorithms: str = ALL_ALGORITHMS,
    search: str = "default",
    class_weight: str = "balanced",
    test_size: float = 0.2,
    cv_folds: int = 5,
    cv_repeats: int = 2,
    champion_alpha: float = 0.05,
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
    holdout = split_holdout(
        training_set=features.outputs["training_set"], test_size=test_size, seed=seed
    ).set_display_name("hold-out-test-part")
    plan = plan_candidates(algorithms=algorithms, search=search, class_weight=class_weight).set_display_name(
        "plan-candidates"
    )
    # One task per candidate: the search fans out over the cluster (and over local processes with kfp.local).
    # `parallelism` is a compile-time constant in KFP.
    with dsl.ParallelFor(plan.output, parallelism=CANDIDATE_PARALLELISM) as candidate:
        trial = evaluate_candidate(
            train=holdout.outputs["train"], candidate=candidate, n_splits=cv_folds, n_repeats=cv_repeats, seed=seed
        ).set_display_name("cross-validate-candidate")
    select = select_candidate(results=dsl.Collected(trial.output)).set_display_name("compare-models")
    train = train_churn_model(
        train=holdout.outputs["train"],
        test=holdout.outputs["test"],
        candidate=select.outputs["Output"],
        seed=seed,
        cv_folds=cv_folds,
        cv_repeats=cv_repeats,
    ).set_display_name("train-evaluate")
    challenge = compare_with_champion(
        train=holdout.outputs["train"],
        model=train.outputs["model"],
        model_name=model_name,
        slipway_home=slipway_home,
        n_splits=cv_folds,
        n_repeats=cv_repeats,
        alpha=champion_alpha,
        seed=seed,
    ).set_display_name("champion-challenger")
    card = write_model_card(
        training_set=features.outputs["training_set"],
        evaluation=train.outputs["evaluation"],
        comparison=select.outputs["comparison"],
        decision=challenge.output,
        model_name=model_name,
        slipway_home=slipway_home,
    ).set_display_name("model-card")
    register = register_model(
        model=train.outputs["model"],
        training_set=features.outputs["training_set"],
        metrics=train.outputs["metrics"],
        model_name=model_name,
        slipway_home=slipway_home,
        model_card=card.outputs["card"],
        model_card_html=card.outputs["card_html"],
        annotations=select.outputs["Output"],  # the selected candidate and its per-fold CV scores
    ).set_display_name("register")
    apply_champion_decision(
        model_name=model_name, version=register.output, decision=challenge.output, slipway_home=slipway_home
    ).set_display_name("set-stage")
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
