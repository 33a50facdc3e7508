"""Training and evaluation components."""

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def train_churn_model(
    training_set: Input[Dataset],
    algorithm: str,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
) -> float:
    """Train one churn classifier; log test metrics, 5-fold CV ROC-AUC, ROC curve and confusion matrix."""
    import pandas as pd

    from slipway.evaluation.report import write_evaluation_html
    from slipway.training.churn import save_model, train_churn

    result = train_churn(pd.read_parquet(training_set.path), algorithm=algorithm, seed=seed)
    save_model(result.pipeline, model.path)
    cv_auc = sum(result.cv_roc_auc) / len(result.cv_roc_auc)
    for key, value in {**result.metrics, "cv_roc_auc_mean": cv_auc}.items():
        metrics.log_metric(key, float(value))
    rep = result.report
    classification.log_confusion_matrix(rep.labels, rep.confusion_matrix)
    classification.log_roc_curve(rep.roc_fpr, rep.roc_tpr, rep.roc_thresholds)
    write_evaluation_html(rep, result.metrics, report.path, title=f"churn {algorithm}")
    model.metadata.update({"algorithm": algorithm, "framework": "scikit-learn", **result.params})
    return float(cv_auc)
