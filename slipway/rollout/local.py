"""Local rollouts: model servers as child processes on loopback, synthetic traffic, and the whole canary loop."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from slipway.errors import SlipwayError


@dataclass
class ServerSpec:
    """`python -m <module> --model-dir DIR --name NAME --http-port PORT [extra args]`."""

    module: str
    model_dir: str | Path
    name: str
    port: int
    extra_args: list[str] = field(default_factory=list)


@contextmanager
def running_servers(
    specs: Sequence[ServerSpec], *, env: dict[str, str] | None = None, timeout: float = 90.0
) -> Iterator[list[str]]:
    """Start every server at once, wait for each `/v2/health/ready`, yield their base URLs, stop them all."""
    base_env = {"KSERVE_LOGLEVEL": "WARNING", **(env if env is not None else os.environ)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            cmd = [sys.executable, "-m", spec.module, "--model-dir", str(spec.model_dir), "--name", spec.name]
            procs.append(
                subprocess.Popen(
                    [*cmd, "--http-port", str(spec.port), *spec.extra_args],
                    env=base_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        urls = [f"http://127.0.0.1:{spec.port}" for spec in specs]
        deadline = time.monotonic() + timeout
        for proc, url in zip(procs, urls, strict=True):
            while True:
                if proc.poll() is not None:
                    tail = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                    raise SlipwayError(f"model server {url} exited with code {proc.returncode}: {tail}")
                try:
                    if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SlipwayError(f"model server at {url} was not ready after {timeout:.0f} s")
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def churn_request_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` schema-valid churn instances (random categories and in-range numbers) to drive traffic with."""
    from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES

    rng = np.random.default_rng(seed)
    columns: dict[str, list[Any]] = {}
    for col in FEATURE_COLUMNS:
        if col in CATEGORICAL_FEATURES:
            columns[col] = rng.choice(CATEGORICAL_FEATURES[col], size=n).tolist()
        else:
            kind, lo, hi = NUMERIC_FEATURES[col]
            low, high = float(lo), float(min(hi, 200))
            values = rng.uniform(low, high, size=n)
            columns[col] = [int(v) for v in values] if kind == "integer" else values.round(2).tolist()
    return [{c: columns[c][i] for c in FEATURE_COLUMNS} for i in range(n)]


def warm_up(urls: Sequence[str], path: str, body: dict[str, Any], requests: int = 20) -> None:
    """A few requests per server before measuring: first calls pay for lazy imports and caches, which would
    otherwise land in the canary's p99 and nowhere else."""
    for url in urls:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(requests):
                with contextlib.suppress(httpx.HTTPError):
                    client.post(path, json=body)


def traffic_driver(
    base_url: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    min_requests: int,
    *,
    workers: int = 3,
    headroom: float = 1.4,
) -> Callable[[int], None]:
    """A `drive(percent)` for the canary controller: enough requests that the canary gets ~`min_requests`."""
    position = itertools.count()
    lock = threading.Lock()

    def send(count: int) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            for _ in range(count):
                with lock:
                    body = bodies[next(position) % len(bodies)]
                with contextlib.suppress(httpx.HTTPError):  # the router records failures itself
                    client.post(path, json=body)

    def drive(percent: int) -> None:
        total = math.ceil(min_requests * headroom * 100 / max(percent, 1))
        per_worker = math.ceil(total / workers)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(send, [per_worker] * workers))

    return drive


def run_local_canary(
    registry: Any,
    model: str,
    canary_version: int,
    policy: Any,
    workdir: str | Path,
    *,
    primary_version: int | None = None,
    router_port: int = 8095,
    server_ports: tuple[int, int] = (8096, 8097),
    canary_faults: dict[str, float] | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Serve the production (or `primary_version`) and canary versions locally behind the router, drive
    synthetic traffic through it and let the controller decide. Returns the `RolloutResult`."""
    from slipway.errors import RolloutError
    from slipway.rollout.controller import CanaryController, LocalRouterBackend
    from slipway.rollout.router import TrafficRouter, Variant, serve_router

    if primary_version is None:
        current = registry.production(model)
        if current is None:
            raise RolloutError(f"{model!r} has no production version: pass --primary-version")
        primary_version = int(current.version)
    work = Path(workdir)
    dirs = [registry.download(model, v, work / f"v{v}") for v in (primary_version, canary_version)]
    is_recommender = registry.get(model, canary_version).feature_schema.get("kind") == "recommender"
    module = "slipway.serving.recommender_model" if is_recommender else "slipway.serving.churn_model"
    specs = [ServerSpec(module, d, model, port) for d, port in zip(dirs, server_ports, strict=True)]
    if is_recommender:
        from slipway.registry import load_verified_model

        recommender, _ = load_verified_model(dirs[0])
        users = list(getattr(recommender, "user_index", {}))[:2000] or ["anonymous"]
        bodies = [{"instances": [{"user_id": u}]} for u in users]
    else:
        bodies = [{"instances": [row]} for row in churn_request_rows(1000)]
    path = f"/v1/models/{model}:predict"
    with running_servers(specs, env=env, timeout=180) as (primary_url, canary_url):
        warm_up([primary_url, canary_url], path, bodies[0])
        router = TrafficRouter(
            [
                Variant("canary", canary_url, 0, version=canary_version, **(canary_faults or {})),
                Variant("primary", primary_url, 100, version=primary_version),
            ]
        )
        with serve_router(router, router_port) as base:
            drive = traffic_driver(base, path, bodies, policy.min_requests)
            controller = CanaryController(LocalRouterBackend(router), policy, registry=registry, model_name=model)
            return controller.run(canary_version, drive=drive)
