"""Image folders: discovery (local or S3), safe decoding with quarantine, stratified split, synthetic shapes.

Layout is ImageFolder-style: `<root>/<class name>/<image file>`. Every file under a class folder is either decoded
into the dataset or written to the quarantine JSONL with a reason; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError

from slipway.errors import DataValidationError, ImageDecodeError
from slipway.storage import ArtifactStore

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# 25 MP: a 5000x5000 photo passes; a 50 MP decompression bomb does not.
DEFAULT_MAX_PIXELS = 25_000_000
SYNTHETIC_CLASSES = ("circle", "square", "triangle")


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode image bytes to RGB; raise ImageDecodeError (empty, not an image, truncated, too many pixels)."""
    if not data:
        raise ImageDecodeError("empty image (0 bytes)")
    # PIL's own guard warns above MAX_IMAGE_PIXELS and raises above twice that; make both an error here.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"image is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,} "
                    "(decompression-bomb guard); resize it before sending"
                )
            img.load()
            # Phone photos store their rotation in EXIF; apply it so the model sees them upright.
            return ImageOps.exif_transpose(img).convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError(
            f"image exceeds the limit of {max_pixels:,} pixels (decompression-bomb guard): {e}"
        ) from e
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not an image: the bytes match no supported image format") from e
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ValueError)
        raise ImageDecodeError(f"not a decodable image ({type(e).__name__}: {e})") from e


def to_square_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """Resize the shorter side to `size`, centre-crop to `size`x`size`; uint8 tensor [3, size, size]."""
    width, height = img.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@dataclass
