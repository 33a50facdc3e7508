"""Compiled prediction paths for scikit-learn churn pipelines, checked against sklearn before use.

`compile_predictor` tries, in order:
1. ONNX (skl2onnx + onnxruntime) for linear final estimators: `model.onnx` shipped with the version (verified
   sha256), or converted at load;
2. a hand-vectorised path: the ColumnTransformer (one-hot / scaling / passthrough) replayed with numpy lookups,
   then the final estimator on a float64 matrix (a direct dot product for logistic regression);
3. plain sklearn on a DataFrame (always correct, slowest).
Each candidate must reproduce `pipeline.predict_proba` within `tolerance` (1e-6) on rows drawn from the feature
schema; a candidate that cannot be built or disagrees is skipped with a log line saying why.

Inputs are columns: `{feature name: 1-D numpy array}` (object arrays of str for categorical features, float64 for
numeric ones), already validated against the schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-6
Columns = Mapping[str, np.ndarray]


class Predictor(Protocol):
    """Positive-class probability for validated feature columns."""

    kind: str

    def predict_positive(self, columns: Columns) -> np.ndarray: ...


class NotCompilable(Exception):
    """This pipeline cannot take this fast path (unsupported step or mismatch); another path is used."""


def positive_class_index(model: Any) -> int:
    """Index of the positive class ("Yes", 1 or True) in `model.classes_`; 1 when none is recognised."""
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    for positive in ("Yes", 1, True, "1"):
        if positive in classes:
            return classes.index(positive)
    return 1


def _categorical(schema_features: Sequence[dict[str, Any]]) -> set[str]:
    return {f["name"] for f in schema_features if f.get("type") == "string"}


# -- sklearn on a DataFrame ------------------------------------------------------------------------------------------
class SklearnPredictor:
    """The pipeline as trained: a DataFrame through `predict_proba` (reference and last fallback)."""

    kind = "sklearn"

    def __init__(self, pipeline: Any, feature_names: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.feature_names = list(feature_names)
        self._pos = positive_class_index(pipeline)

    def predict_positive(self, columns: Columns) -> np.ndarray:
        frame = pd.DataFrame({n: columns[n] for n in self.feature_names}, columns=self.feature_names)
        return np.asarray(self.pipeline.predict_proba(frame), dtype=np.float64)[:, self._pos]


# -- ONNX ------------------------------------------------------------------------------------------------------------
def export_onnx(pipeline: Any, schema_features: Sequence[dict[str, Any]]) -> bytes:
    """Convert a fitted pipeline to ONNX (one [n, 1] input per feature column, probabilities without zipmap)."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError as exc:  # pragma: no cover - skl2onnx is a pinned dependency
        raise NotCompilable(f"skl2onnx is not installed: {exc}") from exc
    categorical = _categorical(schema_features)
    initial_types = [
        (f["name"], StringTensorType([None, 1]) if f["name"] in categorical else FloatTensorType([None, 1]))
        for f in schema_features
    ]
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    try:
        onx = convert_sklearn(
            pipeline,
            initial_types=initial_types,
            target_opset={"": 17, "ai.onnx.ml": 3},
            options={id(final): {"zipmap": False}},
        )
    except Exception as exc:
        raise NotCompilable(f"skl2onnx cannot convert {type(final).__name__}: {exc}") from exc
    return bytes(onx.SerializeToString())


def write_onnx_export(
    pipeline: Any, schema_features: Sequence[dict[str, Any]], path: str | Path, tolerance: float = DEFAULT_TOLERANCE
) -> Path | None:
    """Write `model.onnx` for registration (`extra_files={"model.onnx": path}`) when the ONNX path would be used:
    a linear final estimator whose export matches sklearn within `tolerance` on schema rows. None (and a log line
    saying why) otherwise; the server then uses the vectorised or sklearn path."""
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    try:
        if not type(final).__module__.startswith("sklearn.linear_model"):
            raise NotCompilable(f"{type(final).__name__} is not linear: ONNX float32 trees are inexact")
        data = export_onnx(pipeline, schema_features)
        onnx = OnnxPredictor(data, schema_features, positive_class_index(pipeline))
        names = [f["name"] for f in schema_features]
        diff = max_abs_difference(onnx, SklearnPredictor(pipeline, names), sample_columns(schema_features))
        if not diff <= tolerance:
            raise NotCompilable(f"max |p - p_sklearn| = {diff:.3g} exceeds {tolerance:g}")
    except NotCompilable as exc:
        logger.info("no ONNX export registered: %s", exc)
        return None
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


