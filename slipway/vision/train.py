"""Training loop: seeded batches, augmentation on the training split only, early stopping on validation loss.

Runs on CPU or GPU (`device="auto"` picks CUDA when available). On CPU, two runs with the same seed produce
identical weights and metrics: every random draw comes from seeded generators and
`torch.use_deterministic_algorithms(True)` is on for the duration of the run.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import nn
from tqdm.auto import tqdm

from slipway.vision.augment import TrainAugment, eval_transform
from slipway.vision.data import ImageDataset
from slipway.vision.model import Strategy, build_classifier, count_parameters, resolve_device, set_train_mode

logger = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Hyper-parameters of one training run (stored with the model as its params)."""

    strategy: Strategy = "finetune"
    trainable_blocks: int = Field(2, ge=0, description="last MBConv blocks that fine-tune (finetune only)")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    patience: int = Field(3, ge=1, description="epochs without a lower validation loss before stopping")
    augment: bool = True
    seed: int = 42
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; None keeps torch's default")


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images_per_second: float


@dataclass
class TrainResult:
    model: nn.Module
    classes: list[str]
    image_size: int
    config: TrainConfig
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    trainable_parameters: int = 0
    total_parameters: int = 0

    @property
    def best(self) -> EpochStats:
        return self.history[self.best_epoch - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "strategy": self.config.strategy,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "stopped_early": self.stopped_early,
            "val_loss": self.best.val_loss,
            "val_accuracy": self.best.val_accuracy,
            "train_seconds": self.seconds,
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "history": [asdict(h) for h in self.history],
        }


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); returns a CPU generator for shuffling and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Deterministic kernels for the duration (warn-only for ops that have none, e.g. some CUDA backward passes)."""
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS determinism; ignored on CPU
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)


def iterate_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator | None = None,
    augment: TrainAugment | None = None,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield normalised (x, y) batches on `device`. With a generator: shuffled, and augmented when `augment` is
    set; without one: in order through `eval_transform` (validation, test). Transforms run on `device`, so a GPU
    augments its own batches; the random draws still come from the CPU generator."""
    n = images.shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if generator is not None and len(idx) == 1 < n:
            continue  # BatchNorm cannot train on a batch of one image; it is drawn again next epoch
        batch = images[idx].to(device) if device is not None else images[idx]
        x = augment(batch, generator) if augment is not None and generator is not None else eval_transform(batch)
        yield x, labels[idx].to(x.device)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` in eval mode."""
    model.eval()
    total_loss, correct = 0.0, 0
    for x, y in iterate_batches(images, labels, batch_size=batch_size, device=device):
        logits = model(x)
        total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    n = max(1, images.shape[0])
    return total_loss / n, correct / n


def train_classifier(
    train: ImageDataset, val: ImageDataset, config: TrainConfig, *, progress: bool | None = None
) -> TrainResult:
    """Train one classifier and return it with the weights of its lowest-validation-loss epoch.

    `progress=None` shows a tqdm bar per epoch only on a terminal.
    """
    if train.classes != val.classes:
        raise ValueError(f"train and validation classes differ: {train.classes} vs {val.classes}")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    started = time.perf_counter()
    with deterministic_algorithms():
        generator = seed_everything(config.seed)
        model = build_classifier(
            len(train.classes),
            image_size=train.image_size,
            strategy=config.strategy,
            trainable_blocks=config.trainable_blocks,
        ).to(device)
        trainable, total = count_parameters(model)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        augment = TrainAugment() if config.augment else None
        result = TrainResult(model, list(train.classes), train.image_size, config)
        result.trainable_parameters, result.total_parameters = trainable, total
        best_loss, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
        logger.info(
            "training %s on %s: %d train / %d val images, %d classes, %d of %d parameters trainable",
            config.strategy,
            device,
            len(train.labels),
            len(val.labels),
            len(train.classes),
            trainable,
            total,
        )
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            set_train_mode(model)
            running, seen = 0.0, 0
            n_batches = -(-len(train.labels) // config.batch_size)
            bar = tqdm(
                iterate_batches(
                    train.images,
                    train.labels,
                    batch_size=config.batch_size,
                    generator=generator,
                    augment=augment,
                    device=device,
                ),
                total=n_batches,
                desc=f"{config.strategy} epoch {epoch}/{config.epochs}",
                unit="batch",
                disable=None if progress is None else not progress,
                leave=False,
            )
            for x, y in bar:
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                running += float(loss.detach()) * len(y)
                seen += len(y)
                bar.set_postfix(loss=f"{running / seen:.4f}")
            bar.close()
            scheduler.step()
            train_seconds = time.perf_counter() - epoch_start
            val_loss, val_acc = evaluate_loss(
                model, val.images, val.labels, batch_size=config.batch_size, device=device
            )
            stats = EpochStats(
                epoch,
                running / max(1, seen),
                val_loss,
                val_acc,
                time.perf_counter() - epoch_start,
                seen / train_seconds if train_seconds > 0 else 0.0,
            )
            result.history.append(stats)
            logger.info(
                "%s epoch %d: train loss %.4f, val loss %.4f, val accuracy %.3f (%.1f images/s)",
                config.strategy,
                epoch,
                stats.train_loss,
                val_loss,
                val_acc,
                stats.images_per_second,
            )
            if val_loss < best_loss:
                best_loss, best_state, stale, result.best_epoch = val_loss, copy.deepcopy(model.state_dict()), 0, epoch
            else:
                stale += 1
                if stale >= config.patience:
                    result.stopped_early = epoch < config.epochs
                    logger.info("early stop after epoch %d: no lower validation loss for %d epochs", epoch, stale)
                    break
        model.load_state_dict(best_state)
        model.eval()
    result.seconds = time.perf_counter() - started
    return result


def save_checkpoint(result: TrainResult, path: str | os.PathLike[str]) -> None:
    """Weights plus what is needed to rebuild the network (loadable with `weights_only=True`)."""
    torch.save(
        {
            "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
            "classes": result.classes,
            "image_size": result.image_size,
            "config": result.config.model_dump(),
            "summary": {k: v for k, v in result.summary().items() if k != "history"},
        },
        path,
    )


def load_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of `save_checkpoint` (no ImageNet weights needed) in eval mode; returns it and the dict."""
    raw: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    model = build_classifier(len(raw["classes"]), image_size=int(raw["image_size"]), strategy="scratch")
    model.load_state_dict(raw["state_dict"])
    model.to(resolve_device(device)).eval()
    return model, raw
