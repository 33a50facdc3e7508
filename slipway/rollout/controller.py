"""Metric-gated canary: shift traffic in steps, compare canary with primary at each step, then promote, hold or
roll back, and write every step and the decision (with its evidence) to the registry history.

    controller = CanaryController(LocalRouterBackend(router), CanaryPolicy(), registry=registry, model_name="churn")
    result = controller.run(canary_version=3, drive=send_traffic)   # drive(percent) sends or waits for traffic

At each step the canary must show, against the primary's traffic of the same window (or, when the primary gets
no traffic, e.g. at 100 %, against everything the primary served earlier in the rollout):
- an error rate at most `max_error_rate_increase` above the primary's;
- a p99 latency not above `max_p99_ratio` x the primary's, unless the increase is under `min_p99_increase_ms`;
- a prediction distribution within `max_psi` (PSI on predicted probabilities, or the KS statistic with
  `shift_test="ks"`); a shift fails only when the two-sample KS test is also significant at `shift_alpha`, because
  PSI on a few dozen predictions is biased upwards (about bins/n) even when nothing changed;
- once delayed labels arrived (`min_labels` on both sides), an accuracy no more than `max_accuracy_drop` lower, or a
  drop that a one-sided two-proportion z-test does not find significant at `accuracy_alpha`.
Too little traffic extends the step (`max_extensions` more drives); still too little holds the rollout.
A failed analysis rolls back once `failure_threshold` analyses have failed in the rollout; below that, the step
is judged again on a fresh window, so one noisy window (a GC pause, a busy node) does not sink a healthy canary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from slipway.errors import RolloutError
from slipway.rollout.analysis import (
    Check,
    VariantSummary,
    VariantWindow,
    accuracy_drop_pvalue,
    ks_test,
    population_stability_index,
)
from slipway.rollout.backends import KServeBackend, LocalRouterBackend, PrometheusMetrics

logger = logging.getLogger(__name__)

Decision = Literal["promoted", "rolled_back", "held"]


class CanaryPolicy(BaseModel):
    """Steps and gates of a canary rollout."""

    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    min_requests: int = Field(100, description="canary (and baseline) requests a step needs before judging")
    max_extensions: int = Field(3, description="extra drives of a step with too little traffic before holding")
    failure_threshold: int = Field(
        1, ge=1, description="failed analyses in a rollout before it rolls back; below it a step is judged again"
    )
    step_wait_s: float = Field(60.0, description="wait per step when no drive() is given (cluster)")
    max_error_rate_increase: float = 0.02
    max_p99_ratio: float = 1.5
    min_p99_increase_ms: float = 25.0
    shift_test: Literal["psi", "ks"] = "psi"
    max_psi: float = 0.2
    max_ks_statistic: float = 0.2
    shift_alpha: float = Field(0.01, description="a shift fails only if the KS test is also significant at this")
    min_predictions: int = 50
    max_accuracy_drop: float = 0.03
    accuracy_alpha: float = Field(0.01, description="an accuracy drop fails only if also significant at this")
    min_labels: int = 50

    def model_post_init(self, __context: Any) -> None:
        if not self.steps or any(not 0 < s <= 100 for s in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps must be increasing percentages in (0, 100], got {self.steps}")


class StepEvidence(BaseModel):
    percent: int
    attempt: int
    verdict: Literal["pass", "fail", "insufficient"]
    baseline: Literal["primary-window", "primary-cumulative"]
    primary: VariantSummary
    canary: VariantSummary
    checks: list[Check]


class RolloutResult(BaseModel):
    model: str
    canary_version: int
    decision: Decision
    reason: str
    final_percent: int
    steps: list[StepEvidence]
    started_at: datetime
    finished_at: datetime


class RolloutBackend(Protocol):
    """Where traffic is split and measured: the local router, or a KServe InferenceService plus Prometheus."""

    def start(self, canary_version: int) -> None: ...
    def set_canary_percent(self, percent: int) -> None: ...
    def begin_window(self) -> None: ...
    def observe(self) -> tuple[VariantWindow, VariantWindow]: ...  # (primary, canary) since begin_window
    def promote(self) -> None: ...
    def rollback(self) -> None: ...


def evaluate_step(
    primary: VariantWindow, canary: VariantWindow, policy: CanaryPolicy
) -> tuple[Literal["pass", "fail", "insufficient"], list[Check]]:
    """Compare one step's canary window with its baseline; any failed check fails the step."""
    checks: list[Check] = []
    if canary.requests < policy.min_requests or primary.requests < policy.min_requests:
        detail = f"canary {canary.requests}, baseline {primary.requests} requests; need {policy.min_requests} each"
        return "insufficient", [Check(name="traffic", status="skipped", detail=detail)]
    increase = canary.error_rate - primary.error_rate
    checks.append(
        Check(
            name="error_rate",
            status="fail" if increase > policy.max_error_rate_increase else "pass",
            value=round(increase, 6),
            threshold=policy.max_error_rate_increase,
            detail=f"canary {canary.error_rate:.4f} vs primary {primary.error_rate:.4f}",
        )
    )
    c99, p99 = canary.p99_s, primary.p99_s
    if c99 is None or p99 is None:
        checks.append(Check(name="p99_latency", status="skipped", detail="no latency measurements"))
    else:
        ratio = c99 / p99 if p99 > 0 else float("inf")
        slower = ratio > policy.max_p99_ratio and (c99 - p99) * 1000.0 > policy.min_p99_increase_ms
        checks.append(
            Check(
                name="p99_latency",
                status="fail" if slower else "pass",
                value=round(ratio, 4),
                threshold=policy.max_p99_ratio,
                detail=f"canary {c99 * 1000:.1f} ms vs primary {p99 * 1000:.1f} ms",
            )
        )
    if len(canary.predictions) >= policy.min_predictions and len(primary.predictions) >= policy.min_predictions:
        psi = population_stability_index(primary.predictions, canary.predictions)
        ks_stat, ks_p = ks_test(primary.predictions, canary.predictions)
        value, limit = (psi, policy.max_psi) if policy.shift_test == "psi" else (ks_stat, policy.max_ks_statistic)
        checks.append(
            Check(
                name=f"prediction_shift_{policy.shift_test}",
                status="fail" if value > limit and ks_p < policy.shift_alpha else "pass",
                value=round(value, 6),
                threshold=limit,
                detail=f"PSI {psi:.4f}; KS statistic {ks_stat:.4f} (p={ks_p:.3g}, alpha {policy.shift_alpha})",
            )
        )
    else:
        checks.append(Check(name="prediction_shift", status="skipped", detail="too few predictions recorded"))
    acc_c, acc_p = canary.accuracy, primary.accuracy
    n_c, n_p = len(canary.labels), len(primary.labels)
    if acc_c is not None and acc_p is not None and min(n_c, n_p) >= policy.min_labels:
        drop = acc_p - acc_c
        # As with the shift: a drop fails only when it is also significant, since accuracy on a hundred labels
        # moves by several points from noise alone.
        p_value = accuracy_drop_pvalue(round(acc_p * n_p), n_p, round(acc_c * n_c), n_c)
        checks.append(
            Check(
                name="accuracy",
                status="fail" if drop > policy.max_accuracy_drop and p_value < policy.accuracy_alpha else "pass",
                value=round(drop, 6),
                threshold=policy.max_accuracy_drop,
                detail=f"canary {acc_c:.4f} ({n_c} labels) vs primary {acc_p:.4f} ({n_p} labels); one-sided "
                f"z-test p={p_value:.3g}, alpha {policy.accuracy_alpha}",
            )
        )
    else:
        checks.append(Check(name="accuracy", status="skipped", detail="delayed labels not available yet"))
    return ("fail" if any(c.status == "fail" for c in checks) else "pass"), checks


