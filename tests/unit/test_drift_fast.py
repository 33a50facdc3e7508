"""The profile-based drift test: Evidently's verdicts, the shifted columns exactly, and no false alarms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import FEATURE_COLUMNS, TARGET_COLUMN
from slipway.errors import DataValidationError
from slipway.monitoring.drift import run_drift_report
from slipway.monitoring.fast_drift import fast_drift
from slipway.monitoring.profile import (
    PREDICTION_COLUMN,
    ReferenceProfile,
    build_profile,
    stratified_sample,
    write_reference_files,
)
from slipway.monitoring.simulate import shift_churn, typed_churn_frame

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return typed_churn_frame(4000, seed=1, with_target=True)


@pytest.fixture(scope="module")
def model(reference: pd.DataFrame):  # type: ignore[no-untyped-def]
    from slipway.training.churn import train_churn

    return train_churn(reference, cv_folds=1).pipeline


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame, model, tmp_path_factory) -> ReferenceProfile:  # type: ignore[no-untyped-def]
    files = write_reference_files(
        reference, FEATURE_COLUMNS, tmp_path_factory.mktemp("ref"), model=model, target=TARGET_COLUMN
    )
    # Through JSON, as the check reads it from the registry.
    return ReferenceProfile.load(files["reference_profile.json"])


def _with_predictions(frame: pd.DataFrame, model) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return frame.assign(**{PREDICTION_COLUMN: model.predict_proba(frame[FEATURE_COLUMNS])[:, 1]})


@pytest.mark.parametrize("n_reference", [4000, 600])
def test_fast_drift_agrees_with_evidently_per_column(tmp_path: Path, n_reference: int) -> None:
    """Same test, same score, same verdict as Evidently's DataDriftPreset, in both of its regimes
    (distances above 1000 reference rows, p-values below)."""
    ref = typed_churn_frame(n_reference, seed=11)
    cur = typed_churn_frame(1500, seed=12)
    cur = shift_churn(cur, seed=3, charges=1.12, month_to_month=0.5)
    cur["tenure"] = (cur["tenure"] * 0.8).astype(int)
    cur.loc[cur.index[:700], "PaymentMethod"] = "Electronic check"
    ours = fast_drift(build_profile(ref, FEATURE_COLUMNS), cur)
    theirs = run_drift_report(ref, cur, tmp_path, columns=FEATURE_COLUMNS)
    assert set(ours.columns) == set(theirs.columns) == set(FEATURE_COLUMNS)
    for col in FEATURE_COLUMNS:
        a, b = ours.columns[col], theirs.columns[col]
        assert a["drifted"] == b["drifted"], (col, a, b)
        if a["method"] == "wasserstein":  # integrated on a 1000-point quantile grid
            assert a["score"] == pytest.approx(b["score"], abs=2e-3), col
        else:  # counts-based and exact-value tests are exact
            assert a["score"] == pytest.approx(b["score"], rel=1e-6, abs=1e-12), col
    assert ours.drifted_columns == theirs.drifted_columns
    assert {"MonthlyCharges", "Contract", "tenure", "PaymentMethod"} <= set(ours.drifted_columns)
    expected = {"wasserstein", "jensenshannon"} if n_reference > 1000 else {"ks", "chisquare", "z"}
    assert {c["method"] for c in ours.columns.values()} == expected


def test_drift_found_in_exactly_the_shifted_columns(profile: ReferenceProfile, model) -> None:  # type: ignore[no-untyped-def]
    current = _with_predictions(shift_churn(typed_churn_frame(2000, seed=2), seed=5), model)
    summary = fast_drift(profile, current)
    assert summary.drifted_columns == ["Contract", "MonthlyCharges"]
    assert summary.drift_share == pytest.approx(2 / 19)
    assert summary.dataset_drift is False  # 2 of 19 is below the 0.5 share ...
    assert summary.prediction_drift is not None and summary.prediction_drift["drifted"] is True  # ... the model moved
    assert summary.columns["MonthlyCharges"]["psi"] > 0.1
    unshifted = [c for c in FEATURE_COLUMNS if c not in ("Contract", "MonthlyCharges")]
    assert max(summary.columns[c]["score"] for c in unshifted) < 0.05


def test_no_false_alarm_over_twenty_unshifted_windows(profile: ReferenceProfile, model) -> None:  # type: ignore[no-untyped-def]
    """At the default window floor (2000 rows, `monitoring_min_rows`) and Evidently's 0.1 distance threshold.

    With 1000-row windows the normed Wasserstein distance of the skewed TotalCharges reaches ≈0.11 by chance
    alone, which is why the floor is 2000."""
    from slipway.settings import Settings

    rows = Settings().monitoring_min_rows
    assert rows == 2000
    worst = 0.0
    for seed in range(100, 120):
        window = _with_predictions(typed_churn_frame(rows, seed=seed), model)
        summary = fast_drift(profile, window)
        assert summary.drifted_columns == [], (seed, summary.drifted_columns)
        assert summary.dataset_drift is False
        assert summary.prediction_drift is not None and summary.prediction_drift["drifted"] is False, seed
        worst = max(worst, *(c["score"] for c in summary.columns.values()), summary.prediction_drift["score"])
    assert worst < 0.09  # every score stayed clearly under the 0.1 distance threshold


def test_profile_round_trip_and_size(profile: ReferenceProfile, reference: pd.DataFrame) -> None:
    assert profile.n_rows == 4000 and profile.feature_names == FEATURE_COLUMNS
    tenure = profile.columns["tenure"]
    assert tenure.kind == "numerical" and len(tenure.quantiles) == 1000 and tenure.values is None
    assert tenure.mean == pytest.approx(reference["tenure"].mean())
    assert sum(tenure.psi_reference) == pytest.approx(1.0)
    contract = profile.columns["Contract"]
    assert contract.kind == "categorical" and sum(n for _, n in contract.value_counts) == 4000
    assert profile.prediction is not None and 0.0 <= profile.prediction.mean <= 1.0  # type: ignore[operator]
    assert len(profile.model_dump_json()) < 1_000_000


def test_bad_input_is_refused(profile: ReferenceProfile) -> None:
    current = typed_churn_frame(100, seed=3)
    with pytest.raises(DataValidationError, match="not in current"):
        fast_drift(profile, current.drop(columns=["tenure"]))
    with pytest.raises(DataValidationError, match="empty"):
        fast_drift(profile, current.iloc[:0])
    with pytest.raises(DataValidationError, match="numerical in the reference"):
        fast_drift(profile, current.assign(tenure=current["tenure"].astype(str)), columns=["tenure"])
    with pytest.raises(DataValidationError, match="no finite values"):
        fast_drift(profile, current.assign(tenure=np.nan), columns=["tenure"])
    with pytest.raises(DataValidationError):
        build_profile(current.iloc[:0])


def test_stratified_sample_keeps_strata_shares() -> None:
    frame = pd.DataFrame({"y": [0] * 900 + [1] * 100, "x": np.arange(1000)})
    sample = stratified_sample(frame, 200, by="y", seed=1)
    assert len(sample) == 200 and (sample["y"] == 1).sum() == 20
    assert len(stratified_sample(frame, 5000, by="y")) == 1000


def test_report_columns_puts_drifted_then_closest_first(profile: ReferenceProfile, model) -> None:  # type: ignore[no-untyped-def]
    from slipway.monitoring.fast_drift import report_columns

    current = _with_predictions(shift_churn(typed_churn_frame(2000, seed=2), seed=5), model)
    summary = fast_drift(profile, current)
    shown = report_columns(summary, limit=5)
    assert shown[:2] == ["MonthlyCharges", "Contract"]  # the larger distance first
    assert len(shown) == 5 and len(set(shown)) == 5
    ratio = [summary.columns[c]["score"] / summary.columns[c]["threshold"] for c in shown]
    assert ratio == sorted(ratio, reverse=True)
    assert report_columns(summary, limit=100) == sorted(
        summary.columns, key=lambda c: -summary.columns[c]["score"] / summary.columns[c]["threshold"]
    )
