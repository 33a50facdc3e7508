"""Run the churn ModelServer as a child process on loopback: used by `slipway demo` and the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from slipway.errors import SlipwayError


@contextmanager
def running_model_server(
    model_dir: str | Path,
    name: str,
    port: int,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Start `python -m slipway.serving.churn_model`, wait for /v2/health/ready, yield its base URL, stop it.

    `extra_args` go to the server's command line (e.g. `--workers 2`, `--payload-log DIR`, `--feast-repo DIR`).
    """
    cmd = [sys.executable, "-m", "slipway.serving.churn_model", "--model-dir", str(model_dir), "--name", name]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally block below
    proc = subprocess.Popen(
        [*cmd, "--http-port", str(port), *extra_args],
        env={"KSERVE_LOGLEVEL": "WARNING", **(env if env is not None else os.environ)},
        start_new_session=True,  # workers (--workers N) are stopped with their supervisor's process group
        stdout=subprocess.DEVNULL,
        stderr=log,  # a file, not a pipe: a pipe nobody reads fills up and blocks the server
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
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
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
