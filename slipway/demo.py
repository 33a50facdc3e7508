"""`slipway demo`: the churn loop end to end on embedded defaults, with wall time per stage."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from slipway.errors import SlipwayError
from slipway.settings import Settings

logger = logging.getLogger(__name__)


class _Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"==> {name}", flush=True)
        start = time.perf_counter()
        yield
        self.stages[name] = time.perf_counter() - start


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SlipwayError(f"model server exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SlipwayError(f"model server at {base} was not ready after {timeout:.0f} s")


def _sample_rows(curated_path: Path, n: int = 2) -> list[dict[str, Any]]:
    import pandas as pd

    from slipway.data.churn_schema import FEATURE_COLUMNS

    frame = pd.read_parquet(curated_path)[FEATURE_COLUMNS].head(n)
    return json.loads(frame.to_json(orient="records"))


def run_demo(settings: Settings, n_rows: int = 3000, port: int = 8085) -> dict[str, float]:
    """Run pipeline, compile, serve and query; returns seconds per stage."""
    from pipelines.compile import compile_all
    from pipelines.run_local import find_outputs, run_pipeline_locally
    from slipway.cli import _feast_workdir
    from slipway.registry import ModelRegistry
    from slipway.storage import store_from_settings

    home = settings.home.resolve()
    timer = _Timer()
    with timer.stage("churn-training pipeline (kfp.local)"):
        run_dir = run_pipeline_locally(
            "churn-training",
            home / "pipeline_root",
            n_rows=n_rows,
            seed=settings.seed,
            feast_repo=str(_feast_workdir(settings)),
            online_store=settings.online_store,
            slipway_home=str(home),
        )
    with timer.stage("compile pipelines to IR YAML"):
        compiled = compile_all(Path("build/pipelines"))

    registry = ModelRegistry(store_from_settings(settings))
    entry = registry.get("churn")
    model_dir = registry.download("churn", entry.version, home / "serving" / "churn")
    curated = find_outputs(run_dir, "ingest-churn", "curated")
    rows = _sample_rows(curated)

    base = f"http://127.0.0.1:{port}"
    with timer.stage("start KServe ModelServer"):
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "slipway.serving.churn_model"),
                *("--model-dir", str(model_dir), "--name", "churn", "--http-port", str(port)),
            ],
            env={**os.environ, "KSERVE_LOGLEVEL": "WARNING"},
        )
        try:
            _wait_ready(base, proc)
        except SlipwayError:
            proc.kill()
            raise
    try:
        with timer.stage("v1 and v2 requests"):
            v1 = httpx.post(f"{base}/v1/models/churn:predict", json={"instances": rows}, timeout=10)
            v2_inputs = [
                {
                    "name": col,
                    "shape": [len(rows)],
                    "datatype": "BYTES" if isinstance(rows[0][col], str) else "FP64",
                    "data": [r[col] for r in rows],
                }
                for col in rows[0]
            ]
            v2 = httpx.post(f"{base}/v2/models/churn/infer", json={"id": "demo-1", "inputs": v2_inputs}, timeout=10)
            bad = httpx.post(f"{base}/v1/models/churn:predict", content=b"not json", timeout=10)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

    print("\n--- metrics (test split) ---")
    print(json.dumps(entry.metrics, indent=2))
    print("\n--- registry entry ---")
    print(entry.model_dump_json(indent=2, exclude={"feature_schema"}))
    print(f"\n--- v1 response ({v1.status_code}) ---\n{v1.text}")
    print(f"\n--- v2 response ({v2.status_code}) ---\n{v2.text}")
    print(f"\n--- garbage request ({bad.status_code}) ---\n{bad.text}")
    print("\n--- compiled pipelines ---")
    for name, path in compiled.items():
        print(f"{name}: {path.resolve()}")
    print("\n--- HTML reports ---")
    for task, output in (("train-churn-model", "report"), ("drift-report", "report")):
        print(f"{task}: {find_outputs(run_dir, task, output)}")
    print(f"InferenceService: {find_outputs(run_dir, 'render-inference-service', 'manifest')}")
    print("\n--- wall time per stage (s) ---")
    for name, secs in timer.stages.items():
        print(f"{secs:8.1f}  {name}")
    if v1.status_code != 200 or v2.status_code != 200:
        raise SlipwayError(f"demo requests failed: v1 {v1.status_code}, v2 {v2.status_code}")
    return timer.stages