class ImageDataset:
    """Decoded images (uint8 [N, 3, S, S]), integer labels, class names, source files and quarantine."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    files: list[str]
    quarantined: list[dict[str, str]] = field(default_factory=list)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor | list[int]) -> ImageDataset:
        idx = torch.as_tensor(index, dtype=torch.long)
        return ImageDataset(
            self.images[idx], self.labels[idx], list(self.classes), [self.files[i] for i in idx.tolist()]
        )

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts, strict=True))

    def sha256(self) -> str:
        """Digest of the decoded pixels, labels and class names: the training-data fingerprint."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.classes).encode())
        digest.update(self.labels.to(torch.int64).numpy().tobytes())
        digest.update(self.images.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> None:
        """Write as one torch file (tensors, lists and strings only, so `load` can use weights_only)."""
        torch.save(
            {
                "images": self.images,
                "labels": self.labels,
                "classes": self.classes,
                "files": self.files,
                "quarantined": self.quarantined,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> ImageDataset:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        return cls(raw["images"], raw["labels"], list(raw["classes"]), list(raw["files"]), list(raw["quarantined"]))


def load_image_folder(
    root: str | Path,
    *,
    image_size: int,
    quarantine_path: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageDataset:
    """Decode every file under `<root>/<class>/`; unreadable ones go to `quarantine_path` (JSONL) with a reason.

    Classes are the sub-folder names in sorted order. Raises DataValidationError when fewer than two classes hold
    a decodable image.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataValidationError(f"image folder {base} does not exist; expected <root>/<class>/<image files>")
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    quarantined: list[dict[str, str]] = []
    for stray in sorted(p for p in base.iterdir() if p.is_file()):
        quarantined.append({"file": stray.name, "class": "", "reason": "file outside a class folder"})
    tensors: list[torch.Tensor] = []
    labels: list[int] = []
    files: list[str] = []
    classes: list[str] = []
    for class_dir in class_dirs:
        decoded_before = len(tensors)
        label = len(classes)
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
            rel = str(path.relative_to(base))
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                quarantined.append(
                    {"file": rel, "class": class_dir.name, "reason": f"unsupported extension {path.suffix!r}"}
                )
                continue
            try:
                img = decode_image(path.read_bytes(), max_pixels=max_pixels)
            except (ImageDecodeError, OSError) as e:
                quarantined.append({"file": rel, "class": class_dir.name, "reason": str(e)})
                continue
            tensors.append(to_square_tensor(img, image_size))
            labels.append(label)
            files.append(rel)
        if len(tensors) > decoded_before:
            classes.append(class_dir.name)
        else:
            quarantined.append(
                {"file": class_dir.name + "/", "class": class_dir.name, "reason": "class folder has no decodable image"}
            )
    if quarantine_path is not None:
        write_quarantine(quarantined, quarantine_path)
    if len(classes) < 2:
        raise DataValidationError(
            f"{base} has {len(classes)} class folder(s) with decodable images; need at least 2 "
            f"(<root>/<class>/<image>), quarantined {len(quarantined)} file(s)"
        )
    logger.info(
        "decoded %d images in %d classes from %s; quarantined %d", len(tensors), len(classes), base, len(quarantined)
    )
    return ImageDataset(torch.stack(tensors), torch.tensor(labels, dtype=torch.long), classes, files, quarantined)


def write_quarantine(rows: list[dict[str, str]], path: str | Path) -> Path:
    """One JSON object per rejected file: `{"file", "class", "reason"}` (an empty file when none)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return out


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded per-class split: each class with >= 2 images puts round(n * val_fraction) (at least 1) in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise DataValidationError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    y = labels.numpy()
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_val = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return sorted(train), sorted(val)


# -- S3 / artifact store -----------------------------------------------------------------------------------------
def download_image_folder(store: ArtifactStore, prefix: str, dest: str | Path) -> Path:
    """Copy `<prefix>/<class>/<file>` objects from an artifact store into a local folder; returns it."""
    prefix = prefix.strip("/")
    out = Path(dest)
    # `list` matches by string prefix: keep only keys inside the folder (not `<prefix>-other/...`).
    keys = [k for k in store.list(prefix) if not prefix or k.startswith(prefix + "/")]
    if not keys:
        raise DataValidationError(f"no objects under {prefix!r} in the artifact store; upload <class>/<image> files")
    for key in keys:
        rel = key[len(prefix) :].lstrip("/") if prefix else key
        if not rel or ".." in rel.split("/"):
            continue
        store.get_file(key, out / rel)
    logger.info("downloaded %d objects under %s to %s", len(keys), prefix, out)
    return out


def upload_image_folder(store: ArtifactStore, root: str | Path, prefix: str) -> int:
    """Upload every file under `root` to `<prefix>/<relative path>`; returns the number of objects."""
    base = Path(root)
    count = 0
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        store.put_file(f"{prefix.strip('/')}/{path.relative_to(base).as_posix()}", path)
        count += 1
    return count


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise DataValidationError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise DataValidationError(f"{uri!r} has no bucket: use s3://<bucket>/<prefix>")
    return bucket, prefix.strip("/")


# -- synthetic shapes --------------------------------------------------------------------------------------------
def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float, fill: Any) -> None:
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        return
    corners = 4 if kind == "square" else 3
    points = [
        (cx + r * math.cos(angle + 2 * math.pi * k / corners), cy + r * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    ]
    draw.polygon(points, fill=fill)


def make_synthetic_image(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One image: a noisy textured background with one filled shape of random colour, size, place and angle."""
    background = rng.integers(0, 256, size=3)
    noise = rng.normal(0.0, 28.0, size=(size, size, 3))
    stripes = 20.0 * np.sin(np.arange(size) * rng.uniform(0.2, 0.9) + rng.uniform(0, 6.3))[None, :, None]
    pixels = np.clip(background[None, None, :] + noise + stripes, 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels, "RGB").filter(ImageFilter.GaussianBlur(radius=max(0.5, size / 128)))
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.36) * size
    cx, cy = rng.uniform(r, size - r, size=2)
    # Shape colour far from the background so the shape is visible but colour carries no class signal.
    fill = tuple(int(v) for v in (background + rng.integers(96, 160, size=3)) % 256)
    _draw_shape(draw, kind, float(cx), float(cy), float(r), float(rng.uniform(0, 2 * math.pi)), fill)
    return img


def make_synthetic_image_folder(
    root: str | Path,
    *,
    n_per_class: int = 40,
    image_size: int = 96,
    seed: int = 42,
    classes: tuple[str, ...] = SYNTHETIC_CLASSES,
) -> Path:
    """Write a deterministic ImageFolder of shapes (PNG and JPEG); the same arguments give the same bytes."""
    unknown = set(classes) - set(SYNTHETIC_CLASSES)
    if unknown:
        raise DataValidationError(f"unknown synthetic classes {sorted(unknown)}; choose from {SYNTHETIC_CLASSES}")
    base = Path(root)
    for c_index, kind in enumerate(classes):
        folder = base / kind
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, c_index])
        for i in range(n_per_class):
            img = make_synthetic_image(kind, image_size, rng)
            if i % 4 == 3:
                img.save(folder / f"{kind}_{i:04d}.jpg", format="JPEG", quality=90)
            else:
                img.save(folder / f"{kind}_{i:04d}.png", format="PNG")
    logger.info("wrote %d synthetic images in %d classes to %s", n_per_class * len(classes), len(classes), base)
    return base