class OnnxPredictor:
    """An onnxruntime session on one thread (no spinning: the server owns the cores)."""

    kind = "onnx"

    def __init__(self, onnx_bytes: bytes, schema_features: Sequence[dict[str, Any]], positive_index: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise NotCompilable(f"onnxruntime cannot load the model: {exc}") from exc
        inputs = {i.name for i in self.session.get_inputs()}
        names = [f["name"] for f in schema_features]
        if inputs != set(names):
            raise NotCompilable(f"ONNX inputs {sorted(inputs)} differ from the feature schema {sorted(names)}")
        outputs = [o.name for o in self.session.get_outputs()]
        if "probabilities" not in outputs:
            raise NotCompilable(f"ONNX model has no 'probabilities' output (outputs: {outputs})")
        self._categorical = _categorical(schema_features)
        self._names = names
        self._pos = positive_index

    def predict_positive(self, columns: Columns) -> np.ndarray:
        feeds = {
            n: (
                columns[n].astype(object).reshape(-1, 1)
                if n in self._categorical
                else columns[n].astype(np.float32).reshape(-1, 1)
            )
            for n in self._names
        }
        (proba,) = self.session.run(["probabilities"], feeds)
        return np.asarray(proba, dtype=np.float64)[:, self._pos]


# -- hand-vectorised -------------------------------------------------------------------------------------------------
@dataclass
class _Block:
    """One ColumnTransformer entry replayed with numpy: an optional encoder, then numeric steps."""

    columns: list[str]
    encoder: str = ""  # "" | "onehot" | "ordinal"
    lookups: list[dict[str, int]] | None = None  # per column: category -> code (one-hot offset or ordinal code)
    widths: list[int] | None = None
    unknown: float = -1.0  # ordinal code of an unseen category
    steps: list[tuple[str, Any]] = field(default_factory=list)  # ("scale", (mean, scale)) | ("impute", stats)
    width: int = 0


def _flatten(steps: Sequence[tuple[str, Any]]) -> list[Any]:
    from sklearn.pipeline import Pipeline

    out: list[Any] = []
    for _name, step in steps:
        if isinstance(step, Pipeline):
            out.extend(_flatten(step.steps))
        elif step is not None and step != "passthrough":
            out.append(step)
    return out


def _block(trans: Any, cols: list[str]) -> _Block:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    steps = _flatten(trans.steps) if isinstance(trans, Pipeline) else ([] if trans == "passthrough" else [trans])
    block = _Block(list(cols))
    if steps and isinstance(steps[0], OneHotEncoder):
        enc = steps.pop(0)
        if enc.drop is not None or getattr(enc, "_infrequent_enabled", False):
            raise NotCompilable("OneHotEncoder with drop or infrequent categories is not supported")
        block.encoder = "onehot"
        block.lookups = [{str(c): i for i, c in enumerate(cats)} for cats in enc.categories_]
        block.widths = [len(c) for c in enc.categories_]
        block.width = sum(block.widths)
    elif steps and isinstance(steps[0], OrdinalEncoder):
        enc = steps.pop(0)
        if getattr(enc, "_infrequent_enabled", False) or enc.handle_unknown not in ("error", "use_encoded_value"):
            raise NotCompilable("OrdinalEncoder with infrequent categories is not supported")
        block.encoder = "ordinal"
        block.lookups = [{str(c): i for i, c in enumerate(cats)} for cats in enc.categories_]
        block.unknown = float(enc.unknown_value) if enc.handle_unknown == "use_encoded_value" else float("nan")
        block.width = len(cols)
    else:
        block.width = len(cols)
    for step in steps:
        if isinstance(step, StandardScaler):
            mean = step.mean_ if step.with_mean else np.zeros(block.width)
            scale = step.scale_ if step.with_std else np.ones(block.width)
            block.steps.append(("scale", (np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))))
        elif isinstance(step, SimpleImputer) and step.strategy in ("mean", "median", "most_frequent", "constant"):
            if getattr(step, "add_indicator", False):
                raise NotCompilable("SimpleImputer(add_indicator=True) is not supported")
            block.steps.append(("impute", np.asarray(step.statistics_, dtype=np.float64)))
        else:
            raise NotCompilable(f"{type(step).__name__} inside the ColumnTransformer is not supported")
    return block


