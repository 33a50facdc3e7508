"""Model registry on a local artifact store: versioning, metadata, sha256 verification."""

from __future__ import annotations

import json
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import slipway
from slipway.data.churn_schema import feature_schema
from slipway.errors import ArtifactNotFoundError, IntegrityError, RegistryError
from slipway.registry import ModelRegistry, ModelVersion, load_verified_model, sha256_dataframe
from slipway.storage import LocalArtifactStore, sha256_file

pytestmark = pytest.mark.unit


@pytest.fixture
def model_file(tmp_path):  # type: ignore[no-untyped-def]
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    path = tmp_path / "src" / "model.joblib"
    path.parent.mkdir()
    joblib.dump(model, path)
    return path


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:  # type: ignore[no-untyped-def]
    return ModelRegistry(LocalArtifactStore(tmp_path / "artifacts"))


def _register(registry: ModelRegistry, model_file, **overrides) -> ModelVersion:  # type: ignore[no-untyped-def]
    kwargs: dict[str, Any] = {
        "metrics": {"roc_auc": 0.9},
        "params": {"algorithm": "logistic_regression"},
        "training_data_sha256": "ab" * 32,
        "feature_schema": feature_schema(),
        "code_version": "test",
    }
    kwargs.update(overrides)
    return registry.register("churn", model_file, **kwargs)


def test_register_stores_model_and_metadata(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mv = _register(registry, model_file)
    assert mv.version == 1
    assert mv.stage == "candidate"
    assert mv.model_file == "model.joblib"
    assert mv.sha256 == sha256_file(model_file)
    root = tmp_path / "artifacts" / "models" / "churn" / "v1"
    assert (root / "model.joblib").read_bytes() == model_file.read_bytes()
    stored = json.loads((root / "model.json").read_text())
    assert stored["sha256"] == mv.sha256
    assert stored["feature_schema"]["target"] == "Churn"
    assert mv.uri.startswith("file://") and mv.uri.endswith("models/churn/v1/model.joblib")


def test_versions_increment_and_get_latest(registry: ModelRegistry, model_file) -> None:  # type: ignore[no-untyped-def]
    for expected in (1, 2, 3):
        assert _register(registry, model_file, metrics={"roc_auc": 0.8 + expected / 100}).version == expected
    assert [v.version for v in registry.list_versions("churn")] == [1, 2, 3]
    assert registry.get("churn").version == 3
    assert registry.get("churn", 2).metrics["roc_auc"] == pytest.approx(0.82)
    assert registry.list_versions("other") == []


def test_get_missing_raises(registry: ModelRegistry, model_file) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ArtifactNotFoundError):
        registry.get("churn")
    _register(registry, model_file)
    with pytest.raises(ArtifactNotFoundError):
        registry.get("churn", 7)
    with pytest.raises(RegistryError):
        registry.get("../etc")


def test_download_and_load_verified(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _register(registry, model_file)
    out = registry.download("churn", None, tmp_path / "dl")
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib", "model.json"]
    model, meta = load_verified_model(out)
    assert meta.version == 1
    assert model.predict([[3.0]]).tolist() == [1]  # type: ignore[attr-defined]


def test_tampered_model_raises_integrity_error(registry: ModelRegistry, model_file, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _register(registry, model_file)
    out = registry.download("churn", 1, tmp_path / "dl")
    (out / "model.joblib").write_bytes(b"not a pickle")
    loaded = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(IntegrityError):
        load_verified_model(out)
    assert loaded == []  # joblib.load never ran on the bad file


def test_tampered_store_fails_download(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _register(registry, model_file)
    (tmp_path / "artifacts" / "models" / "churn" / "v1" / "model.joblib").write_bytes(b"evil")
    with pytest.raises(IntegrityError):
        registry.download("churn", 1, tmp_path / "dl")
    assert not (tmp_path / "dl" / "model.joblib").exists()


def test_register_missing_file_and_defaults(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ArtifactNotFoundError):
        _register(registry, tmp_path / "nope.joblib")
    mv = _register(registry, model_file, code_version=None)
    assert mv.code_version.startswith(slipway.__version__)


def test_sha256_dataframe_is_content_sensitive() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert sha256_dataframe(df) == sha256_dataframe(df.copy())
    changed = df.copy()
    changed.loc[1, "b"] = "w"
    assert sha256_dataframe(changed) != sha256_dataframe(df)
    assert len(sha256_dataframe(df)) == 64


def test_extra_files_and_annotations_are_stored_and_verified(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    onnx = tmp_path / "src" / "model.onnx"
    onnx.write_bytes(b"onnx-bytes")
    mv = _register(registry, model_file, extra_files={"model.onnx": onnx}, annotations={"cv_scores": [0.8, 0.9]})
    assert mv.extra_files == {"model.onnx": sha256_file(onnx)}
    assert registry.get("churn", 1).annotations["cv_scores"] == [0.8, 0.9]
    dest = registry.download("churn", 1, tmp_path / "dl")
    assert (dest / "model.onnx").read_bytes() == b"onnx-bytes"

    (tmp_path / "artifacts" / "models" / "churn" / "v1" / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        registry.download("churn", 1, tmp_path / "dl2")


def test_custom_model_file_name(registry: ModelRegistry, model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {"metrics": {}, "params": {}, "training_data_sha256": "ab" * 32, "feature_schema": {}}
    mv = registry.register("churn", model_file, model_file="model.pt", **base)
    assert mv.model_file == "model.pt"
    assert (registry.download("churn", 1, tmp_path / "dl") / "model.pt").read_bytes() == model_file.read_bytes()
    with pytest.raises(RegistryError, match="invalid stored file name"):
        registry.register("churn", model_file, model_file="../escape", **base)


def test_stages_history_and_repeated_rollback(registry: ModelRegistry, model_file) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        _register(registry, model_file)
    for version in (1, 2, 3):
        registry.set_stage("churn", version, "production", evidence={"p_value": 0.01})
    assert registry.production("churn").version == 3  # type: ignore[union-attr]
    assert [v.stage for v in registry.list_versions("churn")] == ["archived", "archived", "production"]
    registry.annotate("churn", 3, decision={"promote": True})
    assert registry.get("churn", 3).annotations["decision"] == {"promote": True}

    assert registry.rollback("churn", reason="error rate").version == 2
    assert registry.production("churn").version == 2  # type: ignore[union-attr]
    assert registry.rollback("churn").version == 1
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback("churn")

    kinds = [e.kind for e in registry.history("churn")]
    assert kinds.count("registered") == 3
    assert kinds.count("rollback") == 2
    rollback = next(e for e in registry.history("churn") if e.kind == "rollback")
    assert rollback.version == 3 and rollback.evidence == {"to_version": 2} and rollback.message == "error rate"
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.set_stage("churn", 1, "shipped")


def test_rollback_without_production_is_refused(registry: ModelRegistry, model_file) -> None:  # type: ignore[no-untyped-def]
    _register(registry, model_file)
    with pytest.raises(RegistryError, match="no production version"):
        registry.rollback("churn")
