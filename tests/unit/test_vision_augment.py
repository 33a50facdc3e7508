"""Augmentation: shapes, seeded determinism, correctness of each op, validation batches untouched."""

from __future__ import annotations

import pytest
import torch

from slipway.vision.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, eval_transform
from slipway.vision.train import iterate_batches

pytestmark = pytest.mark.unit


def _images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_eval_transform_normalises_with_imagenet_statistics() -> None:
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = eval_transform(x)
    assert out.dtype == torch.float32
    for c in range(3):
        assert torch.allclose(out[0, c], torch.tensor((1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))


def test_train_augmentation_shapes_seeded_and_random() -> None:
    images = _images()
    aug = TrainAugment()
    a = aug(images, torch.Generator().manual_seed(1))
    b = aug(images, torch.Generator().manual_seed(1))
    c = aug(images, torch.Generator().manual_seed(2))
    assert a.shape == images.shape and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, eval_transform(images))
    # still normalised pixels of a [0, 1] image
    low = (0 - max(IMAGENET_MEAN)) / min(IMAGENET_STD)
    high = (1 - min(IMAGENET_MEAN)) / min(IMAGENET_STD)
    assert float(a.min()) >= low - 1e-5 and float(a.max()) <= high + 1e-5


def test_identity_settings_reproduce_the_eval_transform_and_flip_flips() -> None:
    images = _images(size=16)
    identity = TrainAugment(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, rotation_degrees=0.0,
        brightness=0.0, contrast=0.0, saturation=0.0,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(identity(images, g), eval_transform(images), atol=1e-5)
    flip_only = TrainAugment(**{**identity.__dict__, "flip_p": 1.0})
    assert torch.allclose(flip_only(images, g), eval_transform(images).flip(-1), atol=1e-5)
    rotate_only = TrainAugment(**{**identity.__dict__, "rotation_degrees": 30.0})
    assert not torch.allclose(rotate_only(images, g), eval_transform(images), atol=1e-2)


def test_crop_zooms_in() -> None:
    # left half black, right half white: a crop of 30-50 % of the area changes the black share of most images
    images = torch.zeros((8, 3, 32, 32), dtype=torch.uint8)
    images[..., 16:] = 255
    crop = TrainAugment(crop_scale=(0.3, 0.5), flip_p=0.0, rotation_degrees=0.0, brightness=0, contrast=0, saturation=0)
    out = crop(images, torch.Generator().manual_seed(5))
    black_share = (out[:, 0] < 0).float().mean(dim=(1, 2))
    assert out.shape == images.shape
    assert (abs(black_share - 0.5) > 0.05).sum() >= 4


def test_validation_batches_are_untouched_and_training_batches_are_augmented() -> None:
    images, labels = _images(n=10), torch.arange(10) % 2
    val_batches = list(iterate_batches(images, labels, batch_size=4, augment=TrainAugment()))
    x = torch.cat([b[0] for b in val_batches])
    y = torch.cat([b[1] for b in val_batches])
    assert torch.equal(x, eval_transform(images))  # bitwise: no augmentation, same order
    assert torch.equal(y, labels)

    g = torch.Generator().manual_seed(0)
    train_batches = list(iterate_batches(images, labels, batch_size=4, generator=g, augment=TrainAugment()))
    assert [b[0].shape[0] for b in train_batches] == [4, 4, 2]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([b[1] for b in train_batches]), labels[order])
    assert not torch.equal(train_batches[0][0], eval_transform(images[order[:4]]))
