"""Champion/challenger: corrected resampled t-test, the decision and its record in the registry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from slipway.registry import ModelRegistry
from slipway.storage import LocalArtifactStore
from slipway.training.champion import (
    ChallengerDecision,
    apply_decision,
    compare_champion_challenger,
    corrected_resampled_t_test,
    find_champion,
    record_decision,
)

pytestmark = pytest.mark.unit


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] - x[:, 1] + rng.normal(0, 0.8, n) > 0.5).astype(int)
    return x, y


def test_corrected_t_test_known_values_and_it_is_more_cautious_than_the_naive_one() -> None:
    d = np.array([0.01, 0.02, 0.015, 0.03, 0.005, 0.02, 0.01, 0.025, 0.015, 0.02])
    t, p = corrected_resampled_t_test(d, test_train_ratio=0.25)
    expected_t = d.mean() / math.sqrt((1 / 10 + 0.25) * d.var(ddof=1))
    assert t == pytest.approx(expected_t)
    assert p == pytest.approx(stats.t.sf(expected_t, df=9))
    naive = stats.ttest_1samp(d, 0.0, alternative="greater")
    assert p > naive.pvalue
    assert corrected_resampled_t_test([0.0, 0.0], 0.25) == (0.0, 1.0)
    with pytest.raises(ValueError):
        corrected_resampled_t_test([0.1], 0.25)


def test_a_clearly_better_challenger_is_promoted_and_an_equal_one_is_not() -> None:
    x, y = _data()
    better = compare_champion_challenger(DummyClassifier(strategy="prior"), LogisticRegression(), x, y, seed=1)
    assert better.promote
    assert better.p_value is not None and better.p_value < 0.05
    assert better.mean_diff is not None and better.mean_diff > 0.2
    assert better.n_splits == 5 and better.n_repeats == 2
    assert "Nadeau" in better.method
    same = compare_champion_challenger(LogisticRegression(), LogisticRegression(), x, y, seed=1)
    assert not same.promote
    assert same.mean_diff == 0.0 and same.p_value == 1.0
    worse = compare_champion_challenger(LogisticRegression(), DummyClassifier(), x, y, seed=1)
    assert not worse.promote and "not promoted" in worse.reason


def test_no_champion_promotes_the_challenger() -> None:
    x, y = _data()
    decision = compare_champion_challenger(None, LogisticRegression(), x, y, n_splits=3, n_repeats=1)
    assert decision.promote and decision.champion_mean is None
    assert 0.7 < decision.challenger_mean <= 1.0
    assert ChallengerDecision.model_validate_json(decision.model_dump_json()) == decision


def _register(registry: ModelRegistry, tmp_path: Path, tag: str) -> int:
    model = tmp_path / f"{tag}.joblib"
    model.write_bytes(tag.encode())
    meta = registry.register(
        "churn", model, metrics={}, params={}, training_data_sha256="0" * 64, feature_schema={}, code_version="t"
    )
    return meta.version


def test_decisions_are_recorded_and_set_the_stage(tmp_path: Path) -> None:
    registry = ModelRegistry(LocalArtifactStore(tmp_path / "store"))
    assert find_champion(registry, "churn") is None
    x, y = _data()
    v1 = _register(registry, tmp_path, "a")
    first = compare_champion_challenger(None, LogisticRegression(), x, y, n_splits=3, n_repeats=1)
    assert apply_decision(registry, "churn", v1, first) == "production"
    v2 = _register(registry, tmp_path, "b")
    assert find_champion(registry, "churn").version == v1
    second = compare_champion_challenger(LogisticRegression(), DummyClassifier(), x, y, n_splits=3, n_repeats=1)
    assert apply_decision(registry, "churn", v2, second) == "rejected"
    assert registry.production("churn").version == v1
    assert registry.get("churn", v2).annotations["decision"]["promote"] is False
    events = [e for e in registry.history("churn") if e.kind == "champion-challenger"]
    assert [e.version for e in events] == [v1, v2]
    assert events[1].evidence["p_value"] == second.p_value
    v3 = _register(registry, tmp_path, "c")
    record_decision(registry, "churn", v3, first)
    assert registry.get("churn", v3).annotations["decision"]["promote"] is True
    assert registry.get("churn", v3).stage == "candidate"  # recording alone never changes the stage