class VectorisedPredictor:
    """The ColumnTransformer replayed with numpy lookups; later steps and the estimator run on its float64 output.

    Supported inside the ColumnTransformer: OneHotEncoder, OrdinalEncoder, StandardScaler, SimpleImputer and
    passthrough (also wrapped in Pipelines). Steps after it (PCA, ...) are the fitted sklearn objects themselves,
    fed the same matrix sklearn would feed them, so the result is exact; logistic regression is a dot product.
    """

    kind = "vectorised"

    def __init__(self, pipeline: Any) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        if not isinstance(pipeline, Pipeline):
            raise NotCompilable(f"expected a Pipeline, got {type(pipeline).__name__}")
        steps = _flatten(pipeline.steps)
        if len(steps) < 2 or not isinstance(steps[0], ColumnTransformer):
            raise NotCompilable("expected Pipeline([ColumnTransformer, ..., estimator])")
        prep, after, est = steps[0], steps[1:-1], steps[-1]
        blocks: list[_Block] = []
        for _name, trans, cols in prep.transformers_:
            if trans == "drop" or (isinstance(cols, list) and not cols):
                continue
            if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
                raise NotCompilable("ColumnTransformer columns must be given by name")
            blocks.append(_block(trans, cols))
        self._blocks = blocks
        self._width = sum(b.width for b in blocks)
        for step in after:
            if not hasattr(step, "transform"):
                raise NotCompilable(f"pipeline step {type(step).__name__} has no transform")
        self._after = after
        self._estimator = est
        if hasattr(est, "n_jobs"):
            est.n_jobs = 1  # one request, one thread: joblib's pool costs more than it saves at this size
        self._pos = positive_class_index(est)
        self._linear: tuple[np.ndarray, float] | None = None
        if isinstance(est, LogisticRegression) and est.coef_.shape[0] == 1 and not after:
            self._linear = (np.asarray(est.coef_[0], dtype=np.float64), float(est.intercept_[0]))
        elif not hasattr(est, "predict_proba"):
            raise NotCompilable(f"{type(est).__name__} has no predict_proba")

    def design_matrix(self, columns: Columns) -> np.ndarray:
        n = len(next(iter(columns.values())))
        out = np.zeros((n, self._width), dtype=np.float64)
        rows = np.arange(n)
        at = 0
        for block in self._blocks:
            if block.encoder == "onehot":
                assert block.lookups is not None and block.widths is not None
                for col, lookup, width in zip(block.columns, block.lookups, block.widths, strict=True):
                    # handle_unknown="ignore" semantics: an unseen category is an all-zero block
                    idx = np.fromiter((lookup.get(v, -1) for v in columns[col]), dtype=np.int64, count=n)
                    known = idx >= 0
                    out[rows[known], at + idx[known]] = 1.0
                    at += width
                continue
            if block.encoder == "ordinal":
                assert block.lookups is not None
                values = np.column_stack(
                    [
                        np.fromiter((lookup.get(v, block.unknown) for v in columns[c]), dtype=np.float64, count=n)
                        for c, lookup in zip(block.columns, block.lookups, strict=True)
                    ]
                )
            else:
                values = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in block.columns])
            for kind, params in block.steps:
                if kind == "scale":
                    mean, scale = params
                    values = (values - mean) / scale
                else:
                    values = np.where(np.isnan(values), params, values)
            out[:, at : at + block.width] = values
            at += block.width
        return out

    def predict_positive(self, columns: Columns) -> np.ndarray:
        x = self.design_matrix(columns)
        for step in self._after:
            x = step.transform(x)
        if self._linear is not None:
            coef, intercept = self._linear
            z = x @ coef + intercept
            p1 = 1.0 / (1.0 + np.exp(-z))
            return p1 if self._pos == 1 else 1.0 - p1
        return np.asarray(self._estimator.predict_proba(x), dtype=np.float64)[:, self._pos]


