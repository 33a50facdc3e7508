"""Image transforms with plain torch tensor ops: the deterministic eval transform and training augmentation.

Inputs are uint8 batches [N, 3, S, S]; outputs are float32 batches normalised with the ImageNet mean and std, the
statistics the pretrained backbone was trained with. Augmentation draws every random number from an explicit
`torch.Generator`, so a seed fixes the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(batch01: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> ImageNet-normalised floats (same device and dtype)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=batch01.dtype, device=batch01.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=batch01.dtype, device=batch01.device).view(1, 3, 1, 1)
    return (batch01 - mean) / std


def eval_transform(batch: torch.Tensor) -> torch.Tensor:
    """The deterministic transform for validation, test and serving: scale to [0, 1] and normalise."""
    return normalize(batch.to(torch.float32) / 255.0)


def _uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


@dataclass(frozen=True)
class TrainAugment:
    """Random resized crop, horizontal flip, rotation and colour jitter, applied per image."""

    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    rotation_degrees: float = 15.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 [N, 3, S, S] -> augmented, normalised float32 [N, 3, S, S]."""
        x = batch.to(torch.float32) / 255.0
        x = self.random_resized_crop(x, generator)
        x = self.horizontal_flip(x, generator)
        x = self.rotate(x, generator)
        x = self.colour_jitter(x, generator)
        return normalize(x)

    def random_resized_crop(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        area = height * width
        scales = _uniform(*self.crop_scale, n, generator)
        log_ratios = _uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), n, generator)
        offsets = torch.rand(n, 2, generator=generator)
        out = torch.empty_like(x)
        for i in range(n):
            ratio = math.exp(float(log_ratios[i]))
            target = float(scales[i]) * area
            w = min(width, max(1, round(math.sqrt(target * ratio))))
            h = min(height, max(1, round(math.sqrt(target / ratio))))
            top = int(float(offsets[i, 0]) * (height - h + 1))
            left = int(float(offsets[i, 1]) * (width - w + 1))
            crop = x[i : i + 1, :, top : top + h, left : left + w]
            out[i] = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)[0]
        return out

    def horizontal_flip(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = torch.rand(x.shape[0], generator=generator) < self.flip_p
        return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)

    def rotate(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.rotation_degrees <= 0:
            return x
        angles = _uniform(-self.rotation_degrees, self.rotation_degrees, x.shape[0], generator) * math.pi / 180.0
        cos, sin = torch.cos(angles), torch.sin(angles)
        zeros = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        # Reflection padding keeps the corners textured instead of black wedges the model could key on.
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def colour_jitter(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        b = _uniform(1 - self.brightness, 1 + self.brightness, n, generator).view(-1, 1, 1, 1).to(x)
        c = _uniform(1 - self.contrast, 1 + self.contrast, n, generator).view(-1, 1, 1, 1).to(x)
        s = _uniform(1 - self.saturation, 1 + self.saturation, n, generator).view(-1, 1, 1, 1).to(x)
        x = (x * b).clamp(0, 1)
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 1)
        x = ((x - gray.mean(dim=(2, 3), keepdim=True)) * c + gray.mean(dim=(2, 3), keepdim=True)).clamp(0, 1)
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return ((x - gray) * s + gray).clamp(0, 1)
