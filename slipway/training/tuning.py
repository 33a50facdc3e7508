"""Hyperparameter search in two forms.

- Fan-out (the pipeline): `plan_candidates` (`slipway.training.search`, ParameterGrid order) expands a search
  space into independent candidates (one KFP task each, `dsl.ParallelFor`), `evaluate_candidate` scores one
  with the shared repeated stratified k-fold on the TRAINING part, `select_best` picks the winner. The held-out
  test part never takes part in the search, so the winner's test metrics are an unbiased estimate.
- `nested_cv` (library/CLI): an inner `GridSearchCV` inside every outer fold, for an unbiased estimate of the
  whole tune-then-fit procedure when there is no held-out part to spare.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from threadpoolctl import threadpool_limits

from slipway.evaluation.stats import MetricSummary, summarize
from slipway.training.churn import build_pipeline, cross_validate_churn, split_xy
from slipway.training.cv import ClassificationCV
from slipway.training.search import SEARCH_SPACES, Candidate, plan_candidates

logger = logging.getLogger(__name__)


class CandidateResult(BaseModel):
    """A candidate with its cross-validation on the training part."""

    candidate: Candidate
    cv: ClassificationCV


def evaluate_candidate(
    df: pd.DataFrame, candidate: Candidate, *, n_splits: int = 5, n_repeats: int = 2, seed: int = 42, n_jobs: int = 1
) -> CandidateResult:
    """Score one candidate on `df` (the training part) with the shared protocol; every candidate gets the same
    folds because the folds depend only on the labels and `seed`."""
    cv = cross_validate_churn(
        df,
        candidate.algorithm,
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
        class_weight=candidate.class_weight,
        params=candidate.params,
        n_jobs=n_jobs,
    )
    cv.name = candidate.id
    return CandidateResult(candidate=candidate, cv=cv)


def select_best(results: list[CandidateResult], metric: str = "roc_auc") -> CandidateResult:
    """Highest mean `metric`; ties go to the candidate listed first (a stable, documented order)."""
    if not results:
        raise ValueError("no candidate results to select from")
    return max(results, key=lambda r: (r.cv.summary[metric].mean, -results.index(r)))


def best_per_algorithm(results: list[CandidateResult], metric: str = "roc_auc") -> list[CandidateResult]:
    """The best candidate of each algorithm, best first: the model comparison table."""
    best: dict[str, CandidateResult] = {}
    for r in results:
        current = best.get(r.candidate.algorithm)
        if current is None or r.cv.summary[metric].mean > current.cv.summary[metric].mean:
            best[r.candidate.algorithm] = r
    return sorted(best.values(), key=lambda r: -r.cv.summary[metric].mean)


def candidate_json(candidate: Candidate) -> str:
    return candidate.model_dump_json()


def result_json(result: CandidateResult) -> str:
    return json.dumps({"candidate": result.candidate.model_dump(), "cv": result.cv.model_dump()})


def result_from_json(text: str) -> CandidateResult:
    return CandidateResult.model_validate_json(text)


class NestedCVResult(BaseModel):
    """Outer-fold scores of the whole tune-then-fit procedure, and what the inner search chose each time."""

    algorithm: str
    metric: str
    outer_scores: list[float]
    chosen_params: list[dict[str, Any]]
    summary: MetricSummary


def nested_cv(
    df: pd.DataFrame,
    algorithm: str,
    space: dict[str, list[Any]],
    *,
    outer_splits: int = 5,
    inner_splits: int = 3,
    seed: int = 42,
    class_weight: str = "balanced",
    n_jobs: int = 1,
) -> NestedCVResult:
    """`GridSearchCV` (ROC-AUC) inside each outer stratified fold; each outer test fold is scored by a model whose
    parameters were chosen without it."""
    x, y = split_xy(df)
    grid = {f"classifier__{k}": v for k, v in space.items()}
    outer = StratifiedKFold(n_splits=outer_splits, shuffle=True, random_state=seed)
    scores: list[float] = []
    chosen: list[dict[str, Any]] = []
    for train, test in outer.split(x, y):
        search = GridSearchCV(
            build_pipeline(algorithm, seed, class_weight=class_weight),
            grid,
            scoring="roc_auc",
            cv=StratifiedKFold(n_splits=inner_splits, shuffle=True, random_state=seed),
            n_jobs=n_jobs,
            refit=True,
        )
        with threadpool_limits(limits=1):
            search.fit(x.iloc[train], y[train])
            scores.append(float(search.score(x.iloc[test], y[test])))
        chosen.append({k.removeprefix("classifier__"): v for k, v in search.best_params_.items()})
    summary = summarize(scores, test_train_ratio=1.0 / (outer_splits - 1))
    logger.info("nested CV %s: ROC-AUC %s", algorithm, summary.format())
    return NestedCVResult(
        algorithm=algorithm, metric="roc_auc", outer_scores=scores, chosen_params=chosen, summary=summary
    )


__all__ = [
    "SEARCH_SPACES",
    "Candidate",
    "CandidateResult",
    "NestedCVResult",
    "best_per_algorithm",
    "evaluate_candidate",
    "nested_cv",
    "plan_candidates",
    "select_best",
]
