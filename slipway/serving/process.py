"""Run the churn ModelServer as a child process on loopback: used by `slipway demo` and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from slipway.errors import SlipwayError


@contextmanager
def running_model_server(
    model_dir: str | Path, name: str, port: int, *, env: dict[str, str] | None = None, timeout: float = 90.0
) -> Iterator[str]:
    """Start `python -m slipway.serving.churn_model`, wait for /v2/health/ready, yield its base URL, stop it."""
    cmd = [sys.executable, "-m", "slipway.serving.churn_model", "--model-dir", str(model_dir), "--name", name]
    proc = subprocess.Popen(
        [*cmd, "--http-port", str(port)],
        env={"KSERVE_LOGLEVEL": "WARNING", **(env if env is not None else os.environ)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                raise SlipwayError(f"model server exited with code {proc.returncode}: {tail}")
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SlipwayError(f"model server at {base} was not ready after {timeout:.0f} s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
