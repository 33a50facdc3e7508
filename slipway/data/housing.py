"""The California housing dataset (StatLib, Pace & Barry 1997, as shipped by ageron/handson-ml2): load, download
(sha256-verified) and a synthetic stand-in with the same columns for demos and tests without the real file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from slipway.data.churn import download_churn
from slipway.errors import DataValidationError

logger = logging.getLogger(__name__)

HOUSING_URL = "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv"
HOUSING_FILENAME = "housing.csv"
HOUSING_SHA256 = "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e"

HOUSING_TARGET = "median_house_value"
HOUSING_CATEGORICAL: dict[str, list[str]] = {
    "ocean_proximity": ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"],
}
HOUSING_NUMERIC: list[str] = [
    "longitude",
    "latitude",
    "housing_median_age",
    "total_rooms",
    "total_bedrooms",
    "population",
    "households",
    "median_income",
]
HOUSING_FEATURES: list[str] = [*HOUSING_NUMERIC, *HOUSING_CATEGORICAL]
HOUSING_COLUMNS: list[str] = [*HOUSING_NUMERIC, HOUSING_TARGET, *HOUSING_CATEGORICAL]


def load_housing_csv(path: str | Path) -> pd.DataFrame:
    """Read the housing CSV; numeric columns as float (blank `total_bedrooms` stays NaN, imputed in the model)."""
    df = pd.read_csv(path)
    missing = [c for c in HOUSING_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"{path} lacks housing columns {missing}; expected {HOUSING_COLUMNS}")
    for col in [*HOUSING_NUMERIC, HOUSING_TARGET]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    if df[HOUSING_TARGET].isna().any():
        raise DataValidationError(f"{path}: {int(df[HOUSING_TARGET].isna().sum())} rows have no {HOUSING_TARGET}")
    return df[HOUSING_COLUMNS]


def download_housing(dest: Path, url: str = HOUSING_URL, sha256: str | None = HOUSING_SHA256) -> Path:
    """Download the housing CSV to `dest` (file or directory) and verify its sha256; a verified copy is reused."""
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / HOUSING_FILENAME
    return download_churn(dest, url=url, sha256=sha256)


def split_housing_xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature columns and the target in USD."""
    missing = [c for c in [*HOUSING_FEATURES, HOUSING_TARGET] if c not in df.columns]
    if missing:
        raise DataValidationError(f"housing frame lacks columns {missing}")
    return df[HOUSING_FEATURES], df[HOUSING_TARGET].to_numpy(dtype=float)


def generate_synthetic_housing(n_rows: int = 2000, seed: int = 42) -> pd.DataFrame:
    """A deterministic housing-shaped frame whose value depends on income, location and rooms per household.

    Like the real file, the target is capped at 500,001 and about 1 % of `total_bedrooms` is missing.
    """
    rng = np.random.default_rng(seed)
    n = n_rows
    proximity = rng.choice(
        np.array(HOUSING_CATEGORICAL["ocean_proximity"], dtype=object), size=n, p=[0.44, 0.32, 0.002, 0.11, 0.128]
    )
    longitude = rng.uniform(-124.3, -114.3, n).round(2)
    latitude = (42.0 - (longitude + 124.3) * 0.8 + rng.normal(0, 1.0, n)).clip(32.5, 42.0).round(2)
    age = rng.integers(1, 53, n).astype(float)
    households = rng.gamma(2.0, 250.0, n).round() + 1
    rooms_per_household = rng.normal(5.4, 1.2, n).clip(1.5, 12)
    total_rooms = (households * rooms_per_household).round()
    total_bedrooms = (total_rooms * rng.normal(0.21, 0.03, n).clip(0.1, 0.4)).round()
    population = (households * rng.normal(2.9, 0.6, n).clip(1, 8)).round()
    income = rng.lognormal(1.25, 0.45, n).round(4)
    coastal = np.isin(proximity, ["<1H OCEAN", "NEAR BAY", "NEAR OCEAN", "ISLAND"])
    value = (
        40_000 * income
        + 60_000 * coastal
        - 25_000 * (proximity == "INLAND")
        + 8_000 * (rooms_per_household - 5.4)
        + 600 * age
        - 4_000 * (latitude - 36)
        + rng.normal(0, 30_000, n)
    )
    value = np.clip(value, 14_999, 500_001).round(-2)
    total_bedrooms[rng.random(n) < 0.01] = np.nan
    frame = pd.DataFrame(
        {
            "longitude": longitude,
            "latitude": latitude,
            "housing_median_age": age,
            "total_rooms": total_rooms,
            "total_bedrooms": total_bedrooms,
            "population": population,
            "households": households,
            "median_income": income,
            HOUSING_TARGET: value,
            "ocean_proximity": proximity,
        }
    )
    return frame[HOUSING_COLUMNS]
