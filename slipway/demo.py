"""`slipway demo`: the churn loop end to end on embedded defaults, with wall time per stage."""

from __future__ import annotations

import json
import logging
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

    def start(self, name: str) -> None:
        print(f"==> {name}", flush=True)
        self._current = (name, time.perf_counter())

    def stop(self) -> None:
        name, started = self._current
        self.stages[name] = time.perf_counter() - started

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"==> {name}", flush=True)
        start = time.perf_counter()
        yield
        self.stages[name] = time.perf_counter() - start


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

    from slipway.serving.process import running_model_server

    timer.start("start KServe ModelServer")
    with running_model_server(model_dir, "churn", port) as base:
        timer.stop()
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

    comparison = find_outputs(run_dir, "select-candidate", "comparison").read_text()
    print("\n--- model comparison (same repeated stratified folds, training part) ---")
    print(comparison.split("## All", 1)[0].strip())
    decision = entry.annotations.get("decision", {})
    print(f"\n--- champion/challenger: stage {entry.stage} ---\n{decision.get('reason', 'no decision recorded')}")
    print("\n--- metrics (held-out test part; cv_* = cross-validation on the training part) ---")
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
    for task, output in (
        ("train-churn-model", "report"),
        ("select-candidate", "comparison_html"),
        ("write-model-card", "card_html"),
        ("drift-report", "report"),
    ):
        print(f"{task}: {find_outputs(run_dir, task, output)}")
    print(f"InferenceService: {find_outputs(run_dir, 'render-inference-service', 'manifest')}")
    print("\n--- wall time per stage (s) ---")
    for name, secs in timer.stages.items():
        print(f"{secs:8.1f}  {name}")
    if v1.status_code != 200 or v2.status_code != 200:
        raise SlipwayError(f"demo requests failed: v1 {v1.status_code}, v2 {v2.status_code}")
    return timer.stages