class CanaryController:
    """Runs a canary rollout over a backend and records it in the registry."""

    def __init__(
        self,
        backend: RolloutBackend,
        policy: CanaryPolicy | None = None,
        registry: Any = None,
        model_name: str = "churn",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.policy = policy or CanaryPolicy()
        self.registry = registry
        self.model_name = model_name
        self._sleep = sleep

    def _event(self, kind: str, version: int, message: str, evidence: dict[str, Any]) -> None:
        if self.registry is not None:
            self.registry.record_event(self.model_name, kind, version=version, message=message, evidence=evidence)

    def run(self, canary_version: int, drive: Callable[[int], None] | None = None) -> RolloutResult:
        """Step through the policy; `drive(percent)` sends traffic (local) or waits for it (cluster)."""
        policy = self.policy
        started = datetime.now(UTC)
        if self.registry is not None:
            self.registry.set_stage(self.model_name, canary_version, "canary", message="canary rollout started")
        self.backend.start(canary_version)
        steps: list[StepEvidence] = []
        baseline = VariantWindow()
        percent = 0
        failures = 0
        for percent in policy.steps:
            self.backend.set_canary_percent(percent)
            attempt = 0
            while True:  # judged again on a fresh window after a failure, up to the failure threshold
                self.backend.begin_window()
                verdict: Literal["pass", "fail", "insufficient"] = "insufficient"
                for _ in range(policy.max_extensions + 1):
                    if drive is not None:
                        drive(percent)
                    else:
                        self._sleep(policy.step_wait_s)
                    primary, canary = self.backend.observe()
                    source: Literal["primary-window", "primary-cumulative"] = "primary-window"
                    reference = primary
                    if primary.requests < policy.min_requests:
                        reference, source = baseline.merge(primary), "primary-cumulative"
                    verdict, checks = evaluate_step(reference, canary, policy)
                    step = StepEvidence(
                        percent=percent,
                        attempt=attempt,
                        verdict=verdict,
                        baseline=source,
                        primary=reference.summary(),
                        canary=canary.summary(),
                        checks=checks,
                    )
                    attempt += 1
                    steps.append(step)
                    self._event("canary-step", canary_version, f"{percent}% {verdict}", step.model_dump(mode="json"))
                    logger.info("canary v%d at %d%%: %s %s", canary_version, percent, verdict, _failed(checks))
                    if verdict != "insufficient":
                        break
                baseline = baseline.merge(primary)
                if verdict != "fail":
                    break
                failures += 1
                if failures >= policy.failure_threshold:
                    return self._finish(canary_version, "rolled_back", _failed(steps[-1].checks), 0, steps, started)
                logger.warning(
                    "canary v%d at %d%%: failed analysis %d of %d tolerated; judging the step again",
                    canary_version, percent, failures, policy.failure_threshold - 1,
                )  # fmt: skip
            if verdict == "insufficient":
                return self._finish(
                    canary_version,
                    "held",
                    f"too little traffic at {percent}%: {steps[-1].checks[0].detail}",
                    percent,
                    steps,
                    started,
                )
        return self._finish(canary_version, "promoted", "every step passed every check", 100, steps, started)

    def _finish(
        self,
        version: int,
        decision: Decision,
        reason: str,
        final_percent: int,
        steps: list[StepEvidence],
        started: datetime,
    ) -> RolloutResult:
        if decision == "rolled_back":
            self.backend.rollback()
        elif decision == "promoted":
            self.backend.promote()
        result = RolloutResult(
            model=self.model_name,
            canary_version=version,
            decision=decision,
            reason=reason,
            final_percent=final_percent,
            steps=steps,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        evidence = {"reason": reason, "final_percent": final_percent, "last_step": steps[-1].model_dump(mode="json")}
        self._event("canary-decision", version, f"{decision}: {reason}", evidence)
        if self.registry is not None:
            if decision == "promoted":
                self.registry.set_stage(self.model_name, version, "production", message=reason, evidence=evidence)
            elif decision == "rolled_back":
                self.registry.set_stage(self.model_name, version, "rejected", message=reason, evidence=evidence)
        logger.info("canary v%d %s: %s", version, decision, reason)
        return result


def _failed(checks: list[Check]) -> str:
    failed = [f"{c.name} {c.value} > {c.threshold} ({c.detail})" for c in checks if c.status == "fail"]
    return "; ".join(failed) if failed else "no check failed"


__all__ = [
    "CanaryController",
    "CanaryPolicy",
    "KServeBackend",
    "LocalRouterBackend",
    "PrometheusMetrics",
    "RolloutBackend",
    "RolloutError",
    "RolloutResult",
    "StepEvidence",
    "evaluate_step",
]
