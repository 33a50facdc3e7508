"""`housing-cv`: k-fold cross-validation of linear regression, random forest and gradient boosting on California
housing values, one task per model (ParallelFor), compared in one table (Collected)."""

from kfp import dsl

from components.housing import compare_regressors, cross_validate_regressor, prepare_housing

REGRESSOR_PARALLELISM = 3


@dsl.pipeline(
    name="housing-cv",
    description="Cross-validate three regressors on California housing values (MSE and RMSE per fold, "
    "mean ± sd) and compare them.",
)
def housing_cv(
    source_uri: str = "",
    n_rows: int = 2000,
    seed: int = 42,
    n_splits: int = 5,
    n_repeats: int = 1,
    algorithms: list = ["linear_regression", "random_forest", "gradient_boosting"],  # noqa: B006
) -> None:
    data = prepare_housing(source_uri=source_uri, n_rows=n_rows, seed=seed).set_display_name("prepare-housing")
    with dsl.ParallelFor(algorithms, parallelism=REGRESSOR_PARALLELISM) as algorithm:
        cv = cross_validate_regressor(
            data=data.outputs["data"], algorithm=algorithm, n_splits=n_splits, n_repeats=n_repeats, seed=seed
        ).set_display_name("cross-validate-regressor")
    compare_regressors(results=dsl.Collected(cv.output)).set_display_name("compare-regressors")
