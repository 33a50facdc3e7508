"""Model selection components: hold out a test part, plan the candidates, score each one (fanned out with
`dsl.ParallelFor`), and gather the scores (`dsl.Collected`) into the comparison table."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def split_holdout(
    training_set: Input[Dataset], test_size: float, seed: int, train: Output[Dataset], test: Output[Dataset]
):
    """Stratified split; the test part is only seen by the final evaluation, never by selection or tuning."""
    import pandas as pd

    from slipway.training.churn import holdout_split

    train_df, test_df = holdout_split(pd.read_parquet(training_set.path), test_size=test_size, seed=seed)
    train_df.to_parquet(train.path, index=False)
    test_df.to_parquet(test.path, index=False)
    train.metadata["rows"] = len(train_df)
    test.metadata["rows"] = len(test_df)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def plan_candidates(algorithms: str, search: str, class_weight: str) -> list[str]:
    """Expand the search space (`default`, `small`, `grid`) of the comma-separated algorithms into candidates."""
    from slipway.training.search import plan_candidates as plan  # no scikit-learn import: a light task

    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    return [c.model_dump_json() for c in plan(names, search=search, class_weight=class_weight)]


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def evaluate_candidate(train: Input[Dataset], candidate: str, n_splits: int, n_repeats: int, seed: int) -> str:
    """Repeated stratified k-fold of one candidate on the training part; returns the result as JSON."""
    import pandas as pd

    from slipway.training.tuning import Candidate, evaluate_candidate, result_json

    result = evaluate_candidate(
        pd.read_parquet(train.path),
        Candidate.model_validate_json(candidate),
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
    )
    return result_json(result)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def select_candidate(
    results: list[str],
    comparison: Output[Markdown],
    comparison_html: Output[HTML],
    metrics: Output[Metrics],
) -> str:
    """Best candidate by mean ROC-AUC (returned with its CV as JSON); writes the per-model comparison table and
    every trial."""
    from slipway.evaluation.report import classification_comparison_markdown, markdown_to_html
    from slipway.training.tuning import best_per_algorithm, result_from_json, result_json, select_best

    parsed = [result_from_json(r) for r in results]
    best = select_best(parsed)
    table = classification_comparison_markdown([r.cv for r in best_per_algorithm(parsed)])
    trials = classification_comparison_markdown(sorted((r.cv for r in parsed), key=lambda c: c.name))
    text = (
        f"## Model comparison (best of each algorithm)\n\n{table}\n\n"
        f"Selected: **{best.candidate.id}** ({best.cv.n_repeats}x repeated stratified {best.cv.n_splits}-fold "
        f"on the training part, seed {best.cv.seed}).\n\n## All {len(parsed)} trials\n\n{trials}\n"
    )
    with open(comparison.path, "w", encoding="utf-8") as f:
        f.write(text)
    with open(comparison_html.path, "w", encoding="utf-8") as f:
        f.write(markdown_to_html(text, "churn model comparison"))
    for r in best_per_algorithm(parsed):
        metrics.log_metric(f"{r.candidate.algorithm}_cv_roc_auc", r.cv.summary["roc_auc"].mean)
    return result_json(best)
