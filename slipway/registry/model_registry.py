"""Model registry on an artifact store: `models/<name>/v<N>/model.joblib` plus `model.json` metadata."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

import slipway
from slipway.errors import ArtifactNotFoundError, IntegrityError, RegistryError
from slipway.storage import ArtifactStore, sha256_file

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION_RE = re.compile(r"^v(\d+)$")


class ModelVersion(BaseModel):
    """Metadata of one registered model version, stored as `model.json` beside the model file."""

    name: str
    version: int
    sha256: str
    created_at: datetime
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    training_data_sha256: str
    code_version: str
    feature_schema: dict[str, Any] = Field(default_factory=dict)
    model_file: str = MODEL_FILE
    stage: str = "candidate"
    uri: str = ""


def sha256_dataframe(df: pd.DataFrame) -> str:
    """Hex sha256 of a frame's content (row-wise pandas hashes, index included)."""
    hashed = pd.util.hash_pandas_object(df, index=True).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("|".join(map(str, df.columns)).encode())
    return digest.hexdigest()


def default_code_version() -> str:
    """`slipway.__version__`, plus `+g<short sha>` when run inside a git checkout."""
    version = slipway.__version__
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(slipway.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        sha = out.stdout.strip()
        if sha:
            version = f"{version}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def _finite_metrics(metrics: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if math.isfinite(float(value)):
            out[key] = float(value)
        else:
            logger.warning("dropping non-finite metric %s=%r: JSON cannot hold it", key, value)
    return out


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def load_verified_model(model_dir: str | Path) -> tuple[object, ModelVersion]:
    """Load `model.joblib` from a folder after checking its sha256 against `model.json`."""
    import joblib

    folder = Path(model_dir)
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise ArtifactNotFoundError(f"no {METADATA_FILE} in {folder}")
    meta = ModelVersion.model_validate_json(meta_path.read_text())
    model_path = folder / meta.model_file
    if not model_path.is_file():
        raise ArtifactNotFoundError(f"no {meta.model_file} in {folder}")
    actual = sha256_file(model_path)
    if actual != meta.sha256:
        raise IntegrityError(
            f"{model_path} has sha256 {actual} but {meta.name} v{meta.version} records {meta.sha256}; "
            "the file is corrupt or was tampered with: download it again"
        )
    return joblib.load(model_path), meta  # only after the digest matched


class ModelRegistry:
    """Versioned models on any `ArtifactStore` (local folder or S3/MinIO)."""

    def __init__(self, store: ArtifactStore, prefix: str = "models") -> None:
        self.store = store
        self.prefix = prefix.strip("/")

    def _key(self, name: str, version: int, file: str) -> str:
        return f"{self.prefix}/{name}/v{version}/{file}"

    def _version_numbers(self, name: str) -> list[int]:
        base = f"{self.prefix}/{_check_name(name)}/"
        numbers = set()
        for key in self.store.list(base.rstrip("/")):  # stores reject a trailing '/'; filtered below
            parts = key[len(base) :].split("/") if key.startswith(base) else []
            if len(parts) == 2 and parts[1] == METADATA_FILE and (m := _VERSION_RE.match(parts[0])):
                numbers.add(int(m.group(1)))
        return sorted(numbers)

    def register(
        self,
        name: str,
        model_path: str | Path,
        *,
        metrics: dict[str, float],
        params: dict[str, Any],
        training_data_sha256: str,
        feature_schema: dict[str, Any],
        code_version: str | None = None,
    ) -> ModelVersion:
        """Upload a model file as the next version of `name`; metadata is written last."""
        _check_name(name)
        path = Path(model_path)
        if not path.is_file():
            raise ArtifactNotFoundError(f"model file {path} does not exist")
        existing = self._version_numbers(name)
        version = (existing[-1] + 1) if existing else 1
        model_key = self._key(name, version, MODEL_FILE)
        meta_key = self._key(name, version, METADATA_FILE)
        if self.store.exists(meta_key):
            raise RegistryError(f"{name} v{version} already exists; retry the registration")
        digest = sha256_file(path)
        uri = self.store.put_file(model_key, path)
        meta = ModelVersion(
            name=name,
            version=version,
            sha256=digest,
            created_at=datetime.now(UTC),
            metrics=_finite_metrics(metrics),
            params=dict(params),
            training_data_sha256=training_data_sha256,
            code_version=code_version or default_code_version(),
            feature_schema=feature_schema,
            uri=uri,
        )
        self.store.put_bytes(meta_key, meta.model_dump_json(indent=2).encode())
        logger.info("registered %s v%d (sha256 %s) at %s", name, version, digest[:12], uri)
        return meta

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of `name`, oldest first; empty when none is registered."""
        return [self._read_meta(name, v) for v in self._version_numbers(name)]

    def _read_meta(self, name: str, version: int) -> ModelVersion:
        try:
            raw = self.store.get_bytes(self._key(name, version, METADATA_FILE))
        except ArtifactNotFoundError as e:
            raise ArtifactNotFoundError(f"model {name!r} has no version {version}") from e
        return ModelVersion.model_validate_json(raw)

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """Metadata of one version; `None` means the latest."""
        numbers = self._version_numbers(name)
        if not numbers:
            raise ArtifactNotFoundError(f"no model named {name!r} is registered")
        if version is None:
            version = numbers[-1]
        elif version not in numbers:
            raise ArtifactNotFoundError(f"model {name!r} has no version {version}; versions: {numbers}")
        return self._read_meta(name, version)

    def download(self, name: str, version: int | None, dest_dir: str | Path) -> Path:
        """Fetch `model.joblib` and `model.json` into `dest_dir`, verifying the sha256."""
        meta = self.get(name, version)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            tmp_model = Path(tmp) / meta.model_file
            self.store.get_file(self._key(name, meta.version, meta.model_file), tmp_model)
            actual = sha256_file(tmp_model)
            if actual != meta.sha256:
                raise IntegrityError(
                    f"downloaded {name} v{meta.version} has sha256 {actual}, registry records {meta.sha256}"
                )
            tmp_model.replace(dest / meta.model_file)
        (dest / METADATA_FILE).write_text(meta.model_dump_json(indent=2))
        logger.info("downloaded %s v%d to %s", name, meta.version, dest)
        return dest

    def read_model_bytes(self, name: str, version: int | None = None) -> bytes:
        """Raw bytes of a version's model file (not verified; use `download` for that)."""
        meta = self.get(name, version)
        return self.store.get_bytes(self._key(name, meta.version, meta.model_file))
