"""Data drift from a stored reference profile, vectorised with numpy: seconds for a million rows.

The test for each column is chosen by Evidently's own default rule, so the verdicts match a full
`DataDriftPreset` report:

| reference rows | column                              | test (threshold)                           |
|----------------|-------------------------------------|--------------------------------------------|
| > 1000         | numerical, > 5 distinct values      | Wasserstein distance / std(ref) (≥ 0.1)    |
| > 1000         | categorical, or ≤ 5 distinct values | Jensen-Shannon distance (≥ 0.1)            |
| ≤ 1000         | numerical, > 5 distinct values      | Kolmogorov-Smirnov p-value (≤ 0.05)        |
| ≤ 1000         | 3-5 distinct / 2 distinct values    | chi-square / z-test p-value (< 0.05)       |

The Wasserstein distance is integrated over the quantile functions on a 1000-point grid; counts-based tests
are exact. PSI over reference deciles is reported beside the verdict for numerical columns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from slipway.errors import DataValidationError
from slipway.monitoring.drift import DriftSummary
from slipway.monitoring.profile import (
    EXACT_LIMIT,
    PREDICTION_COLUMN,
    ColumnProfile,
    ReferenceProfile,
    empirical_quantiles,
    quantile_grid,
)

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "jensenshannon": 0.1, "ks": 0.05, "chisquare": 0.05, "z": 0.05}
P_VALUE_METHODS = {"ks", "chisquare", "z"}
_PSI_EPS = 1e-4


def _counts(keys: list[Any], counts: dict[Any, int]) -> np.ndarray:
    return np.array([counts.get(k, 0) for k in keys], dtype=np.float64)


def _union_keys(ref: dict[Any, int], cur: dict[Any, int]) -> list[Any]:
    return list(dict.fromkeys([*ref, *cur]))


def _jensenshannon(ref: dict[Any, int], cur: dict[Any, int]) -> float:
    keys = _union_keys(ref, cur)
    return float(distance.jensenshannon(_counts(keys, ref), _counts(keys, cur)))


def _chisquare(ref: dict[Any, int], cur: dict[Any, int]) -> float:
    keys = _union_keys(ref, cur)
    r, c = _counts(keys, ref), _counts(keys, cur)
    return float(stats.chisquare(c, r * (c.sum() / r.sum()))[1])


def _z_test(ref: dict[Any, int], cur: dict[Any, int]) -> float:
    keys = sorted(_union_keys(ref, cur), key=str)
    if len(keys) == 1:
        return 1.0
    n1, n2 = sum(ref.values()), sum(cur.values())
    p1 = (n1 - ref.get(keys[0], 0)) / n1
    p2 = (n2 - cur.get(keys[0], 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if denom == 0:
        return 1.0
    return float(2 * (1 - stats.norm.cdf(abs((p1 - p2) / denom))))


def _psi(profile: ColumnProfile, sorted_values: np.ndarray) -> float | None:
    if not profile.psi_edges:
        return None
    edges = np.asarray(profile.psi_edges)
    cuts = np.searchsorted(sorted_values, edges, side="right")
    counts = np.diff(np.concatenate([[0], cuts, [sorted_values.size]]))
    cur = np.clip(counts / sorted_values.size, _PSI_EPS, None)
    ref = np.clip(np.asarray(profile.psi_reference), _PSI_EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _value_counts(series: pd.Series) -> dict[Any, int]:
    vc = series.value_counts(dropna=True)
    return {(k.item() if hasattr(k, "item") else k): int(v) for k, v in vc.items()}


def _numerical(profile: ColumnProfile, series: pd.Series, grid: np.ndarray) -> dict[str, Any]:
    raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.sort(raw[np.isfinite(raw)])
    if values.size == 0:
        raise DataValidationError(f"current column {profile.name!r} has no finite values")
    ref_counts = dict(profile.value_counts)
    if profile.value_counts:  # few distinct reference values: the union decides the test, as in Evidently
        cur_unique = pd.unique(values)
        n_values = len(set(ref_counts) | {v.item() for v in cur_unique[: 6 + len(ref_counts)]})
    else:
        n_values = profile.n_unique
    small = profile.count <= EXACT_LIMIT
    out: dict[str, Any] = {"psi": _psi(profile, values)}
    if n_values <= 5:
        uniq, cnt = np.unique(values, return_counts=True)
        cur_counts = {u.item(): int(c) for u, c in zip(uniq, cnt, strict=True)}
        if not small:
            out.update(method="jensenshannon", score=_jensenshannon(ref_counts, cur_counts))
        elif n_values > 2:
            out.update(method="chisquare", score=_chisquare(ref_counts, cur_counts))
        else:
            out.update(method="z", score=_z_test(ref_counts, cur_counts))
        return out
    if small and profile.values is not None:
        out.update(method="ks", score=float(stats.ks_2samp(np.asarray(profile.values, dtype=np.float64), values)[1]))
        return out
    ref_q = np.asarray(profile.quantiles)
    cur_q = empirical_quantiles(values, grid)
    norm = max(float(profile.std or 0.0), 0.001)
    out.update(method="wasserstein", score=float(np.mean(np.abs(ref_q - cur_q)) / norm))
    return out


def _categorical(profile: ColumnProfile, series: pd.Series) -> dict[str, Any]:
    cur_counts = _value_counts(series)
    if not cur_counts:
        raise DataValidationError(f"current column {profile.name!r} has only missing values")
    ref_counts = dict(profile.value_counts)
    if profile.count > EXACT_LIMIT:
        return {"method": "jensenshannon", "score": _jensenshannon(ref_counts, cur_counts)}
    n_values = len(_union_keys(ref_counts, cur_counts))
    if n_values > 2:
        return {"method": "chisquare", "score": _chisquare(ref_counts, cur_counts)}
    return {"method": "z", "score": _z_test(ref_counts, cur_counts)}


def column_drift(
    profile: ColumnProfile, series: pd.Series, thresholds: dict[str, float] | None = None, n_quantiles: int = 1000
) -> dict[str, Any]:
    """{"drifted", "score", "method", "threshold", "psi"} for one current column against its profile."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if profile.kind == "numerical":
        if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
            raise DataValidationError(
                f"column {profile.name!r} is numerical in the reference but {series.dtype} now: fix the producer"
            )
        result = _numerical(profile, series, quantile_grid(n_quantiles))
    else:
        result = _categorical(profile, series.astype(object) if pd.api.types.is_numeric_dtype(series) else series)
        result["psi"] = None
    threshold = limits[result["method"]]
    score = result["score"]
    drifted = (
        score <= threshold
        if result["method"] == "ks"
        else (score < threshold if result["method"] in P_VALUE_METHODS else score >= threshold)
    )
    result.update(drifted=bool(drifted), threshold=threshold)
    return result


