"""Model registry on S3 (moto server, through the minio client)."""

from __future__ import annotations

import joblib
import pytest
from sklearn.dummy import DummyClassifier

from slipway.registry import ModelRegistry, load_verified_model
from slipway.storage import S3ArtifactStore, sha256_file

pytestmark = pytest.mark.integration


def test_registry_round_trip_on_s3(minio_client, s3_bucket, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = S3ArtifactStore(minio_client, s3_bucket)
    registry = ModelRegistry(store)
    model_path = tmp_path / "model.joblib"
    joblib.dump(DummyClassifier(strategy="prior").fit([[0], [1], [2]], [0, 1, 1]), model_path)

    v1 = registry.register(
        "churn",
        model_path,
        metrics={"roc_auc": 0.8},
        params={"algorithm": "dummy"},
        training_data_sha256="cd" * 32,
        feature_schema={"features": []},
        code_version="test",
    )
    v2 = registry.register(
        "churn",
        model_path,
        metrics={"roc_auc": 0.85},
        params={"algorithm": "dummy"},
        training_data_sha256="cd" * 32,
        feature_schema={"features": []},
    )
    assert (v1.version, v2.version) == (1, 2)
    assert v1.uri == f"s3://{s3_bucket}/models/churn/v1/model.joblib"
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]
    assert registry.get("churn").metrics == {"roc_auc": 0.85}
    assert store.get_bytes("models/churn/v1/model.joblib") == model_path.read_bytes()
    assert registry.read_model_bytes("churn", 2) == model_path.read_bytes()

    out = registry.download("churn", 1, tmp_path / "dl")
    assert sha256_file(out / "model.joblib") == v1.sha256
    model, meta = load_verified_model(out)
    assert meta == v1
    assert model.predict([[5]]).tolist() == [1]  # type: ignore[attr-defined]
