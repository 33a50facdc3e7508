"""A/B planning, outcome logs, the z-test decision and its error rates over seeded simulations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy.stats import norm

from slipway.errors import RolloutError
from slipway.rollout.ab import (
    OutcomeLogger,
    VariantCounts,
    analyze_ab_test,
    analyze_outcome_log,
    assign,
    plan_ab_test,
    read_outcomes,
    rejection_rate,
    render_report,
)

pytestmark = pytest.mark.unit

ALPHA, POWER = 0.05, 0.80


def test_sample_size_matches_the_closed_form() -> None:
    plan = plan_ab_test("exp", 0.10, 0.03, alpha=ALPHA, power=POWER)
    h = 2 * math.asin(math.sqrt(0.13)) - 2 * math.asin(math.sqrt(0.10))
    expected = 2 * ((norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)) / h) ** 2  # var of 2·asin√p is 1/n per arm
    assert plan.n_per_variant == math.ceil(expected)
    assert plan_ab_test("exp", 0.10, 0.06).n_per_variant < plan.n_per_variant  # bigger effect, fewer users
    with pytest.raises(RolloutError):
        plan_ab_test("exp", 0.98, 0.05)


def test_false_positive_rate_and_power_over_200_seeded_runs() -> None:
    plan = plan_ab_test("sim", 0.10, 0.03, alpha=ALPHA, power=POWER)
    no_effect = rejection_rate(plan, 0.10, 0.10, runs=200, seed=1)
    real_effect = rejection_rate(plan, 0.10, 0.13, runs=200, seed=2)
    assert no_effect <= ALPHA + 0.03  # margin ~2 standard errors of a rate measured on 200 runs
    assert real_effect >= POWER - 0.07


def test_decisions() -> None:
    plan = plan_ab_test("exp", 0.10, 0.03)
    n = plan.n_per_variant
    win = analyze_ab_test(
        plan, VariantCounts(users=n, converted=int(0.10 * n)), VariantCounts(users=n, converted=int(0.14 * n))
    )
    assert win.decision == "treatment wins" and win.p_value < 0.05 and win.ci_low > 0
    lose = analyze_ab_test(
        plan, VariantCounts(users=n, converted=int(0.14 * n)), VariantCounts(users=n, converted=int(0.10 * n))
    )
    assert lose.decision == "control wins" and lose.lift < 0
    flat = analyze_ab_test(
        plan, VariantCounts(users=n, converted=int(0.10 * n)), VariantCounts(users=n, converted=int(0.101 * n))
    )
    assert flat.decision == "no significant difference" and flat.p_value > 0.05
    early = analyze_ab_test(plan, VariantCounts(users=100, converted=5), VariantCounts(users=100, converted=30))
    assert early.decision == "continue" and "do not stop early" in early.reason
    skewed = analyze_ab_test(plan, VariantCounts(users=n, converted=100), VariantCounts(users=n // 2, converted=50))
    assert skewed.decision == "invalid" and "sample ratio mismatch" in skewed.reason


def test_outcome_log_counts_users_once_and_accounts_for_bad_lines(tmp_path: Path) -> None:
    plan = plan_ab_test("exp", 0.10, 0.03)
    log = OutcomeLogger(tmp_path / "ab" / "outcomes.jsonl")
    users = [f"user{i}" for i in range(40)]
    for user in users:
        variant = assign(plan, user)
        assert variant == assign(plan, user)
        log.exposure("exp", user, variant)
        log.exposure("exp", user, variant)  # repeat exposures count once
        if user.endswith(("1", "2")):
            log.outcome("exp", user, variant, "conversion")
            log.outcome("exp", user, variant, "conversion")
    log.exposure("other-experiment", "user0", "control")
    log.outcome("exp", "ghost", "control")  # no exposure
    with open(log.path, "a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"experiment": "exp", "user_id": "user0", "variant": "zzz", "event": "exposure"}) + "\n")
    counts = read_outcomes(log.path, "exp")
    total = sum(v.users for v in counts.variants.values())
    assert total == 40
    assert sum(v.converted for v in counts.variants.values()) == 8
    assert counts.rejected == {
        "malformed line": 1,
        "user exposed to two variants": 1,
        "outcome without a matching exposure": 1,
    }
    result = analyze_outcome_log(plan, log.path)
    assert result.decision == "continue"
    with pytest.raises(RolloutError):
        log.outcome("exp", "u", "control", "exposure")


def test_report_markdown_and_html() -> None:
    plan = plan_ab_test("recsys-v2", 0.2, 0.05)
    n = plan.n_per_variant
    result = analyze_ab_test(
        plan, VariantCounts(users=n, converted=int(0.2 * n)), VariantCounts(users=n, converted=int(0.3 * n))
    )
    md = render_report(result)
    assert md.startswith("# A/B test `recsys-v2`") and "treatment wins" in md and f"| users | {n} | {n} |" in md
    assert "alpha 0.05, power 0.8" in md
    page = render_report(result, "html")
    assert page.startswith("<!doctype html>") and "<table" in page and "treatment wins" in page
