"""Candidate planning, scoring and selection, and nested cross-validation."""

from __future__ import annotations

import pytest

from slipway.training.tuning import (
    SEARCH_SPACES,
    Candidate,
    best_per_algorithm,
    evaluate_candidate,
    nested_cv,
    plan_candidates,
    result_from_json,
    result_json,
    select_best,
)
from tests.unit.test_training import synthetic_churn

pytestmark = pytest.mark.unit


def test_plan_candidates_expands_each_grid_with_stable_ids() -> None:
    default = plan_candidates()
    assert [c.algorithm for c in default] == ["logistic_regression", "random_forest", "gradient_boosting", "svm"]
    grid = plan_candidates(search="grid")
    expected = 5 + 3 * 2 + 2 * 2 * 2 + 4
    assert len(grid) == expected
    assert len({c.id for c in grid}) == expected
    assert plan_candidates(["svm"], search="grid")[0].params == {"estimator__C": 0.01}
    assert plan_candidates(search="grid") == grid  # deterministic
    with pytest.raises(ValueError, match="search space"):
        plan_candidates(search="huge")
    with pytest.raises(ValueError, match="unknown algorithms"):
        plan_candidates(["knn"])


def test_parameter_grid_matches_scikit_learn_order() -> None:
    from sklearn.model_selection import ParameterGrid

    from slipway.training.search import parameter_grid

    for spaces in SEARCH_SPACES.values():
        for space in spaces.values():
            assert parameter_grid(space) == list(ParameterGrid(space))


def test_every_grid_parameter_is_accepted_by_its_model() -> None:
    df = synthetic_churn(120)
    for search in SEARCH_SPACES:
        for candidate in plan_candidates(search=search):
            from slipway.training.churn import build_pipeline

            build_pipeline(candidate.algorithm, params=candidate.params)  # raises on a bad name
    assert len(df) == 120


def test_evaluate_and_select_the_best_candidate() -> None:
    df = synthetic_churn(300, seed=5)
    candidates = [
        Candidate(id="lr-strong", algorithm="logistic_regression", params={"C": 1.0}),
        Candidate(id="lr-crippled", algorithm="logistic_regression", params={"C": 1e-5}),
        Candidate(id="svm-0", algorithm="svm"),
    ]
    results = [evaluate_candidate(df, c, n_splits=3, n_repeats=1, seed=1) for c in candidates]
    round_tripped = [result_from_json(result_json(r)) for r in results]
    assert round_tripped[0].cv.summary == results[0].cv.summary
    by_id = {r.candidate.id: r.cv.summary["roc_auc"].mean for r in results}
    best = select_best(round_tripped)
    assert by_id[best.candidate.id] == max(by_id.values())
    per_algorithm = best_per_algorithm(results)
    assert sorted(r.candidate.algorithm for r in per_algorithm) == ["logistic_regression", "svm"]
    with pytest.raises(ValueError):
        select_best([])


def test_nested_cv_scores_each_outer_fold_with_an_inner_search() -> None:
    df = synthetic_churn(300, seed=6)
    result = nested_cv(df, "logistic_regression", {"C": [1e-4, 1.0]}, outer_splits=3, inner_splits=2, seed=2)
    assert len(result.outer_scores) == 3
    assert all(p["C"] in (1e-4, 1.0) for p in result.chosen_params)
    assert result.summary.mean > 0.75
