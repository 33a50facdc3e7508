"""Image folders on S3 (moto): upload, materialise through the artifact-store settings, decode with quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipway.errors import ConfigError, DataValidationError
from slipway.settings import Settings
from slipway.storage import S3ArtifactStore
from slipway.vision.data import load_image_folder, make_synthetic_image_folder, upload_image_folder
from slipway.vision.workflow import materialize_source

pytestmark = pytest.mark.integration


def test_s3_image_folder_round_trip_with_quarantine(
    moto_s3: str,
    minio_client,
    s3_bucket: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    local = make_synthetic_image_folder(tmp_path / "local", n_per_class=3, image_size=40, seed=2)
    (local / "square" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    store = S3ArtifactStore(minio_client, s3_bucket)
    assert upload_image_folder(store, local, "datasets/shapes") == 10
    store.put_bytes("datasets/shapes-old/circle/x.png", b"unrelated")  # a sibling prefix must not leak in

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=tmp_path / "home",
        s3_endpoint=moto_s3,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_secure=False,
    )
    root = materialize_source(f"s3://{s3_bucket}/datasets/shapes", tmp_path / "dl", settings)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*")) == sorted(
        p.relative_to(local).as_posix() for p in local.rglob("*.*")
    )
    data = load_image_folder(root, image_size=32, quarantine_path=tmp_path / "q.jsonl")
    assert data.class_counts() == {"circle": 3, "square": 3, "triangle": 3}
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == ["square/corrupt.png"]

    with pytest.raises(DataValidationError, match="no objects"):
        materialize_source(f"s3://{s3_bucket}/datasets/missing", tmp_path / "dl2", settings)
    with pytest.raises(ConfigError, match="SLIPWAY_S3_ENDPOINT"):
        materialize_source(f"s3://{s3_bucket}/datasets/shapes", tmp_path / "dl3", Settings(_env_file=None))  # type: ignore[call-arg]
