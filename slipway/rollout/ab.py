"""A/B tests: sticky assignment, exposure/outcome logging to JSONL, a sample size fixed up front, and a
two-proportion z-test that ends in a decision report.

The unit is the user: a user counts once as exposed to the variant they were assigned, and once as converted if
any outcome of the tracked kind followed. The analysis refuses to decide before the planned sample size is
reached (peeking inflates the false-positive rate) and flags a sample ratio mismatch (broken assignment).
"""

from __future__ import annotations

import html
import json
import logging
import math
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from slipway.errors import RolloutError
from slipway.rollout.assignment import assign_variant

logger = logging.getLogger(__name__)

SRM_ALPHA = 0.001  # sample-ratio-mismatch alarm: a chi-square p-value this small means assignment is broken


class ABTestPlan(BaseModel):
    """Hypotheses and sample size, fixed before the test starts."""

    experiment: str
    control: str = "control"
    treatment: str = "treatment"
    baseline_rate: float = Field(gt=0, lt=1)
    minimum_detectable_effect: float = Field(description="absolute lift of the conversion rate worth detecting")
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    traffic_split: float = Field(0.5, gt=0, lt=1, description="share of users assigned to the treatment")
    n_per_variant: int = 0

    def weights(self) -> dict[str, float]:
        """Router weights (percent), treatment first."""
        return {self.treatment: 100.0 * self.traffic_split, self.control: 100.0 * (1.0 - self.traffic_split)}


def plan_ab_test(
    experiment: str,
    baseline_rate: float,
    minimum_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    control: str = "control",
    treatment: str = "treatment",
) -> ABTestPlan:
    """Users needed per variant (equal split) for a two-sided two-proportion z-test (Cohen's h, statsmodels)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    target = baseline_rate + minimum_detectable_effect
    if minimum_detectable_effect == 0 or not 0 < target < 1:
        raise RolloutError(
            f"baseline {baseline_rate} + effect {minimum_detectable_effect} must be a rate in (0, 1), effect != 0"
        )
    effect = abs(float(proportion_effectsize(target, baseline_rate)))
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
    return ABTestPlan(
        experiment=experiment,
        control=control,
        treatment=treatment,
        baseline_rate=baseline_rate,
        minimum_detectable_effect=minimum_detectable_effect,
        alpha=alpha,
        power=power,
        n_per_variant=math.ceil(float(n)),
    )


def assign(plan: ABTestPlan, user_id: str) -> str:
    """The user's variant: sticky across processes (sha256 of experiment and user id)."""
    return assign_variant(user_id, plan.weights(), salt=plan.experiment)


