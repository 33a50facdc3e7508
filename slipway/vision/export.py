"""Export to TorchScript, register with the model registry, and load a registered version after verification.

The exported module takes float32 RGB images in [0, 1], shape [N, 3, S, S], and returns class probabilities
[N, C]: the ImageNet normalisation and the softmax travel inside the artifact, so serving cannot drift from
training. Class names and the input size are stored in `classes.json` beside `model.pt`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slipway.errors import ArtifactNotFoundError, IntegrityError
from slipway.registry.model_registry import METADATA_FILE, ModelRegistry, ModelVersion
from slipway.storage import sha256_file
from slipway.vision.augment import IMAGENET_MEAN, IMAGENET_STD
from slipway.vision.model import ARCHITECTURE

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
CLASSES_FILE = "classes.json"
TASK = "image-classification"


class ProbabilityModel(nn.Module):
    """[0, 1] RGB images -> softmax probabilities, with the training normalisation built in."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.backbone((images - self.mean) / self.std), dim=1)


@dataclass
class ExportedModel:
    model_path: Path
    classes_path: Path
    classes: list[str]
    image_size: int
    sha256: str


def export_torchscript(model: nn.Module, classes: list[str], image_size: int, out_dir: str | Path) -> ExportedModel:
    """Trace `model` (on CPU, eval mode) to `out_dir/model.pt` and write `classes.json`; checks the trace."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wrapped = ProbabilityModel(model).to("cpu").eval()
    example = torch.rand(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, example, check_trace=False)  # checked below, ~20x faster
        if not torch.allclose(traced(example), wrapped(example), atol=1e-5):
            raise IntegrityError("the TorchScript trace does not reproduce the model's outputs")
    model_path = out / MODEL_FILE
    traced.save(str(model_path))
    classes_path = out / CLASSES_FILE
    spec = {
        "classes": list(classes),
        "image_size": int(image_size),
        "architecture": ARCHITECTURE,
        "input": f"float32 RGB in [0, 1], shape [N, 3, {image_size}, {image_size}]",
        "output": f"float32 probabilities, shape [N, {len(classes)}]",
    }
    classes_path.write_text(json.dumps(spec, indent=2))
    return ExportedModel(model_path, classes_path, list(classes), int(image_size), sha256_file(model_path))


def register_image_model(
    registry: ModelRegistry,
    name: str,
    exported: ExportedModel,
    *,
    metrics: dict[str, float],
    params: dict[str, Any],
    training_data_sha256: str,
    annotations: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register `model.pt` (its sha256 recorded) with `classes.json` as a verified extra file."""
    return registry.register(
        name,
        exported.model_path,
        metrics=metrics,
        params=params,
        training_data_sha256=training_data_sha256,
        feature_schema={
            "task": TASK,
            "input": {"type": "image", "size": exported.image_size, "channels": "RGB"},
            "classes": exported.classes,
        },
        model_file=MODEL_FILE,
        extra_files={CLASSES_FILE: exported.classes_path},
        annotations={
            "task": TASK,
            "classes": exported.classes,
            "image_size": exported.image_size,
            **(annotations or {}),
        },
    )


@dataclass
class LoadedImageModel:
    module: torch.jit.ScriptModule
    meta: ModelVersion
    classes: list[str]
    image_size: int


def load_verified_image_model(model_dir: str | Path, device: str | torch.device = "cpu") -> LoadedImageModel:
    """Load `model.pt` after its sha256 (and that of `classes.json`) matched `model.json`."""
    folder = Path(model_dir)
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise ArtifactNotFoundError(f"no {METADATA_FILE} in {folder}")
    meta = ModelVersion.model_validate_json(meta_path.read_text())
    expected = {meta.model_file: meta.sha256, **meta.extra_files}
    if CLASSES_FILE not in expected:
        raise ArtifactNotFoundError(f"{meta.name} v{meta.version} has no {CLASSES_FILE}; it is not an image model")
    for file_name, digest in expected.items():
        path = folder / file_name
        if not path.is_file():
            raise ArtifactNotFoundError(f"no {file_name} in {folder}")
        if (actual := sha256_file(path)) != digest:
            raise IntegrityError(
                f"{path} has sha256 {actual} but {meta.name} v{meta.version} records {digest}; the file is corrupt "
                "or was tampered with: download it again"
            )
    spec = json.loads((folder / CLASSES_FILE).read_text())
    module = torch.jit.load(str(folder / meta.model_file), map_location=device)  # only after the digests matched
    module.eval()
    return LoadedImageModel(module, meta, list(spec["classes"]), int(spec["image_size"]))
