"""Feature engineering as configurable steps of one scikit-learn Pipeline, so it travels with the model.

Steps: derived columns (housing ratios), categorical encoding (one-hot, or ordinal codes when switched off),
standard scaling of numeric columns, and PCA keeping a stated share of the variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler


class FeatureConfig(BaseModel):
    """Which feature steps the model pipeline contains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    one_hot: bool = Field(True, description="one-hot categoricals; False gives ordinal codes (one column each)")
    scale: bool = Field(True, description="StandardScaler on numeric columns")
    pca_variance: float | None = Field(
        None, gt=0.0, lt=1.0, description="PCA keeping this share of variance after encoding; None = no PCA"
    )
    engineered: bool = Field(True, description="derived ratio columns (housing only)")

    def label(self) -> str:
        parts = ["one-hot" if self.one_hot else "ordinal", "scaled" if self.scale else "unscaled"]
        if self.pca_variance is not None:
            parts.append(f"PCA {self.pca_variance:.0%} var")
        return ", ".join(parts)


def build_preprocessor(
    categorical: dict[str, list[str]] | Sequence[str],
    numeric: Sequence[str],
    config: FeatureConfig,
    *,
    impute_numeric: bool = False,
    seed: int = 42,
) -> Pipeline:
    """Encode categoricals and scale numerics per `config`, then optional PCA. Output is a dense array.

    `categorical` is either a mapping column -> allowed values (fixed categories, so folds agree on the
    columns) or a list of columns whose categories are learned at fit time.
    """
    cols = list(categorical)
    categories: Any = [list(categorical[c]) for c in cols] if isinstance(categorical, dict) else "auto"
    encoder: Any
    if config.one_hot:
        encoder = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)
    else:
        encoder = OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value", unknown_value=-1)
    numeric_steps: list[tuple[str, Any]] = []
    if impute_numeric:
        numeric_steps.append(("impute", SimpleImputer(strategy="median")))
    numeric_steps.append(("scale", StandardScaler() if config.scale else "passthrough"))
    encode = ColumnTransformer(
        [("categorical", encoder, cols), ("numeric", Pipeline(numeric_steps), list(numeric))],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    steps: list[tuple[str, Any]] = [("encode", encode)]
    if config.pca_variance is not None:
        # PCA needs comparable scales to mean anything; it is applied to whatever the encoder produced.
        steps.append(("pca", PCA(n_components=config.pca_variance, svd_solver="full", random_state=seed)))
    return Pipeline(steps)


HOUSING_RATIOS: dict[str, tuple[str, str]] = {
    "rooms_per_household": ("total_rooms", "households"),
    "bedrooms_per_room": ("total_bedrooms", "total_rooms"),
    "population_per_household": ("population", "households"),
}


def add_housing_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Append the per-household ratio columns; a zero denominator gives NaN (imputed later), never inf."""
    out = frame.copy()
    for name, (num, den) in HOUSING_RATIOS.items():
        denominator = out[den].astype(float).replace(0.0, np.nan)
        out[name] = out[num].astype(float) / denominator
    return out


def housing_ratio_step() -> FunctionTransformer:
    """The ratio columns as a pipeline step (a module-level function, so the fitted model pickles)."""
    return FunctionTransformer(add_housing_ratios, validate=False)
