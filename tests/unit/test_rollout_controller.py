"""The canary controller's decisions on synthetic evidence, and what it writes to the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slipway.registry import ModelRegistry
from slipway.rollout.analysis import VariantWindow, population_stability_index
from slipway.rollout.controller import CanaryController, CanaryPolicy, evaluate_step
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit


class FakeBackend:
    """Synthesises each window from the current split; `canary` overrides shape the canary's behaviour."""

    def __init__(self, total: int = 1000, seed: int = 0, **canary: float) -> None:
        self.total = total
        self.rng = np.random.default_rng(seed)
        self.canary = canary
        self.percent = 0
        self.calls: list[tuple[str, int | None]] = []

    def start(self, canary_version: int) -> None:
        self.calls.append(("start", canary_version))

    def set_canary_percent(self, percent: int) -> None:
        self.percent = percent
        self.calls.append(("percent", percent))

    def begin_window(self) -> None:
        self.calls.append(("window", None))

    def _window(self, n: int, error_rate: float, latency_s: float, shift: float, accuracy: float) -> VariantWindow:
        preds = np.clip(self.rng.beta(2, 5, size=n) + shift, 0, 1)
        labels = (preds >= 0.5).astype(float)
        wrong = self.rng.random(n) > accuracy
        labels[wrong] = 1 - labels[wrong]
        return VariantWindow(
            requests=n,
            errors=int(self.rng.binomial(n, error_rate)) if n else 0,
            latencies_s=self.rng.gamma(4.0, latency_s / 4.0, size=n),
            predictions=preds,
            labelled_predictions=preds,
            labels=labels,
        )

    def observe(self) -> tuple[VariantWindow, VariantWindow]:
        n_canary = self.total * self.percent // 100
        primary = self._window(self.total - n_canary, 0.005, 0.010, 0.0, 0.85)
        canary = self._window(
            n_canary,
            self.canary.get("error_rate", 0.005),
            self.canary.get("latency_s", 0.010),
            self.canary.get("shift", 0.0),
            self.canary.get("accuracy", 0.85),
        )
        return primary, canary

    def promote(self) -> None:
        self.calls.append(("promote", None))

    def rollback(self) -> None:
        self.calls.append(("rollback", None))


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    reg = ModelRegistry(LocalArtifactStore(tmp_path / "artifacts"))
    model = tmp_path / "model.joblib"
    model.write_bytes(b"x")
    for _ in range(2):
        reg.register("churn", model, metrics={}, params={}, training_data_sha256="0" * 64, feature_schema={})
    reg.set_stage("churn", 1, "production")
    return reg


def test_healthy_canary_is_promoted_through_every_step(registry: ModelRegistry) -> None:
    backend = FakeBackend()
    waits: list[float] = []
    result = CanaryController(backend, registry=registry, model_name="churn", sleep=waits.append).run(2)
    assert result.decision == "promoted" and result.final_percent == 100
    assert [s.percent for s in result.steps] == [10, 25, 50, 100]
    assert waits == [60.0] * 4  # no drive(): the controller waits step_wait_s per step for real traffic
    assert all(s.verdict == "pass" for s in result.steps)
    assert result.steps[-1].baseline == "primary-cumulative"  # the primary served nothing at 100 %
    assert {c.name for c in result.steps[0].checks} == {"error_rate", "p99_latency", "prediction_shift_psi", "accuracy"}
    assert ("promote", None) in backend.calls and ("rollback", None) not in backend.calls
    assert registry.production("churn").version == 2
    assert registry.get("churn", 1).stage == "archived"
    kinds = [e.kind for e in registry.history("churn")]
    assert kinds.count("canary-step") == 4 and kinds.count("canary-decision") == 1
    decision = next(e for e in registry.history("churn") if e.kind == "canary-decision")
    assert decision.message.startswith("promoted") and decision.evidence["final_percent"] == 100


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"error_rate": 0.15}, "error_rate"),
        ({"latency_s": 0.2}, "p99_latency"),
        ({"shift": 0.35}, "prediction_shift_psi"),
        ({"accuracy": 0.6}, "accuracy"),
    ],
)
def test_faulty_canary_is_rolled_back_at_the_first_step(
    registry: ModelRegistry, fault: dict[str, float], check: str
) -> None:
    backend = FakeBackend(**fault)
    result = CanaryController(backend, registry=registry, sleep=lambda s: None).run(2)
    assert result.decision == "rolled_back" and result.final_percent == 0
    assert len(result.steps) == 1 and result.steps[0].percent == 10
    failed = [c.name for c in result.steps[0].checks if c.status == "fail"]
    assert failed == [check]
    assert check in result.reason
    assert backend.calls[-1] == ("rollback", None)
    assert registry.get("churn", 2).stage == "rejected"
    assert registry.production("churn").version == 1


