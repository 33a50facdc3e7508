"""Training and evaluation components: fit the selected candidate, compare it with the champion, write the
model card, and apply the champion/challenger decision once the version is registered."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def train_churn_model(
    train: Input[Dataset],
    test: Input[Dataset],
    candidate: str,
    seed: int,
    cv_folds: int,
    cv_repeats: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
) -> float:
    """Fit the selected candidate on the training part; evaluate on the held-out part at the threshold chosen
    on out-of-fold scores; log ROC and confusion matrix, the HTML report and permutation importance."""
    import json

    import pandas as pd

    from slipway.evaluation.importance import permutation_importances
    from slipway.evaluation.report import write_evaluation_html
    from slipway.training.churn import save_model, split_xy, train_churn
    from slipway.training.tuning import result_from_json

    selected = result_from_json(candidate)  # the selection step's candidate and its CV on this training part
    chosen = selected.candidate
    test_df = pd.read_parquet(test.path)
    result = train_churn(
        pd.read_parquet(train.path),
        chosen.algorithm,
        seed,
        cv_folds=cv_folds,
        cv_repeats=cv_repeats,
        class_weight=chosen.class_weight,
        params=chosen.params,
        test_df=test_df,
        cv=selected.cv,
    )
    save_model(result.pipeline, model.path)
    x_test, y_test = split_xy(test_df)
    importances = permutation_importances(result.pipeline, x_test, y_test, n_repeats=3, seed=seed)
    for key, value in result.metrics.items():
        metrics.log_metric(key, float(value))
    rep = result.report
    classification.log_confusion_matrix(rep.labels, rep.confusion_matrix)
    classification.log_roc_curve(rep.roc_fpr, rep.roc_tpr, rep.roc_thresholds)
    title = f"churn {chosen.id}: held-out test part"
    write_evaluation_html(rep, result.metrics, report.path, title=title, importances=importances, cv=result.cv)
    with open(evaluation.path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "params": result.params,
                "metrics": result.metrics,
                "cv": result.cv.model_dump() if result.cv else None,
                "importances": [i.model_dump() for i in importances],
            },
            f,
        )
    model.metadata.update({"framework": "scikit-learn", **result.params})
    return float(rep.roc_auc)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def compare_with_champion(
    train: Input[Dataset],
    model: Input[Model],
    model_name: str,
    slipway_home: str,
    n_splits: int,
    n_repeats: int,
    alpha: float,
    seed: int,
) -> str:
    """Corrected resampled t-test of the new model against the production (else latest) version, both refitted
    on the same folds of the training part; returns the decision as JSON."""
    import tempfile
    from pathlib import Path

    import joblib
    import pandas as pd

    from slipway.registry import ModelRegistry, load_verified_model
    from slipway.settings import Settings
    from slipway.storage import store_from_settings
    from slipway.training.champion import compare_champion_challenger, find_champion
    from slipway.training.churn import split_xy

    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    champion_meta = find_champion(registry, model_name)
    champion = None
    with tempfile.TemporaryDirectory() as work:
        if champion_meta is not None:
            champion, _ = load_verified_model(registry.download(model_name, champion_meta.version, work))
        x, y = split_xy(pd.read_parquet(train.path))
        decision = compare_champion_challenger(
            champion, joblib.load(model.path), x, y, n_splits=n_splits, n_repeats=n_repeats, alpha=alpha, seed=seed
        )
    if champion_meta is not None:
        decision.reason = f"champion v{champion_meta.version} ({champion_meta.stage}): {decision.reason}"
    return decision.model_dump_json()


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def write_model_card(
    training_set: Input[Dataset],
    evaluation: Input[Artifact],
    comparison: Input[Markdown],
    decision: str,
    model_name: str,
    slipway_home: str,
    card: Output[Markdown],
    card_html: Output[HTML],
) -> None:
    """Model card (Markdown + HTML): data version, features, parameters, metrics with intervals, the selection
    table, the champion comparison and known limits."""
    import json
    from pathlib import Path

    import pandas as pd

    from slipway.data.churn_schema import TARGET_COLUMN, feature_schema
    from slipway.evaluation.model_card import ModelCard, features_from_schema
    from slipway.registry import ModelRegistry, sha256_dataframe
    from slipway.settings import Settings
    from slipway.storage import store_from_settings

    frame = pd.read_parquet(training_set.path)
    ev = json.loads(Path(evaluation.path).read_text())
    cv = ev["cv"] or {}
    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    versions = registry.list_versions(model_name)
    protocol = f"{cv.get('n_repeats')}x repeated stratified {cv.get('n_splits')}-fold, seed {cv.get('seed')}"
    test_keys = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy")
    ModelCard(
        name=model_name,
        version=str(versions[-1].version + 1 if versions else 1),
        algorithm=ev["params"]["algorithm"],
        training_data_sha256=sha256_dataframe(frame),
        n_rows=len(frame),
        positive_rate=float((frame[TARGET_COLUMN] == "Yes").mean()),
        features=features_from_schema(feature_schema()),
        feature_steps=ev["params"].get("features", ""),
        params=ev["params"],
        test_metrics={k: ev["metrics"][k] for k in test_keys if k in ev["metrics"]},
        cv_summary=cv.get("summary", {}),
        cv_protocol=protocol if cv else "",
        threshold=ev["metrics"].get("threshold"),
        threshold_policy=ev["params"].get("threshold_policy", ""),
        comparison_markdown=Path(comparison.path).read_text().split("## All", 1)[0].strip(),
        decision=json.loads(decision),
        importances=ev["importances"],
    ).write(card.path, card_html.path)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def apply_champion_decision(model_name: str, version: int, decision: str, slipway_home: str) -> str:
    """Record the decision on the registered version (annotation + event) and set its stage; returns the stage."""
    from pathlib import Path

    from slipway.registry import ModelRegistry
    from slipway.settings import Settings
    from slipway.storage import store_from_settings
    from slipway.training.champion import ChallengerDecision, apply_decision

    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    return apply_decision(registry, model_name, version, ChallengerDecision.model_validate_json(decision))