# -- selection -------------------------------------------------------------------------------------------------------
def sample_columns(schema_features: Sequence[dict[str, Any]], n: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Random rows within the schema (every allowed category, numeric values across their ranges) for checks."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for f in schema_features:
        if f.get("type") == "string":
            out[f["name"]] = rng.choice(np.asarray(f["allowed"], dtype=object), size=n)
        else:
            lo = float(f.get("min", 0.0) if f.get("min") is not None else 0.0)
            hi = float(f.get("max", lo + 100.0) if f.get("max") is not None else lo + 100.0)
            hi = min(hi, lo + 10_000.0)  # keep sampled values in a realistic band for wide ranges
            values = rng.uniform(lo, hi, size=n)
            out[f["name"]] = np.round(values) if f.get("type") == "integer" else np.round(values, 2)
    return out


def max_abs_difference(a: Predictor, b: Predictor, columns: Columns) -> float:
    return float(np.max(np.abs(a.predict_positive(columns) - b.predict_positive(columns))))


def compile_predictor(
    pipeline: Any,
    schema_features: Sequence[dict[str, Any]],
    *,
    onnx_path: str | Path | None = None,
    convert_onnx: bool = True,
    prefer: Sequence[str] = ("onnx", "vectorised"),
    check_columns: Columns | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Predictor:
    """The fastest path whose predictions match sklearn within `tolerance`; sklearn itself otherwise.

    `onnx_path` is a verified `model.onnx` shipped with the version; without it the pipeline is converted here
    when `convert_onnx`. Every skipped path is logged with its reason.
    """
    names = [f["name"] for f in schema_features]
    reference = SklearnPredictor(pipeline, names)
    check = check_columns if check_columns is not None else sample_columns(schema_features)
    for kind in prefer:
        try:
            candidate: Predictor
            if kind == "onnx":
                final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
                if not type(final).__module__.startswith("sklearn.linear_model"):
                    # float32 split thresholds: a tree ensemble passed the schema sample yet was off by 0.4 on
                    # real Telco rows (HistGradientBoosting), so only linear models take the ONNX path.
                    raise NotCompilable(f"{type(final).__name__} is not linear: ONNX float32 trees are inexact")
                if onnx_path is not None:
                    onnx_bytes = Path(onnx_path).read_bytes()
                elif convert_onnx:
                    onnx_bytes = export_onnx(pipeline, schema_features)
                else:
                    raise NotCompilable("no model.onnx shipped and conversion at load is off")
                candidate = OnnxPredictor(onnx_bytes, schema_features, positive_class_index(pipeline))
            elif kind == "vectorised":
                candidate = VectorisedPredictor(pipeline)
            else:
                raise NotCompilable(f"unknown fast path {kind!r}")
            diff = max_abs_difference(candidate, reference, check)
            if not diff <= tolerance:
                raise NotCompilable(f"max |p - p_sklearn| = {diff:.3g} exceeds {tolerance:g}")
        except NotCompilable as exc:
            logger.info("fast path %s not used: %s", kind, exc)
            continue
        logger.info(
            "serving with the %s path (max |p - p_sklearn| = %.3g on %d rows)", kind, diff, len(check[names[0]])
        )
        return candidate
    logger.warning("no compiled path matches sklearn within %g: serving with plain sklearn (slower)", tolerance)
    return reference
