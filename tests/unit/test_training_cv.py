"""The shared cross-validation protocol: stratification, per-fold metrics, intervals and thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression

from slipway.evaluation.classification import ThresholdPolicy, choose_threshold
from slipway.evaluation.stats import summarize
from slipway.training.churn import compare_algorithms, compare_class_weights
from slipway.training.cv import cross_validate_classifier, stratified_splits
from tests.unit.test_training import synthetic_churn

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("rate", [0.05, 0.265])
def test_every_stratified_fold_keeps_the_class_rate_within_one_point(rate: float) -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2003) < rate).astype(int)
    overall = y.mean()
    splits = stratified_splits(y, n_splits=5, n_repeats=3, seed=11)
    assert len(splits) == 15
    for repeat in range(3):
        tests = [te for r, _, _, te in splits if r == repeat]
        assert sorted(np.concatenate(tests).tolist()) == list(range(len(y)))  # a partition per repeat
    for _, _, train, test in splits:
        assert abs(y[test].mean() - overall) <= 0.01
        assert abs(y[train].mean() - overall) <= 0.01


def test_cross_validate_classifier_reports_consistent_folds() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(0, 1, 400) > 0.8).astype(int)
    cv = cross_validate_classifier(LogisticRegression(), x, y, n_splits=4, n_repeats=2, seed=3)
    assert len(cv.folds) == 8
    assert cv.summary["roc_auc"].mean == pytest.approx(np.mean(cv.scores("roc_auc")))
    assert cv.summary["roc_auc"].sd == pytest.approx(np.std(cv.scores("roc_auc"), ddof=1))
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
        s = cv.summary[metric]
        assert 0.0 <= s.ci_low <= s.mean <= s.ci_high <= 1.0
    assert np.asarray(cv.confusion_matrix).sum() == 400  # first repeat covers every row once
    assert all(sum(map(sum, f.confusion_matrix)) == f.n_test for f in cv.folds)
    # Each fold's threshold comes from the other folds' out-of-fold scores of the same repeat.
    oof = np.asarray(cv.oof_scores)
    splits = stratified_splits(y, 4, 2, 3)
    for fold, (repeat, _, _, test) in zip(cv.folds, splits, strict=True):
        others = np.setdiff1d(np.arange(400), test)
        assert fold.threshold == pytest.approx(choose_threshold(y[others], oof[repeat, others]))
    assert 0.0 < cv.threshold < 1.0


def test_choose_threshold_for_f1_and_for_cost() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    s = np.linspace(0.05, 0.95, 10)
    assert choose_threshold(y, s) == pytest.approx(s[4])  # everything from the first positive up: F1 = 10/11
    cheap_misses = choose_threshold(y, s, ThresholdPolicy("cost", cost_fp=5, cost_fn=1))
    costly_misses = choose_threshold(y, s, ThresholdPolicy("cost", cost_fp=1, cost_fn=5))
    assert costly_misses < cheap_misses
    with pytest.raises(ValueError, match="objective"):
        ThresholdPolicy("accuracy")


def test_summary_interval_matches_scipy_and_the_correction_widens_it() -> None:
    values = [0.80, 0.82, 0.85, 0.83, 0.81]
    plain = summarize(values)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert (plain.ci_low, plain.ci_high) == pytest.approx((low, high))
    corrected = summarize(values, test_train_ratio=0.25)
    assert corrected.ci_high - corrected.ci_low > plain.ci_high - plain.ci_low
    clipped = summarize([0.99, 1.0, 0.97], bounds=(0.0, 1.0))
    assert clipped.ci_high == 1.0
    assert summarize([0.5]).sd == 0.0


def test_algorithms_and_class_weights_share_the_same_folds() -> None:
    df = synthetic_churn(300, seed=3)
    results = compare_algorithms(df, ("logistic_regression", "svm"), n_splits=3, n_repeats=1, seed=9)
    assert results[0].summary["roc_auc"].mean >= results[1].summary["roc_auc"].mean
    assert [f.test_positive_rate for f in results[0].folds] == [f.test_positive_rate for f in results[1].folds]
    weights = compare_class_weights(df, ("logistic_regression",), n_splits=3, seed=9)
    assert [r.params["class_weight"] for r in weights] == ["balanced", "none"]
    assert [f.n_test for f in weights[0].folds] == [f.n_test for f in weights[1].folds]
