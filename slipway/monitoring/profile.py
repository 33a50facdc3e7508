"""A reference profile: per-column summaries of the training data, computed once and stored with the model.

Numerical columns keep a quantile function on a fine grid (for the Wasserstein distance), decile edges (for
PSI), mean/std and, when they have few distinct values, exact value counts. Categorical columns keep value
counts. Small references (≤ `EXACT_LIMIT` rows) also keep their exact values, so the small-sample tests
(Kolmogorov-Smirnov, chi-square, z) are computed exactly as Evidently computes them. A profile of 100 columns
is a few MB of JSON, whatever the number of training rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from slipway.errors import DataValidationError

logger = logging.getLogger(__name__)

PROFILE_FILE = "reference_profile.json"
SAMPLE_FILE = "reference_sample.parquet"
PREDICTION_COLUMN = "prediction"
N_QUANTILES = 1000
EXACT_LIMIT = 1000  # Evidently switches from p-value tests to distances above 1000 reference rows
MAX_VALUE_COUNTS = 20  # numerical columns with more distinct values than this are summarised by quantiles only
PSI_BINS = 10


def quantile_grid(k: int = N_QUANTILES) -> np.ndarray:
    """Midpoints (i + 0.5) / k: the midpoint rule for integrals over the quantile function."""
    return (np.arange(k) + 0.5) / k


def empirical_quantiles(sorted_values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The empirical quantile function (a step function, no interpolation) of sorted values at `grid`."""
    n = len(sorted_values)
    idx = np.minimum((grid * n).astype(np.int64), n - 1)
    return sorted_values[idx]


class ColumnProfile(BaseModel):
    """Summary of one reference column."""

    name: str
    kind: Literal["numerical", "categorical"]
    count: int = Field(description="non-missing values")
    missing: int = 0
    mean: float | None = None
    std: float | None = None
    n_unique: int = Field(0, description=f"distinct values, exact up to {MAX_VALUE_COUNTS} (numerical) or always")
    quantiles: list[float] = Field(default_factory=list, description="empirical quantile function at the grid")
    psi_edges: list[float] = Field(default_factory=list, description="inner decile edges")
    psi_reference: list[float] = Field(default_factory=list, description="share of reference rows per PSI bin")
    value_counts: list[tuple[Any, int]] = Field(default_factory=list, description="(value, count), most frequent first")
    values: list[Any] | None = Field(None, description=f"exact values when count <= {EXACT_LIMIT}")


class ReferenceProfile(BaseModel):
    """Summaries of the training data a model version was fitted on, plus its predictions on that data."""

    format_version: int = 1
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    n_rows: int
    n_quantiles: int = N_QUANTILES
    columns: dict[str, ColumnProfile]
    prediction: ColumnProfile | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)

    def save(self, path: str | Path) -> Path:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self.model_dump_json())
        return dest

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        return cls.model_validate_json(Path(path).read_text())


