"""The one Settings object. Built once by an entry point and passed down as plain values."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Slipway configuration from `SLIPWAY_*` environment variables or a `.env` file.

    The defaults are the embedded ones: a local artifact folder, SQLite for Feast and in-process servers.
    Real endpoints (MinIO/S3, Redis) come in by setting the corresponding fields.
    """

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", env_file=".env", env_file_encoding="utf-8", extra="forbid")

    home: Path = Field(Path(".slipway"), description="Local working folder: artifacts, Feast data, reports.")
    seed: int = 42
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Artifact store: a local folder unless an S3 endpoint is configured.
    s3_endpoint: str | None = Field(None, description="host:port of MinIO/S3; unset means local folder.")
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "slipway-artifacts"
    s3_region: str = "us-east-1"
    s3_secure: bool = True

    # Feature store.
    feast_repo: Path = Path("feature_repo")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Serving.
    serving_token: SecretStr | None = Field(None, description="Bearer token required by the model server.")
    serving_port: int = 8080

    # Cluster form.
    image: str = "ghcr.io/slipway-mlops/slipway:0.1.0"
    namespace: str = "slipway"
    storage_uri_prefix: str = "s3://slipway-artifacts/models"

    @property
    def artifact_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def uses_s3(self) -> bool:
        return self.s3_endpoint is not None
