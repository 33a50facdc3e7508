"""Compiled prediction paths against sklearn on small synthetic churn frames; fallback when a path cannot apply."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, feature_schema
from slipway.serving.fast import (
    NotCompilable,
    OnnxPredictor,
    SklearnPredictor,
    VectorisedPredictor,
    compile_predictor,
    export_onnx,
    sample_columns,
    write_onnx_export,
)

pytestmark = pytest.mark.unit

FEATURES = feature_schema()["features"]


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for col in FEATURE_COLUMNS:
        if col in CATEGORICAL_FEATURES:
            data[col] = rng.choice(CATEGORICAL_FEATURES[col], size=n)
        else:
            kind, lo, hi = NUMERIC_FEATURES[col]
            hi = min(hi, 5000)
            data[col] = rng.integers(lo, hi + 1, size=n) if kind == "integer" else rng.uniform(lo, hi, size=n)
    frame = pd.DataFrame(data)
    y = ((frame["Contract"] == "Month-to-month") & (frame["tenure"] < 40)).to_numpy(dtype=int)
    return frame, y


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        c: frame[c].to_numpy(dtype=object) if c in CATEGORICAL_FEATURES else frame[c].to_numpy(dtype=np.float64)
        for c in FEATURE_COLUMNS
    }


@pytest.mark.parametrize(
    ("algorithm", "features"),
    [
        ("logistic_regression", {}),
        ("gradient_boosting", {}),
        ("logistic_regression", {"one_hot": False}),
        ("logistic_regression", {"pca_variance": 0.9}),
    ],
)
def test_vectorised_matches_sklearn(algorithm: str, features: dict[str, Any]) -> None:
    from slipway.training.churn import build_pipeline
    from slipway.training.features import FeatureConfig

    frame, y = _frame()
    pipe = build_pipeline(algorithm, features=FeatureConfig(**features)).fit(frame, y)
    fast = VectorisedPredictor(pipe)
    expected = pipe.predict_proba(frame)[:, 1]
    assert np.max(np.abs(fast.predict_positive(_columns(frame)) - expected)) <= 1e-12


def test_vectorised_unknown_category_is_ignored_like_sklearn() -> None:
    from slipway.training.churn import build_pipeline

    frame, y = _frame()
    pipe = build_pipeline().fit(frame, y)
    odd = frame.head(3).copy()
    odd["Contract"] = "Forever"  # handle_unknown="ignore": an all-zero one-hot block
    got = VectorisedPredictor(pipe).predict_positive(_columns(odd))
    assert np.allclose(got, pipe.predict_proba(odd)[:, 1], atol=1e-12)


def test_onnx_linear_model_within_1e6() -> None:
    from slipway.training.churn import build_pipeline

    frame, y = _frame()
    pipe = build_pipeline().fit(frame, y)
    onnx = OnnxPredictor(export_onnx(pipe, FEATURES), FEATURES, positive_index=1)
    diff = np.max(np.abs(onnx.predict_positive(_columns(frame)) - pipe.predict_proba(frame)[:, 1]))
    assert diff <= 1e-6
    chosen = compile_predictor(pipe, FEATURES)
    assert chosen.kind == "onnx"


def test_tree_model_skips_onnx_and_uses_the_exact_path(caplog: pytest.LogCaptureFixture) -> None:
    from slipway.training.churn import build_pipeline

    frame, y = _frame()
    pipe = build_pipeline("gradient_boosting").fit(frame, y)
    with caplog.at_level(logging.INFO, logger="slipway.serving.fast"):
        chosen = compile_predictor(pipe, FEATURES)
    assert chosen.kind == "vectorised"
    assert "fast path onnx not used" in caplog.text and "not linear" in caplog.text


def test_unsupported_pipeline_falls_back_to_sklearn(caplog: pytest.LogCaptureFixture) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    frame, y = _frame()
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OrdinalEncoder(), list(CATEGORICAL_FEATURES)),
                        ("num", FunctionTransformer(np.log1p), list(NUMERIC_FEATURES)),
                    ]
                ),
            ),
            ("clf", HistGradientBoostingClassifier(max_iter=20)),
        ]
    ).fit(frame, y)
    with pytest.raises(NotCompilable, match="FunctionTransformer"):
        VectorisedPredictor(pipe)
    with caplog.at_level(logging.INFO, logger="slipway.serving.fast"):
        chosen = compile_predictor(pipe, FEATURES)
    assert isinstance(chosen, SklearnPredictor)
    assert "serving with plain sklearn" in caplog.text
    sample = sample_columns(FEATURES, n=20)
    assert np.allclose(chosen.predict_positive(sample), pipe.predict_proba(pd.DataFrame(sample))[:, 1])


def test_a_disagreeing_path_is_rejected(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from slipway.training.churn import build_pipeline

    frame, y = _frame()
    pipe = build_pipeline().fit(frame, y)
    other = build_pipeline().fit(frame, 1 - y)  # a different model's ONNX: must not be served for `pipe`
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(export_onnx(other, FEATURES))
    with caplog.at_level(logging.INFO, logger="slipway.serving.fast"):
        chosen = compile_predictor(pipe, FEATURES, prefer=("onnx",), onnx_path=wrong)
    assert chosen.kind == "sklearn"
    assert "exceeds 1e-06" in caplog.text


def test_write_onnx_export_only_for_matching_linear_models(tmp_path: Path) -> None:
    from slipway.training.churn import build_pipeline

    frame, y = _frame()
    linear = build_pipeline().fit(frame, y)
    path = write_onnx_export(linear, FEATURES, tmp_path / "lr" / "model.onnx")
    assert path is not None and path.stat().st_size > 0
    onnx = OnnxPredictor(path.read_bytes(), FEATURES, positive_index=1)
    assert np.max(np.abs(onnx.predict_positive(_columns(frame)) - linear.predict_proba(frame)[:, 1])) <= 1e-6
    trees = build_pipeline("gradient_boosting").fit(frame, y)
    assert write_onnx_export(trees, FEATURES, tmp_path / "hgb" / "model.onnx") is None
    assert not (tmp_path / "hgb").exists()