def fast_drift(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    columns: Iterable[str] | None = None,
    drift_share: float = 0.5,
    thresholds: dict[str, float] | None = None,
    prediction_column: str = PREDICTION_COLUMN,
) -> DriftSummary:
    """Per-column drift of `current` against `profile`, dataset drift when the drifted share reaches
    `drift_share`, and prediction drift when the profile holds predictions and `current` has that column."""
    cols = list(columns) if columns is not None else profile.feature_names
    unknown = [c for c in cols if c not in profile.columns]
    absent = [c for c in cols if c not in current.columns]
    if unknown or absent:
        raise DataValidationError(f"drift columns not in the reference profile: {unknown}; not in current: {absent}")
    if not cols:
        raise DataValidationError("no columns to compare")
    if current.empty:
        raise DataValidationError("cannot compute drift on an empty current window")
    per_column = {c: column_drift(profile.columns[c], current[c], thresholds, profile.n_quantiles) for c in cols}
    drifted = [c for c in cols if per_column[c]["drifted"]]
    share = len(drifted) / len(cols)
    prediction = None
    if profile.prediction is not None and prediction_column in current.columns:
        prediction = column_drift(profile.prediction, current[prediction_column], thresholds, profile.n_quantiles)
    return DriftSummary(
        dataset_drift=share >= drift_share,
        drift_share=share,
        drifted_columns=drifted,
        columns=per_column,
        drift_share_threshold=drift_share,
        prediction_drift=prediction,
        n_reference=profile.n_rows,
        n_current=len(current),
        engine="profile",
    )


def report_columns(summary: DriftSummary, limit: int = 20) -> list[str]:
    """The columns worth a picture: drifted ones first, then the closest to their threshold, at most `limit`.

    Evidently's HTML costs about the same per column whatever the rows, so the visual report shows these while
    the verdicts (JSON, metrics, alerts) cover every column.
    """

    def closeness(col: dict[str, Any]) -> float:
        score, threshold = float(col["score"]), float(col["threshold"])
        if col["method"] in P_VALUE_METHODS:
            return threshold / max(score, 1e-300)
        return score / threshold if threshold else 0.0

    ranked = sorted(summary.columns, key=lambda c: (not summary.columns[c]["drifted"], -closeness(summary.columns[c])))
    return ranked[:limit]
