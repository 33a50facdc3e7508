"""Canary evidence: what one variant did in a window, and the checks that compare a canary with its baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy import stats


@dataclass
class VariantWindow:
    """Traffic of one variant during a window. Raw latencies when the router measured them (local), otherwise
    only the percentile a metrics backend computed (Prometheus)."""

    requests: int = 0
    errors: int = 0
    latencies_s: np.ndarray = field(default_factory=lambda: np.array([]))
    p99_latency_s: float | None = None
    predictions: np.ndarray = field(default_factory=lambda: np.array([]))
    labelled_predictions: np.ndarray = field(default_factory=lambda: np.array([]))
    labels: np.ndarray = field(default_factory=lambda: np.array([]))

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p99_s(self) -> float | None:
        if len(self.latencies_s):
            return float(np.percentile(self.latencies_s, 99))
        return self.p99_latency_s

    @property
    def accuracy(self) -> float | None:
        if not len(self.labels):
            return None
        return float(np.mean((self.labelled_predictions >= 0.5).astype(float) == self.labels))

    def merge(self, other: VariantWindow) -> VariantWindow:
        p99s = [p for p in (self.p99_latency_s, other.p99_latency_s) if p is not None]
        return VariantWindow(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            latencies_s=np.concatenate([self.latencies_s, other.latencies_s]),
            p99_latency_s=max(p99s) if p99s else None,
            predictions=np.concatenate([self.predictions, other.predictions]),
            labelled_predictions=np.concatenate([self.labelled_predictions, other.labelled_predictions]),
            labels=np.concatenate([self.labels, other.labels]),
        )

    def summary(self) -> VariantSummary:
        p99 = self.p99_s
        return VariantSummary(
            requests=self.requests,
            errors=self.errors,
            error_rate=round(self.error_rate, 6),
            p99_ms=None if p99 is None else round(p99 * 1000.0, 3),
            predictions=len(self.predictions),
            prediction_mean=round(float(np.mean(self.predictions)), 6) if len(self.predictions) else None,
            labelled=len(self.labels),
            accuracy=self.accuracy,
        )


class VariantSummary(BaseModel):
    requests: int
    errors: int
    error_rate: float
    p99_ms: float | None
    predictions: int
    prediction_mean: float | None
    labelled: int
    accuracy: float | None


class Check(BaseModel):
    """One gate: its measured value, the threshold and whether the canary passed."""

    name: str
    status: Literal["pass", "fail", "skipped"]
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of `actual` against `expected`, on quantile bins of `expected` (0.1 = moderate, 0.25 = large shift)."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if not len(expected) or not len(actual):
        raise ValueError("PSI needs two non-empty samples")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 1e-9, edges[0] + 1e-9])
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    eps = 1e-4
    e = np.clip(e, eps, None)
    a = np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_test(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    result = stats.ks_2samp(expected, actual)
    return float(result.statistic), float(result.pvalue)


def accuracy_drop_pvalue(primary_correct: int, primary_n: int, canary_correct: int, canary_n: int) -> float:
    """One-sided two-proportion z-test p-value for "the canary is less accurate than the primary"."""
    from statsmodels.stats.proportion import proportions_ztest

    if primary_correct + canary_correct in (0, primary_n + canary_n):  # all right or all wrong: no difference
        return 1.0
    _, p_value = proportions_ztest(
        np.array([primary_correct, canary_correct]), np.array([primary_n, canary_n]), alternative="larger"
    )
    return float(p_value)
