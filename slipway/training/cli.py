"""`slipway train ...`: model comparison, feature ablation, nested CV and class weights from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

train_app = typer.Typer(help="Compare, tune and ablate models under one cross-validation protocol.")

DATASET_HELP = "churn (Telco CSV) or housing (California housing CSV)."
DATA_HELP = "CSV file; empty means the synthetic stand-in of the dataset."


def _load(dataset: str, data: Path | None, n_rows: int, seed: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    if dataset == "housing":
        from slipway.data.housing import generate_synthetic_housing, load_housing_csv

        return load_housing_csv(data) if data else generate_synthetic_housing(n_rows, seed)
    if dataset == "churn":
        from slipway.data.churn import generate_synthetic_churn, load_churn_csv
        from slipway.data.churn_schema import NUMERIC_FEATURES

        raw = load_churn_csv(data) if data else generate_synthetic_churn(n_rows, seed)
        raw["TotalCharges"] = raw["TotalCharges"].astype(str).str.strip().replace("", "0")
        for col in NUMERIC_FEATURES:
            raw[col] = pd.to_numeric(raw[col])
        return raw
    raise typer.BadParameter(f"unknown dataset {dataset!r}: use churn or housing")


def _settings():  # type: ignore[no-untyped-def]
    from slipway.cli import _settings as build

    return build()


@train_app.command()
def compare(
    dataset: str = typer.Option("churn", help=DATASET_HELP),
    data: Path = typer.Option(None, help=DATA_HELP),
    n_rows: int = typer.Option(3000, help="Rows of synthetic data when no CSV is given."),
    folds: int = typer.Option(5),
    repeats: int = typer.Option(2),
    n_jobs: int = typer.Option(2, help="Folds fitted in parallel (joblib)."),
) -> None:
    """Every model of the dataset on the same folds: the comparison table (Markdown)."""
    settings = _settings()
    from slipway.evaluation.report import classification_comparison_markdown, regression_comparison_markdown

    frame = _load(dataset, data, n_rows, settings.seed)
    if dataset == "housing":
        from slipway.training.housing import compare_regressors

        results = compare_regressors(frame, n_splits=folds, n_repeats=repeats, seed=settings.seed, n_jobs=n_jobs)
        typer.echo(regression_comparison_markdown(results))
        return
    from slipway.training.churn import compare_algorithms

    cls = compare_algorithms(frame, n_splits=folds, n_repeats=repeats, seed=settings.seed, n_jobs=n_jobs)
    typer.echo(classification_comparison_markdown(cls))


@train_app.command()
def ablation(
    dataset: str = typer.Option("churn", help=DATASET_HELP),
    data: Path = typer.Option(None, help=DATA_HELP),
    n_rows: int = typer.Option(3000),
    folds: int = typer.Option(5),
    n_jobs: int = typer.Option(2),
) -> None:
    """Each feature step switched off (or PCA on) under the same CV: the ablation table."""
    settings = _settings()
    from slipway.evaluation.report import ablation_markdown
    from slipway.training.ablation import ablate_churn, ablate_housing

    frame = _load(dataset, data, n_rows, settings.seed)
    ablate = ablate_housing if dataset == "housing" else ablate_churn
    typer.echo(ablation_markdown(ablate(frame, n_splits=folds, seed=settings.seed, n_jobs=n_jobs)))


@train_app.command("class-weights")
def class_weights(
    data: Path = typer.Option(None, help=DATA_HELP),
    n_rows: int = typer.Option(3000),
    folds: int = typer.Option(5),
    n_jobs: int = typer.Option(2),
) -> None:
    """Churn models with and without balanced class weights, same folds."""
    settings = _settings()
    from slipway.evaluation.report import classification_comparison_markdown
    from slipway.training.churn import compare_class_weights

    frame = _load("churn", data, n_rows, settings.seed)
    typer.echo(classification_comparison_markdown(compare_class_weights(frame, n_splits=folds, n_jobs=n_jobs)))


@train_app.command("nested-cv")
def nested(
    algorithm: str = typer.Option("logistic_regression"),
    data: Path = typer.Option(None, help=DATA_HELP),
    n_rows: int = typer.Option(3000),
    search: str = typer.Option("small", help="Search space: default, small or grid."),
    n_jobs: int = typer.Option(2),
) -> None:
    """Unbiased estimate of tune-then-fit: GridSearchCV inside each outer fold."""
    settings = _settings()
    from slipway.training.tuning import SEARCH_SPACES, nested_cv

    frame = _load("churn", data, n_rows, settings.seed)
    result = nested_cv(frame, algorithm, SEARCH_SPACES[search][algorithm], seed=settings.seed, n_jobs=n_jobs)
    typer.echo(result.model_dump_json(indent=2))
