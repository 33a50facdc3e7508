"""Model registry on an artifact store: `models/<name>/v<N>/model.joblib` plus `model.json` metadata."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

import slipway
from slipway.errors import ArtifactNotFoundError, IntegrityError, RegistryError
from slipway.storage import ArtifactStore, sha256_file

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
EVENTS_DIR = "events"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION_RE = re.compile(r"^v(\d+)$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Stage = Literal["candidate", "canary", "production", "archived", "rejected"]
STAGES: tuple[str, ...] = ("candidate", "canary", "production", "archived", "rejected")


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
    extra_files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256, beside the model")
    annotations: dict[str, Any] = Field(default_factory=dict, description="decisions, model card, CV scores, ...")
    stage: str = "candidate"
    uri: str = ""


class RegistryEvent(BaseModel):
    """One entry of a model's history: a registration, a stage change, a decision and its evidence."""

    id: str
    at: datetime
    name: str
    version: int | None
    kind: str  # e.g. registered, stage, champion-challenger, canary-step, drift, retrain, rollback
    message: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


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
        model_file: str = MODEL_FILE,
        extra_files: dict[str, str | Path] | None = None,
        annotations: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Upload a model file as the next version of `name`; metadata is written last.

        `model_file` is the stored file name (e.g. `model.pt` for TorchScript). `extra_files` maps stored names
        to local paths (an ONNX export, class names, a model card); each is stored with its sha256 and verified
        by `download`. `annotations` is free-form JSON metadata (decisions, CV fold scores, ...).
        """
        _check_name(name)
        path = Path(model_path)
        if not path.is_file():
            raise ArtifactNotFoundError(f"model file {path} does not exist")
        extras = {k: Path(v) for k, v in (extra_files or {}).items()}
        for file_name, extra in [(model_file, path), *extras.items()]:
            if not _FILE_RE.match(file_name) or file_name == METADATA_FILE:
                raise RegistryError(f"invalid stored file name {file_name!r}")
            if not extra.is_file():
                raise ArtifactNotFoundError(f"file {extra} to register as {file_name!r} does not exist")
        existing = self._version_numbers(name)
        version = (existing[-1] + 1) if existing else 1
        model_key = self._key(name, version, model_file)
        meta_key = self._key(name, version, METADATA_FILE)
        if self.store.exists(meta_key):
            raise RegistryError(f"{name} v{version} already exists; retry the registration")
        digest = sha256_file(path)
        uri = self.store.put_file(model_key, path)
        extra_digests: dict[str, str] = {}
        for file_name, extra in extras.items():
            extra_digests[file_name] = sha256_file(extra)
            self.store.put_file(self._key(name, version, file_name), extra)
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
            model_file=model_file,
            extra_files=extra_digests,
            annotations=dict(annotations or {}),
            uri=uri,
        )
        self.store.put_bytes(meta_key, meta.model_dump_json(indent=2).encode())
        logger.info("registered %s v%d (sha256 %s) at %s", name, version, digest[:12], uri)
        self.record_event(name, "registered", version=version, message=f"sha256 {digest}", evidence=meta.metrics)
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
            fetched = [(meta.model_file, tmp_model)]
            for file_name, expected in meta.extra_files.items():
                tmp_extra = Path(tmp) / file_name
                self.store.get_file(self._key(name, meta.version, file_name), tmp_extra)
                if (got := sha256_file(tmp_extra)) != expected:
                    raise IntegrityError(
                        f"downloaded {name} v{meta.version} file {file_name} has sha256 {got}, registry records "
                        f"{expected}"
                    )
                fetched.append((file_name, tmp_extra))
            for file_name, tmp_file in fetched:
                tmp_file.replace(dest / file_name)
        (dest / METADATA_FILE).write_text(meta.model_dump_json(indent=2))
        logger.info("downloaded %s v%d to %s", name, meta.version, dest)
        return dest

    def read_model_bytes(self, name: str, version: int | None = None) -> bytes:
        """Raw bytes of a version's model file (not verified; use `download` for that)."""
        meta = self.get(name, version)
        return self.store.get_bytes(self._key(name, meta.version, meta.model_file))

    # --- lifecycle: stages, annotations, history, rollback -------------------------------------------------

    def _write_meta(self, meta: ModelVersion) -> None:
        self.store.put_bytes(self._key(meta.name, meta.version, METADATA_FILE), meta.model_dump_json(indent=2).encode())

    def annotate(self, name: str, version: int, **annotations: Any) -> ModelVersion:
        """Merge JSON-serialisable `annotations` into a version's metadata (the model file is never rewritten)."""
        meta = self.get(name, version)
        meta.annotations.update(annotations)
        self._write_meta(meta)
        return meta

    def record_event(
        self,
        name: str,
        kind: str,
        *,
        version: int | None = None,
        message: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> RegistryEvent:
        """Append one event to the model's history (one immutable object per event, so S3 needs no appends)."""
        _check_name(name)
        now = datetime.now(UTC)
        event = RegistryEvent(
            id=f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}",
            at=now,
            name=name,
            version=version,
            kind=kind,
            message=message,
            evidence=dict(evidence or {}),
        )
        key = f"{self.prefix}/{name}/{EVENTS_DIR}/{event.id}.json"
        self.store.put_bytes(key, event.model_dump_json(indent=2).encode())
        logger.info("%s %s v%s: %s", name, kind, version, message)
        return event

    def history(self, name: str) -> list[RegistryEvent]:
        """Every event of `name`, oldest first."""
        base = f"{self.prefix}/{_check_name(name)}/{EVENTS_DIR}"
        keys = sorted(k for k in self.store.list(base) if k.endswith(".json"))
        events = [RegistryEvent.model_validate_json(self.store.get_bytes(k)) for k in keys]
        return sorted(events, key=lambda e: (e.at, e.id))

    def set_stage(
        self, name: str, version: int, stage: str, *, message: str = "", evidence: dict[str, Any] | None = None
    ) -> ModelVersion:
        """Move a version to `stage`; promoting to production archives the previous production version."""
        if stage not in STAGES:
            raise RegistryError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        meta = self.get(name, version)
        if stage == "production":
            for other in self.list_versions(name):
                if other.version != version and other.stage == "production":
                    self._change_stage(other, "archived", message="superseded", evidence={})
        return self._change_stage(meta, stage, message=message, evidence=evidence or {})

    def _change_stage(self, meta: ModelVersion, stage: str, *, message: str, evidence: dict[str, Any]) -> ModelVersion:
        previous = meta.stage
        meta.stage = stage
        self._write_meta(meta)
        self.record_event(
            meta.name,
            "stage",
            version=meta.version,
            message=message or f"{previous} -> {stage}",
            evidence={**evidence, "from_stage": previous, "to_stage": stage},
        )
        return meta

    def production(self, name: str) -> ModelVersion | None:
        """The version in production, or None."""
        current = [v for v in self.list_versions(name) if v.stage == "production"]
        return current[-1] if current else None

    def production_lineage(self, name: str) -> list[int]:
        """Versions that went to production, oldest first, with rolled-back ones removed (the rollback stack)."""
        stack: list[int] = []
        for event in self.history(name):
            if event.kind == "rollback":
                if stack:
                    stack.pop()
            elif (
                event.kind == "stage"
                and event.version is not None
                and event.evidence.get("to_stage") == "production"
                and not event.evidence.get("rollback")
            ):
                stack.append(event.version)
        return stack

    def rollback(self, name: str, *, reason: str = "manual rollback") -> ModelVersion:
        """Restore the version that was in production before the current one; the current one is archived.

        The history is replayed as a stack of promotions, so repeated rollbacks walk back one version each.
        """
        current = self.production(name)
        if current is None:
            raise RegistryError(f"{name!r} has no production version to roll back from")
        lineage = [v for v in self.production_lineage(name) if v != current.version]
        if not lineage:
            raise RegistryError(f"{name!r} v{current.version} has no earlier production version to restore")
        target = lineage[-1]
        self.record_event(name, "rollback", version=current.version, message=reason, evidence={"to_version": target})
        self._change_stage(current, "archived", message=f"rolled back: {reason}", evidence={"rollback": True})
        return self._change_stage(
            self.get(name, target),
            "production",
            message=f"restored by rollback from v{current.version}",
            evidence={"rollback": True, "from_version": current.version},
        )
