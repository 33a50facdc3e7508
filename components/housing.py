"""Housing regression components: bring the data in, cross-validate one regressor per task (fanned out with
`dsl.ParallelFor`), and compare them (`dsl.Collected`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def prepare_housing(source_uri: str, n_rows: int, seed: int, data: Output[Dataset]) -> None:
    """The housing CSV at `source_uri`, else a synthetic stand-in with the same columns; validated, as parquet."""
    from slipway.data.housing import generate_synthetic_housing, load_housing_csv

    frame = load_housing_csv(source_uri) if source_uri else generate_synthetic_housing(n_rows=n_rows, seed=seed)
    if source_uri and 0 < n_rows < len(frame):
        frame = frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    frame.to_parquet(data.path, index=False)
    data.metadata.update({"rows": len(frame), "source_uri": source_uri or f"synthetic://housing?rows={n_rows}"})


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def cross_validate_regressor(data: Input[Dataset], algorithm: str, n_splits: int, n_repeats: int, seed: int) -> str:
    """Shuffled k-fold MSE/RMSE/MAE/R² of one regressor; returns the result as JSON."""
    import pandas as pd

    from slipway.training.housing import cross_validate_housing

    result = cross_validate_housing(
        pd.read_parquet(data.path), algorithm, n_splits=n_splits, n_repeats=n_repeats, seed=seed
    )
    return result.model_dump_json()


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def compare_regressors(
    results: list[str], comparison: Output[Markdown], comparison_html: Output[HTML], metrics: Output[Metrics]
) -> str:
    """Table of every regressor (mean ± sd and 95 % interval) and each one's folds; returns the best name."""
    from slipway.evaluation.report import markdown_to_html, regression_comparison_markdown, regression_folds_markdown
    from slipway.training.cv import RegressionCV

    parsed = sorted((RegressionCV.model_validate_json(r) for r in results), key=lambda r: r.summary["rmse"].mean)
    sections = [f"## Housing value regression: {parsed[0].n_splits}-fold CV\n", regression_comparison_markdown(parsed)]
    for r in parsed:
        sections += [f"\n### {r.name} per fold\n", regression_folds_markdown(r)]
        metrics.log_metric(f"{r.name}_rmse_mean", r.summary["rmse"].mean)
        metrics.log_metric(f"{r.name}_rmse_sd", r.summary["rmse"].sd)
        metrics.log_metric(f"{r.name}_mse_mean", r.summary["mse"].mean)
    text = "\n".join(sections) + "\n"
    with open(comparison.path, "w", encoding="utf-8") as f:
        f.write(text)
    with open(comparison_html.path, "w", encoding="utf-8") as f:
        f.write(markdown_to_html(text, "housing regression comparison"))
    return parsed[0].name
