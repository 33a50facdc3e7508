"""Champion/challenger: is a newly trained model better than the one in production?

Both estimators are cloned and refitted on the SAME repeated stratified k-fold splits of the current data, and
the per-fold score differences go through the corrected resampled t-test of Nadeau & Bengio (2003, "Inference
for the generalization error"): folds share training rows, so the variance of the mean difference is
`(1/J + n_test/n_train) * s^2` rather than `s^2 / J`; the naive paired t-test is far too eager to declare a winner.
The test is one-sided (H1: the challenger scores higher); the challenger is promoted only when p < alpha.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy import stats
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import RepeatedStratifiedKFold
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

METHOD = "corrected resampled t-test (Nadeau & Bengio 2003), one-sided, repeated stratified k-fold"


class ChallengerDecision(BaseModel):
    """The decision and its evidence, as stored in the registry (annotation `decision`, event
    `champion-challenger`)."""

    promote: bool
    metric: str
    champion_mean: float | None
    challenger_mean: float
    mean_diff: float | None
    t_stat: float | None
    p_value: float | None
    alpha: float
    n_splits: int
    n_repeats: int
    method: str
    reason: str


def corrected_resampled_t_test(diffs: Any, test_train_ratio: float) -> tuple[float, float]:
    """(t, one-sided p for mean > 0) of per-split differences with the Nadeau-Bengio variance correction."""
    d = np.asarray(diffs, dtype=float)
    j = d.size
    if j < 2:
        raise ValueError("the corrected t-test needs at least two resampled differences")
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    if var == 0.0:
        if mean > 0:
            return math.inf, 0.0
        return (-math.inf if mean < 0 else 0.0), 1.0
    t = mean / math.sqrt((1.0 / j + test_train_ratio) * var)
    return t, float(stats.t.sf(t, df=j - 1))


def compare_champion_challenger(
    champion: Any,
    challenger: Any,
    X: Any,
    y: Any,
    *,
    metric: str = "roc_auc",
    n_splits: int = 5,
    n_repeats: int = 2,
    alpha: float = 0.05,
    seed: int = 42,
) -> ChallengerDecision:
    """Score clones of both estimators on the same repeated stratified folds of (X, y) and decide.

    `champion=None` (nothing in production yet) promotes the challenger after scoring it alone.
    """
    target = np.asarray(y).ravel()
    scorer = get_scorer(metric)
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    rows = (lambda idx: X.iloc[idx]) if hasattr(X, "iloc") else (lambda idx: X[idx])
    champ_scores: list[float] = []
    chall_scores: list[float] = []
    with threadpool_limits(limits=1):
        for train, test in splitter.split(np.zeros((len(target), 1)), target):
            for estimator, scores in ((champion, champ_scores), (challenger, chall_scores)):
                if estimator is None:
                    continue
                model = clone(estimator).fit(rows(train), target[train])
                scores.append(float(scorer(model, rows(test), target[test])))
    chall_mean = float(np.mean(chall_scores))
    common = {"metric": metric, "alpha": alpha, "n_splits": n_splits, "n_repeats": n_repeats, "method": METHOD}
    if champion is None:
        return ChallengerDecision(
            promote=True,
            champion_mean=None,
            challenger_mean=chall_mean,
            mean_diff=None,
            t_stat=None,
            p_value=None,
            reason=f"no champion: the challenger ({metric} {chall_mean:.4f}) is promoted",
            **common,
        )
    diffs = np.asarray(chall_scores) - np.asarray(champ_scores)
    t, p = corrected_resampled_t_test(diffs, test_train_ratio=1.0 / (n_splits - 1))
    champ_mean = float(np.mean(champ_scores))
    diff = float(diffs.mean())
    promote = diff > 0 and p < alpha
    verdict = "promoted" if promote else "not promoted"
    reason = (
        f"challenger {metric} {chall_mean:.4f} vs champion {champ_mean:.4f} (diff {diff:+.4f}, t {t:.2f}, "
        f"one-sided p {p:.4f}, alpha {alpha:g}): {verdict}"
    )
    logger.info("champion/challenger: %s", reason)
    return ChallengerDecision(
        promote=promote,
        champion_mean=champ_mean,
        challenger_mean=chall_mean,
        mean_diff=diff,
        t_stat=t if math.isfinite(t) else None,
        p_value=p,
        reason=reason,
        **common,
    )


def record_decision(registry: Any, name: str, challenger_version: int, decision: ChallengerDecision) -> None:
    """Annotate the challenger version with `decision` and append a `champion-challenger` event."""
    evidence = decision.model_dump()
    registry.annotate(name, challenger_version, decision=evidence)
    registry.record_event(
        name, "champion-challenger", version=challenger_version, message=decision.reason, evidence=evidence
    )


def find_champion(registry: Any, name: str, exclude_version: int | None = None) -> Any:
    """The production version of `name`, else its latest version (other than `exclude_version`), else None."""
    production = registry.production(name)
    if production is not None and production.version != exclude_version:
        return production
    versions = [v for v in registry.list_versions(name) if v.version != exclude_version]
    return versions[-1] if versions else None


def apply_decision(registry: Any, name: str, version: int, decision: ChallengerDecision) -> str:
    """Record the decision, then set the stage: production when promoted, otherwise rejected. Returns the stage."""
    record_decision(registry, name, version, decision)
    stage = "production" if decision.promote else "rejected"
    registry.set_stage(name, version, stage, message=decision.reason, evidence={"promote": decision.promote})
    return stage
