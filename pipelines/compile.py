"""Compile every pipeline to KFP IR YAML and read each back with the kfp loader."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import compiler, components

from pipelines.churn_training import churn_training
from pipelines.drift_monitoring import drift_monitoring
from pipelines.housing_cv import housing_cv
from pipelines.image_classification import image_classification
from pipelines.ingestion import ingestion
from pipelines.recommender_training import recommender_training

logger = logging.getLogger(__name__)

PIPELINES: dict[str, Callable[..., Any]] = {
    "churn-training": churn_training,
    "drift-monitoring": drift_monitoring,
    "housing-cv": housing_cv,
    "image-classification": image_classification,
    "ingestion": ingestion,
    "recommender-training": recommender_training,
}


def compile_all(out_dir: str | Path) -> dict[str, Path]:
    """Write `<name>.yaml` per pipeline under `out_dir`; fails if the loader cannot read one back."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, func in PIPELINES.items():
        path = out / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        components.load_component_from_file(str(path))  # the loader KFP itself uses
        logger.info("compiled %s -> %s", name, path)
        written[name] = path
    return written


if __name__ == "__main__":
    for name, path in compile_all("build/pipelines").items():
        print(f"{name}: {path}")
