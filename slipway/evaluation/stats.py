"""Summaries of resampled scores: mean, standard deviation and a 95 % interval that accounts for fold overlap."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from scipy import stats


class MetricSummary(BaseModel):
    """Mean and sample standard deviation of per-fold scores, with a 95 % interval for the mean."""

    mean: float
    sd: float
    ci_low: float
    ci_high: float
    n: int

    def format(self, digits: int = 4) -> str:
        """`mean ± sd [low, high]`."""
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


def corrected_variance_factor(n_scores: int, test_train_ratio: float) -> float:
    """Nadeau & Bengio's `1/J + n_test/n_train`: resampled scores share training rows, so their mean varies
    more than `sd^2 / J` suggests; the naive interval would be too narrow."""
    return 1.0 / n_scores + test_train_ratio


def summarize(
    values: Sequence[float],
    test_train_ratio: float = 0.0,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> MetricSummary:
    """Mean, sd (ddof=1) and a t-interval for the mean of `values`.

    `test_train_ratio` (n_test / n_train of each fold, 0.25 for 5-fold) switches on the Nadeau-Bengio
    correction; 0 gives the textbook interval for independent values. `bounds` clips the interval to the
    metric's range (e.g. (0, 1) for a rate).
    """
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        nan = float("nan")
        return MetricSummary(mean=nan, sd=nan, ci_low=nan, ci_high=nan, n=0)
    mean = float(arr.mean())
    if n == 1:
        return MetricSummary(mean=mean, sd=0.0, ci_low=mean, ci_high=mean, n=1)
    sd = float(arr.std(ddof=1))
    se = sd * math.sqrt(corrected_variance_factor(n, test_train_ratio))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * se
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return MetricSummary(mean=mean, sd=sd, ci_low=low, ci_high=high, n=n)
