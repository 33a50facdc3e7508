"""Run a pipeline on this machine with kfp.local's SubprocessRunner, the same code the cluster runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kfp import local

from pipelines.compile import PIPELINES

logger = logging.getLogger(__name__)


def run_pipeline_locally(name: str, pipeline_root: str | Path, **arguments: Any) -> Path:
    """Run pipeline `name` with kfp.local; returns the run's output folder under `pipeline_root`."""
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline {name!r}; choose one of {sorted(PIPELINES)}")
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    PIPELINES[name](**arguments)
    new_runs = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not new_runs:
        raise RuntimeError(f"kfp.local wrote no run folder under {root}")
    logger.info("pipeline %s finished; outputs in %s", name, new_runs[-1])
    return new_runs[-1]


def find_outputs(run_dir: Path, task: str, output: str) -> Path:
    """The file of one task's output artifact inside a local run folder."""
    matches = sorted((run_dir / task).glob(f"{output}*")) if (run_dir / task).exists() else []
    if not matches:
        raise FileNotFoundError(f"no output {output!r} for task {task!r} in {run_dir}")
    return matches[0]
