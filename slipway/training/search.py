"""Search spaces and candidates, importable without scikit-learn (the KFP task that plans the fan-out only
needs these, and importing scikit-learn costs seconds per task)."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, Field

ALGORITHMS = ("logistic_regression", "random_forest", "gradient_boosting", "svm")


def parameter_grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of `space`, keys sorted and the last key varying fastest (`sklearn.model_selection.
    ParameterGrid`'s order for one dict; a unit test holds the two equal)."""
    keys = sorted(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


# Small grids around the defaults; keys are classifier parameters as `Pipeline.set_params` sees them below
# the `classifier__` prefix.
SEARCH_SPACES: dict[str, dict[str, dict[str, list[Any]]]] = {
    "default": {a: {} for a in ALGORITHMS},
    "small": {
        "logistic_regression": {"C": [0.1, 1.0]},
        "random_forest": {"min_samples_leaf": [5, 20]},
        "gradient_boosting": {"learning_rate": [0.04, 0.08]},
        "svm": {"estimator__C": [0.01, 0.1]},
    },
    "grid": {
        "logistic_regression": {"C": [0.03, 0.1, 0.3, 1.0, 3.0]},
        "random_forest": {"min_samples_leaf": [5, 10, 20], "max_features": [0.3, "sqrt"]},
        "gradient_boosting": {"learning_rate": [0.04, 0.08], "max_leaf_nodes": [6, 12], "min_samples_leaf": [20, 40]},
        "svm": {"estimator__C": [0.01, 0.05, 0.2, 1.0]},
    },
}


class Candidate(BaseModel):
    """One configuration to score: an algorithm, its class weighting and classifier parameters."""

    id: str
    algorithm: str
    class_weight: str = "balanced"
    params: dict[str, Any] = Field(default_factory=dict)


def plan_candidates(
    algorithms: list[str] | tuple[str, ...] = ALGORITHMS, search: str = "default", class_weight: str = "balanced"
) -> list[Candidate]:
    """Every grid point of `search` for each algorithm, in a stable order with stable ids."""
    if search not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {search!r}: choose one of {', '.join(SEARCH_SPACES)}")
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithms {unknown}: choose from {', '.join(ALGORITHMS)}")
    out: list[Candidate] = []
    for algorithm in algorithms:
        space = SEARCH_SPACES[search].get(algorithm, {})
        for i, params in enumerate(parameter_grid(space)):
            out.append(Candidate(id=f"{algorithm}-{i}", algorithm=algorithm, class_weight=class_weight, params=params))
    return out
