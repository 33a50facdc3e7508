"""Housing data (load, verified download, synthetic stand-in), regression CV and the feature ablation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.data.housing import (
    HOUSING_COLUMNS,
    HOUSING_TARGET,
    download_housing,
    generate_synthetic_housing,
    load_housing_csv,
)
from slipway.errors import DataValidationError, IntegrityError
from slipway.storage import sha256_file
from slipway.training.ablation import ABLATIONS, HOUSING_ONLY, ablate_churn, ablate_housing
from slipway.training.features import add_housing_ratios
from slipway.training.housing import REGRESSORS, build_housing_pipeline, compare_regressors, cross_validate_housing
from tests.unit.test_training import synthetic_churn

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def housing() -> pd.DataFrame:
    return generate_synthetic_housing(600, seed=3)


def test_synthetic_housing_looks_like_the_real_file(housing: pd.DataFrame) -> None:
    assert list(housing.columns) == HOUSING_COLUMNS
    assert housing[HOUSING_TARGET].between(14_999, 500_001).all()
    assert 0 < housing["total_bedrooms"].isna().sum() < 0.05 * len(housing)
    assert set(housing["ocean_proximity"]) <= {"<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"}
    pd.testing.assert_frame_equal(housing, generate_synthetic_housing(600, seed=3))


def test_load_and_verified_download(tmp_path: Path, housing: pd.DataFrame) -> None:
    src = tmp_path / "src.csv"
    housing.to_csv(src, index=False)
    loaded = load_housing_csv(src)
    assert len(loaded) == 600 and loaded["total_bedrooms"].isna().sum() == housing["total_bedrooms"].isna().sum()
    got = download_housing(tmp_path / "dl", url=src.as_uri(), sha256=sha256_file(src))
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(IntegrityError, match="sha256"):
        download_housing(tmp_path / "bad.csv", url=src.as_uri(), sha256="0" * 64)
    assert not (tmp_path / "bad.csv").exists()
    housing.drop(columns=["households"]).to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(DataValidationError, match="households"):
        load_housing_csv(tmp_path / "broken.csv")


def test_ratio_features_never_divide_by_zero() -> None:
    frame = pd.DataFrame(
        {"total_rooms": [10.0, 5.0], "households": [2.0, 0.0], "total_bedrooms": [2.0, 1.0], "population": [4.0, 3.0]}
    )
    out = add_housing_ratios(frame)
    assert out["rooms_per_household"].tolist()[0] == 5.0
    assert np.isnan(out["rooms_per_household"].iloc[1])
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()


def test_housing_pipeline_handles_missing_values_and_unknown_categories(housing: pd.DataFrame) -> None:
    x = housing.drop(columns=[HOUSING_TARGET])
    pipe = build_housing_pipeline("linear_regression").fit(x, housing[HOUSING_TARGET])
    row = x.iloc[[0]].copy()
    row["total_bedrooms"] = np.nan
    row["ocean_proximity"] = "ON THE MOON"
    assert np.isfinite(pipe.predict(row)).all()


def test_regression_cv_reports_mse_and_rmse_per_fold(housing: pd.DataFrame) -> None:
    results = compare_regressors(housing, REGRESSORS, n_splits=3, seed=1)
    assert len(results) == 3
    assert results[0].summary["rmse"].mean <= results[-1].summary["rmse"].mean
    for r in results:
        assert len(r.folds) == 3 and sum(f.n_test for f in r.folds) == len(housing)
        for f in r.folds:
            assert f.rmse == pytest.approx(np.sqrt(f.mse))
        assert r.summary["rmse"].mean < 60_000  # noise sd is 30k; a working model gets near it
        assert r.summary["rmse"].ci_low <= r.summary["rmse"].mean <= r.summary["rmse"].ci_high
    raw = cross_validate_housing(housing, "linear_regression", n_splits=3, seed=1)
    assert raw.summary["mse"].mean == pytest.approx(np.mean(raw.scores("mse")))


def test_ablation_tables_have_a_row_per_step_and_a_zero_baseline(housing: pd.DataFrame) -> None:
    churn_rows = ablate_churn(synthetic_churn(200), ("logistic_regression",), n_splits=3)
    assert [r.step for r in churn_rows] == list(ABLATIONS)
    assert churn_rows[0].delta == 0.0 and all(r.metric == "roc_auc" for r in churn_rows)
    housing_rows = ablate_housing(housing, ("linear_regression",), n_splits=3)
    assert [r.step for r in housing_rows] == [*ABLATIONS, *HOUSING_ONLY]
    by_step = {r.step: r for r in housing_rows}
    # Scaling is a no-op for ordinary least squares: same RMSE up to rounding.
    assert by_step["no scaling"].delta == pytest.approx(0.0, abs=1.0)
    # The synthetic value depends on rooms per household: dropping the ratio makes the linear model worse.
    assert by_step["no ratio features"].delta > 0
