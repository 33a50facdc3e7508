"""Shared fixtures. A missing service or dataset skips a test locally and fails it under CI=true."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with `reason` outside CI; fail under CI=true, where every service and dataset must exist."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_dataset(*parts: str) -> Path:
    path = SHARED_DATASETS.joinpath(*parts)
    require(path.exists(), f"dataset {path} not found (../shared/datasets beside the repo)")
    return path


@pytest.fixture(scope="session")
def telco_csv() -> Path:
    """The real IBM Telco churn file (7043 rows)."""
    return shared_dataset("telco-churn", "Telco-Customer-Churn.csv")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server on loopback; yields its `host:port` endpoint."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        require(False, "moto[server] is not installed")
        raise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def minio_client(moto_s3: str):  # type: ignore[no-untyped-def]
    from minio import Minio

    return Minio(moto_s3, access_key="testing", secret_key="testing", secure=False, region="us-east-1")


@pytest.fixture
def s3_bucket(minio_client) -> str:  # type: ignore[no-untyped-def]
    """A fresh bucket name per test (kebab-case, as S3 requires)."""
    return f"slipway-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis on 127.0.0.1:6379, database 13 so other users' keys are left alone."""
    require(port_open("127.0.0.1", 6379), "Redis is not listening on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/13"
