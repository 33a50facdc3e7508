"""End-to-end image classification on one machine: source -> decode/quarantine/split -> train -> evaluate ->
TorchScript export -> registry. The CLI calls this; the KFP pipeline runs the same steps as separate components."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway.errors import ConfigError
from slipway.registry import ModelRegistry
from slipway.settings import Settings
from slipway.storage import store_from_settings
from slipway.vision.data import (
    DEFAULT_MAX_PIXELS,
    ImageDataset,
    download_image_folder,
    load_image_folder,
    split_s3_uri,
    stratified_split,
)
from slipway.vision.evaluate import compare_strategies, evaluate_classifier, write_evaluation_html
from slipway.vision.export import export_torchscript, register_image_model
from slipway.vision.train import TrainConfig, train_classifier

logger = logging.getLogger(__name__)


def materialize_source(source_uri: str, dest: str | Path, settings: Settings) -> Path:
    """A local image folder for `source_uri`: a local path as is, `s3://bucket/prefix` downloaded into `dest`.

    S3 uses the artifact-store endpoint and credentials of `settings` (SLIPWAY_S3_*), with the URI's bucket.
    """
    if source_uri.startswith("s3://"):
        if not settings.uses_s3:
            raise ConfigError(f"{source_uri} needs SLIPWAY_S3_ENDPOINT (and keys) to be set")
        bucket, prefix = split_s3_uri(source_uri)
        store = store_from_settings(settings.model_copy(update={"s3_bucket": bucket}))
        return download_image_folder(store, prefix, dest)
    path = Path(source_uri).expanduser()
    if not path.is_dir():
        raise ConfigError(f"image folder {path} does not exist; expected <folder>/<class>/<image files>")
    return path


def split_dataset(dataset: ImageDataset, val_fraction: float, seed: int) -> tuple[ImageDataset, ImageDataset]:
    """Stratified, seeded (train, validation) split."""
    train_idx, val_idx = stratified_split(dataset.labels, val_fraction, seed)
    if not val_idx:
        raise ConfigError("no class has two images, so nothing is left for validation; add images")
    return dataset.subset(train_idx), dataset.subset(val_idx)


@dataclass
class VisionRunResult:
    name: str
    version: int
    metrics: dict[str, float]
    classes: list[str]
    images: int
    quarantined: int
    report_path: Path
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "metrics": self.metrics,
            "classes": self.classes,
            "images": self.images,
            "quarantined": self.quarantined,
            "report": str(self.report_path),
            "comparison": self.comparison,
        }


def train_and_register(
    image_root: str | Path,
    *,
    registry: ModelRegistry,
    name: str,
    config: TrainConfig,
    image_size: int,
    val_fraction: float,
    work_dir: str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    compare: bool = False,
    progress: bool | None = None,
) -> VisionRunResult:
    """Decode (quarantining bad files), split, fine-tune, evaluate, export and register; optionally also train
    the from-scratch and linear-probe baselines on the same budget and record their figures."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    dataset = load_image_folder(
        image_root, image_size=image_size, quarantine_path=work / "quarantine.jsonl", max_pixels=max_pixels
    )
    train, val = split_dataset(dataset, val_fraction, config.seed)
    comparison: dict[str, dict[str, float]] = {}
    if compare:
        result_set = compare_strategies(train, val, config, progress=progress)
        comparison = result_set.table()
        result = result_set.results.get(config.strategy)
    else:
        result = None
    if result is None:
        result = train_classifier(train, val, config, progress=progress)
    evaluation = evaluate_classifier(result.model, val, device=config.device)
    report = write_evaluation_html(
        evaluation, work / "evaluation.html", title=f"{name} ({config.strategy})", comparison=comparison or None
    )
    exported = export_torchscript(result.model, dataset.classes, image_size, work / "export")
    metrics = {**evaluation.metrics(), "best_epoch": float(result.best_epoch), "train_seconds": result.seconds}
    for strategy, figures in comparison.items():
        metrics[f"{strategy}_accuracy"] = figures["accuracy"]
    version = register_image_model(
        registry,
        name,
        exported,
        metrics=metrics,
        params={**config.model_dump(), "image_size": image_size, "val_fraction": val_fraction},
        training_data_sha256=train.sha256(),
        annotations={
            "confusion_matrix": evaluation.confusion_matrix,
            "class_counts": dataset.class_counts(),
            "quarantined": len(dataset.quarantined),
            "history": [h.__dict__ for h in result.history],
            **({"comparison": comparison} if comparison else {}),
        },
    )
    (work / "result.json").write_text(json.dumps({"version": version.version, "metrics": metrics}, indent=2))
    return VisionRunResult(
        name,
        version.version,
        metrics,
        dataset.classes,
        len(dataset.labels),
        len(dataset.quarantined),
        report,
        comparison,
    )