def is_numerical(series: pd.Series) -> bool:
    """Evidently's rule: numeric dtypes (not bool) are numerical, everything else categorical."""
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _python(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def profile_column(name: str, series: pd.Series, n_quantiles: int = N_QUANTILES) -> ColumnProfile:
    """Summarise one column; infinities count as missing, as in Evidently."""
    if is_numerical(series):
        raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = raw[np.isfinite(raw)]
        if finite.size == 0:
            raise DataValidationError(f"reference column {name!r} has no finite values: it cannot be profiled")
        values = np.sort(finite)
        uniques, counts = np.unique(values, return_counts=True)
        grid = quantile_grid(n_quantiles)
        edges = empirical_quantiles(values, np.arange(1, PSI_BINS) / PSI_BINS)
        psi_ref = np.bincount(np.searchsorted(edges, values, side="right"), minlength=PSI_BINS) / values.size
        value_counts: list[tuple[Any, int]] = []
        if uniques.size <= MAX_VALUE_COUNTS:
            order = np.argsort(-counts, kind="stable")
            value_counts = [(_python(uniques[i]), int(counts[i])) for i in order]
        return ColumnProfile(
            name=name,
            kind="numerical",
            count=int(values.size),
            missing=int(raw.size - values.size),
            mean=float(values.mean()),
            std=float(values.std()),
            n_unique=int(min(uniques.size, MAX_VALUE_COUNTS + 1)),
            quantiles=empirical_quantiles(values, grid).tolist(),
            psi_edges=edges.tolist(),
            psi_reference=psi_ref.tolist(),
            value_counts=value_counts,
            values=values.tolist() if values.size <= EXACT_LIMIT else None,
        )
    clean = series.dropna()
    if clean.empty:
        raise DataValidationError(f"reference column {name!r} has only missing values: it cannot be profiled")
    vc = clean.value_counts()
    return ColumnProfile(
        name=name,
        kind="categorical",
        count=int(clean.size),
        missing=int(series.size - clean.size),
        n_unique=int(vc.size),
        value_counts=[(_python(k), int(v)) for k, v in vc.items()],
        values=[_python(v) for v in clean.tolist()] if clean.size <= EXACT_LIMIT else None,
    )


def build_profile(
    reference: pd.DataFrame,
    columns: list[str] | None = None,
    predictions: np.ndarray | pd.Series | None = None,
    n_quantiles: int = N_QUANTILES,
) -> ReferenceProfile:
    """Profile `columns` of the reference frame (default: all), and the model's predictions on it if given."""
    if reference.empty:
        raise DataValidationError("cannot profile an empty reference frame")
    columns = list(reference.columns) if columns is None else columns
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        raise DataValidationError(f"reference frame lacks the profiled column(s) {missing}")
    profiles = {c: profile_column(c, reference[c], n_quantiles) for c in columns}
    prediction = None
    if predictions is not None:
        prediction = profile_column(
            PREDICTION_COLUMN, pd.Series(np.asarray(predictions, dtype=np.float64)), n_quantiles
        )
    logger.info("profiled %d reference rows x %d columns", len(reference), len(columns))
    return ReferenceProfile(n_rows=len(reference), n_quantiles=n_quantiles, columns=profiles, prediction=prediction)


def stratified_sample(frame: pd.DataFrame, n: int, by: str | None = None, seed: int = 0) -> pd.DataFrame:
    """At most `n` rows; with `by`, each stratum keeps its share (numeric `by` is cut into deciles first)."""
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    if by is None or by not in frame.columns:
        return frame.sample(n=n, random_state=seed).reset_index(drop=True)
    key = frame[by]
    if is_numerical(key) and key.nunique() > PSI_BINS:
        key = pd.qcut(key.rank(method="first"), PSI_BINS, labels=False)
    fraction = n / len(frame)
    parts = [
        g.sample(n=max(1, round(len(g) * fraction)), random_state=seed)
        for _, g in frame.groupby(key, sort=True, observed=True)
    ]
    return pd.concat(parts).head(n).reset_index(drop=True)


def as_binary_labels(labels: pd.Series) -> np.ndarray:
    """0/1 labels from 0/1 numbers, booleans or "Yes"/"No" / "true"/"false" strings."""
    if pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        return labels.astype(int).to_numpy()
    return labels.astype(str).str.lower().isin(["yes", "1", "true"]).astype(int).to_numpy()


def write_reference_files(
    training_set: pd.DataFrame,
    columns: list[str],
    out_dir: str | Path,
    *,
    model: Any = None,
    predictions: np.ndarray | None = None,
    target: str | None = None,
    sample_rows: int = 5000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write `reference_profile.json` and `reference_sample.parquet` (for Evidently's HTML report) to `out_dir`.

    With a fitted classifier, the profile also holds its positive-class probabilities on the training set, the
    reference for prediction drift; pass out-of-fold `predictions` instead for models that fit their training
    rows much better than new ones (boosting), whose training-set scores would make every window look drifted.
    Returns {stored file name: path}, ready for `ModelRegistry.register`'s `extra_files`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sample = training_set[columns].copy()
    if predictions is None and model is not None:
        predictions = np.asarray(model.predict_proba(training_set[columns]))[:, -1]
    if predictions is not None:
        predictions = np.asarray(predictions, dtype=np.float64)
        sample[PREDICTION_COLUMN] = predictions
    if target is not None and target in training_set.columns:
        sample["target"] = as_binary_labels(training_set[target])
    profile = build_profile(training_set, columns, predictions)
    sampled = stratified_sample(sample, sample_rows, by="target" if "target" in sample.columns else None, seed=seed)
    files = {PROFILE_FILE: profile.save(out / PROFILE_FILE), SAMPLE_FILE: out / SAMPLE_FILE}
    sampled.to_parquet(files[SAMPLE_FILE], index=False)
    return files