def test_too_little_traffic_extends_then_holds(registry: ModelRegistry) -> None:
    backend = FakeBackend(total=300)  # 10 % of 300 = 30 canary requests < min_requests
    policy = CanaryPolicy(min_requests=100, max_extensions=2)
    drives: list[int] = []
    result = CanaryController(backend, policy, registry=registry).run(2, drive=drives.append)
    assert result.decision == "held" and result.final_percent == 10
    assert drives == [10, 10, 10] and [s.attempt for s in result.steps] == [0, 1, 2]
    assert registry.get("churn", 2).stage == "canary"
    assert "promote" not in {c for c, _ in backend.calls} and "rollback" not in {c for c, _ in backend.calls}


def test_policy_and_checks() -> None:
    with pytest.raises(ValueError):
        CanaryPolicy(steps=[50, 10])
    rng = np.random.default_rng(0)
    same = population_stability_index(rng.beta(2, 5, 5000), rng.beta(2, 5, 5000))
    shifted = population_stability_index(rng.beta(2, 5, 5000), rng.beta(5, 2, 5000))
    assert same < 0.02 < 0.5 < shifted
    fast = VariantWindow(requests=200, latencies_s=np.full(200, 0.002))
    slower = VariantWindow(requests=200, latencies_s=np.full(200, 0.006))  # 3x, but only +4 ms
    verdict, checks = evaluate_step(fast, slower, CanaryPolicy())
    assert verdict == "pass" and next(c for c in checks if c.name == "p99_latency").value == pytest.approx(3.0)
    ks_policy = CanaryPolicy(shift_test="ks", max_ks_statistic=0.1)
    base = VariantWindow(requests=500, predictions=rng.beta(2, 5, 500))
    moved = VariantWindow(requests=500, predictions=rng.beta(2, 5, 500) + 0.2)
    assert evaluate_step(base, moved, ks_policy)[0] == "fail"


def _labelled(n: int, accuracy: float) -> VariantWindow:
    right = round(n * accuracy)
    labels = np.ones(n)
    labels[right:] = 0.0  # predictions are all 0.9, so exactly `right` of them are correct
    return VariantWindow(requests=n, predictions=np.full(n, 0.9), labelled_predictions=np.full(n, 0.9), labels=labels)


@pytest.mark.parametrize(("n", "verdict"), [(100, "pass"), (2000, "fail")])
def test_an_accuracy_drop_must_also_be_significant(n: int, verdict: str) -> None:
    # 85 % against 80 %: a five-point drop is noise on 100 labels a side (p ≈ 0.17), not on 2,000 (p < 1e-4).
    result, checks = evaluate_step(_labelled(n, 0.85), _labelled(n, 0.80), CanaryPolicy(min_requests=50))
    accuracy = next(c for c in checks if c.name == "accuracy")
    assert result == verdict and accuracy.status == verdict and accuracy.value == pytest.approx(0.05)


class OneSlowWindow(FakeBackend):
    """A healthy canary whose first window is slow (a pause on its node), then fine."""

    def observe(self) -> tuple[VariantWindow, VariantWindow]:
        slow = sum(1 for call, _ in self.calls if call == "window") == 1
        self.canary = {"latency_s": 0.2} if slow else {}
        return super().observe()


@pytest.mark.parametrize(("threshold", "decision"), [(1, "rolled_back"), (2, "promoted")])
def test_failure_threshold_judges_a_step_again_on_a_fresh_window(
    registry: ModelRegistry, threshold: int, decision: str
) -> None:
    backend = OneSlowWindow()
    policy = CanaryPolicy(failure_threshold=threshold)
    result = CanaryController(backend, policy, registry=registry, sleep=lambda s: None).run(2)
    assert result.decision == decision, result.reason
    assert result.steps[0].verdict == "fail"  # the slow first window fails either way
    if threshold == 1:
        assert len(result.steps) == 1 and "p99_latency" in result.reason
    else:
        assert [(s.percent, s.attempt, s.verdict) for s in result.steps] == [
            (10, 0, "fail"), (10, 1, "pass"), (25, 0, "pass"), (50, 0, "pass"), (100, 0, "pass"),
        ]  # fmt: skip
        assert [c for c, _ in backend.calls].count("window") == 5  # the failed step got a fresh window


def test_a_canary_that_keeps_failing_is_rolled_back_at_the_threshold(registry: ModelRegistry) -> None:
    backend = FakeBackend(error_rate=0.15)
    result = CanaryController(backend, CanaryPolicy(failure_threshold=3), registry=registry, sleep=lambda s: None).run(
        2
    )
    assert result.decision == "rolled_back" and [s.verdict for s in result.steps] == ["fail"] * 3
    assert backend.calls[-1] == ("rollback", None)
