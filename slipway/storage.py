"""Artifact store: one interface over a local folder (embedded default) and S3/MinIO (via `minio`)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
from pathlib import Path
from typing import Protocol

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from slipway.errors import ArtifactNotFoundError, ConfigError
from slipway.settings import Settings

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore(Protocol):
    """Keys are '/'-separated relative paths, e.g. `models/churn/v3/model.joblib`."""

    def put_file(self, key: str, path: str | Path) -> str: ...
    def get_file(self, key: str, path: str | Path) -> Path: ...
    def put_bytes(self, key: str, data: bytes) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def uri(self, key: str) -> str: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid artifact key {key!r}: use a relative path without '..' or empty parts")
    return key


class LocalArtifactStore:
    """Artifacts under a local folder; the embedded default."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_file(self, key: str, path: str | Path) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(dest)  # atomic: readers never see half a file
        return self.uri(key)

    def adopt_file(self, key: str, path: str | Path) -> str:
        """Like put_file for a file the caller gives up: renamed into place when it is on the same filesystem
        (atomic, no copy), copied otherwise; the source is gone either way."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, dest)
        except OSError:  # another filesystem
            self.put_file(key, path)
            Path(path).unlink()
        return self.uri(key)

    def get_file(self, key: str, path: str | Path) -> Path:
        src = self._path(key)
        if not src.is_file():
            raise ArtifactNotFoundError(f"no artifact {key!r} under {self.root}")
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def put_bytes(self, key: str, data: bytes) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        src = self._path(key)
        if not src.is_file():
            raise ArtifactNotFoundError(f"no artifact {key!r} under {self.root}")
        return src.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.endswith(".tmp")
        )

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


_TRANSIENT = (ConnectionError, TimeoutError, OSError)
_retry = retry(
    retry=retry_if_exception_type(_TRANSIENT),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.2, max=3),
    reraise=True,
)


class S3ArtifactStore:
    """Artifacts in an S3/MinIO bucket through the `minio` client; transient errors are retried."""

    def __init__(self, client: object, bucket: str, prefix: str = "") -> None:
        from minio import Minio

        if not isinstance(client, Minio):
            raise ConfigError("S3ArtifactStore needs a minio.Minio client")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._ensure_bucket()

    @_retry
    def _ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
            logger.info("created bucket %s", self.bucket)

    def _object(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @_retry
    def put_file(self, key: str, path: str | Path) -> str:
        self.client.fput_object(self.bucket, self._object(key), str(path))
        return self.uri(key)

    @_retry
    def get_file(self, key: str, path: str | Path) -> Path:
        from minio.error import S3Error

        try:
            self.client.fget_object(self.bucket, self._object(key), str(path))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchBucket"):
                raise ArtifactNotFoundError(f"no artifact {key!r} in s3://{self.bucket}") from e
            raise
        return Path(path)

    @_retry
    def put_bytes(self, key: str, data: bytes) -> str:
        self.client.put_object(self.bucket, self._object(key), io.BytesIO(data), length=len(data))
        return self.uri(key)

    @_retry
    def get_bytes(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self._object(key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchBucket"):
                raise ArtifactNotFoundError(f"no artifact {key!r} in s3://{self.bucket}") from e
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self._object(key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchBucket", "NotFound"):
                return False
            raise
        return True

    @_retry
    def list(self, prefix: str) -> list[str]:
        full = self._object(prefix) if prefix else self.prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self.client.list_objects(self.bucket, prefix=full, recursive=True)
        return sorted(o.object_name[strip:] for o in objects if o.object_name)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object(key)}"


def store_from_settings(settings: Settings) -> ArtifactStore:
    """The configured artifact store: S3/MinIO when `SLIPWAY_S3_ENDPOINT` is set, else a local folder."""
    if not settings.uses_s3:
        return LocalArtifactStore(settings.artifact_root)
    from minio import Minio

    if settings.s3_access_key is None or settings.s3_secret_key is None:
        raise ConfigError("SLIPWAY_S3_ENDPOINT is set but SLIPWAY_S3_ACCESS_KEY / SLIPWAY_S3_SECRET_KEY are not")
    client = Minio(
        settings.s3_endpoint or "",
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
    return S3ArtifactStore(client, settings.s3_bucket)