class OutcomeLogger:
    """Appends exposures and outcomes as JSON lines; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"ts": datetime.now(UTC).isoformat(), **record}) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def exposure(self, experiment: str, user_id: str, variant: str) -> None:
        self._write({"experiment": experiment, "user_id": str(user_id), "variant": variant, "event": "exposure"})

    def outcome(
        self, experiment: str, user_id: str, variant: str, event: str = "conversion", value: float = 1.0
    ) -> None:
        if event == "exposure":
            raise RolloutError("use exposure() to log exposures")
        self._write(
            {"experiment": experiment, "user_id": str(user_id), "variant": variant, "event": event, "value": value}
        )


class VariantCounts(BaseModel):
    users: int = 0
    converted: int = 0

    @property
    def rate(self) -> float:
        return self.converted / self.users if self.users else 0.0


class OutcomeCounts(BaseModel):
    """Per-variant exposed and converted users, with every skipped line counted by reason."""

    experiment: str
    event: str
    variants: dict[str, VariantCounts]
    lines: int
    rejected: dict[str, int] = Field(default_factory=dict)


def read_outcomes(path: str | Path, experiment: str, event: str = "conversion") -> OutcomeCounts:
    """Count users per variant from an outcome log; lines of other experiments are ignored."""
    exposed: dict[str, str] = {}
    converted: set[tuple[str, str]] = set()
    rejected: Counter[str] = Counter()
    lines = 0
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            lines += 1
            try:
                rec = json.loads(raw)
                if rec["experiment"] != experiment:
                    continue
                user, variant, kind = str(rec["user_id"]), str(rec["variant"]), str(rec["event"])
            except (ValueError, KeyError, TypeError):
                rejected["malformed line"] += 1
                continue
            if kind == "exposure":
                if exposed.setdefault(user, variant) != variant:
                    rejected["user exposed to two variants"] += 1
            elif kind == event:
                converted.add((user, variant))
    variants: dict[str, VariantCounts] = {}
    for variant in exposed.values():
        variants.setdefault(variant, VariantCounts()).users += 1
    for user, variant in converted:
        if exposed.get(user) != variant:
            rejected["outcome without a matching exposure"] += 1
            continue
        variants[variant].converted += 1
    return OutcomeCounts(experiment=experiment, event=event, variants=variants, lines=lines, rejected=dict(rejected))


class ABTestResult(BaseModel):
    plan: ABTestPlan
    control: VariantCounts
    treatment: VariantCounts
    lift: float
    ci_low: float
    ci_high: float
    z: float | None
    p_value: float | None
    srm_p_value: float | None
    decision: Literal["treatment wins", "control wins", "no significant difference", "continue", "invalid"]
    reason: str


def analyze_ab_test(plan: ABTestPlan, control: VariantCounts, treatment: VariantCounts) -> ABTestResult:
    """Two-sided two-proportion z-test at `plan.alpha`, once both variants reached `plan.n_per_variant` users."""
    from scipy.stats import chisquare
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    lift = treatment.rate - control.rate
    z = p = srm = None
    ci_low = ci_high = float("nan")
    if control.users and treatment.users:
        total = control.users + treatment.users
        expected = [total * (1 - plan.traffic_split), total * plan.traffic_split]
        srm = float(chisquare([control.users, treatment.users], expected).pvalue)
        successes = np.array([treatment.converted, control.converted])
        if 0 < successes.sum() < total:
            z_stat, p_val = proportions_ztest(successes, np.array([treatment.users, control.users]))
            z, p = float(z_stat), float(p_val)
        ci_low, ci_high = (
            float(x)
            for x in confint_proportions_2indep(
                treatment.converted, treatment.users, control.converted, control.users, method="wald", alpha=plan.alpha
            )
        )
    if srm is not None and srm < SRM_ALPHA:
        decision, reason = "invalid", f"sample ratio mismatch (chi-square p={srm:.2g}): fix the assignment first"
    elif min(control.users, treatment.users) < plan.n_per_variant:
        decision = "continue"
        reason = (
            f"{control.users} / {treatment.users} users of the planned {plan.n_per_variant} per variant: "
            "keep collecting, do not stop early"
        )
    elif p is None:
        decision, reason = "no significant difference", "no variation in outcomes: the test is undefined"
    elif p < plan.alpha:
        decision = "treatment wins" if lift > 0 else "control wins"
        reason = f"p={p:.3g} < alpha={plan.alpha}; lift {lift:+.4f}"
    else:
        decision, reason = "no significant difference", f"p={p:.3g} >= alpha={plan.alpha}; lift {lift:+.4f}"
    return ABTestResult(
        plan=plan,
        control=control,
        treatment=treatment,
        lift=lift,
        ci_low=ci_low,
        ci_high=ci_high,
        z=z,
        p_value=p,
        srm_p_value=srm,
        decision=decision,
        reason=reason,
    )


def analyze_outcome_log(plan: ABTestPlan, path: str | Path, event: str = "conversion") -> ABTestResult:
    counts = read_outcomes(path, plan.experiment, event)
    if counts.rejected:
        logger.warning("outcome log %s: skipped %s", path, counts.rejected)
    return analyze_ab_test(
        plan,
        counts.variants.get(plan.control, VariantCounts()),
        counts.variants.get(plan.treatment, VariantCounts()),
    )


def rejection_rate(
    plan: ABTestPlan, control_rate: float, treatment_rate: float, *, runs: int = 200, seed: int = 0
) -> float:
    """Share of `runs` seeded simulated tests (at the planned size) that reject H0: alpha under no effect, power
    under a real one."""
    rng = np.random.default_rng(seed)
    n = plan.n_per_variant
    hits = 0
    for _ in range(runs):
        control = VariantCounts(users=n, converted=int(rng.binomial(n, control_rate)))
        treatment = VariantCounts(users=n, converted=int(rng.binomial(n, treatment_rate)))
        result = analyze_ab_test(plan, control, treatment)
        hits += result.decision in ("treatment wins", "control wins")
    return hits / runs


def _rows(result: ABTestResult) -> list[tuple[str, str, str]]:
    plan = result.plan
    return [
        ("users", str(result.control.users), str(result.treatment.users)),
        ("converted", str(result.control.converted), str(result.treatment.converted)),
        ("conversion rate", f"{result.control.rate:.4f}", f"{result.treatment.rate:.4f}"),
        ("planned users", str(plan.n_per_variant), str(plan.n_per_variant)),
    ]


def render_report(result: ABTestResult, fmt: Literal["markdown", "html"] = "markdown") -> str:
    """A decision report: plan, counts, test, decision."""
    plan = result.plan
    p = "n/a" if result.p_value is None else f"{result.p_value:.4g}"
    srm = "n/a" if result.srm_p_value is None else f"{result.srm_p_value:.4g}"
    facts = [
        ("Decision", f"{result.decision}: {result.reason}"),
        (
            "Plan",
            f"two-sided two-proportion z-test, alpha {plan.alpha}, power {plan.power}, baseline "
            f"{plan.baseline_rate}, minimum detectable effect {plan.minimum_detectable_effect:+}",
        ),
        (
            "Lift (treatment - control)",
            f"{result.lift:+.4f} ({1 - plan.alpha:.0%} CI {result.ci_low:+.4f} .. {result.ci_high:+.4f})",
        ),
        ("z / p-value", f"{'n/a' if result.z is None else f'{result.z:.3f}'} / {p}"),
        ("Sample ratio check (chi-square p)", srm),
    ]
    if fmt == "markdown":
        lines = [f"# A/B test `{plan.experiment}`: {plan.treatment} vs {plan.control}", ""]
        lines += [f"- **{k}**: {v}" for k, v in facts]
        lines += ["", f"| | {plan.control} | {plan.treatment} |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in _rows(result)]
        return "\n".join(lines) + "\n"
    e = html.escape
    items = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts)
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td>{e(c)}</td></tr>" for a, b, c in _rows(result))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>A/B {e(plan.experiment)}</title></head><body>"
        f"<h1>A/B test {e(plan.experiment)}: {e(plan.treatment)} vs {e(plan.control)}</h1><ul>{items}</ul>"
        f"<table border='1'><tr><th></th><th>{e(plan.control)}</th><th>{e(plan.treatment)}</th></tr>{rows}</table>"
        "</body></html>"
    )
