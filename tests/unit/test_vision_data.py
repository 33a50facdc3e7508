"""Image folders: synthetic generator, decoding with quarantine, stratified split, dataset round trip."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from slipway.errors import DataValidationError, ImageDecodeError
from slipway.vision.data import (
    ImageDataset,
    decode_image,
    load_image_folder,
    make_synthetic_image_folder,
    stratified_split,
    to_square_tensor,
)

pytestmark = pytest.mark.unit


def bomb_png(width: int = 10_000, height: int = 5_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (50 MP by default): a decompression bomb."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.*"))}


def test_synthetic_folder_is_deterministic_and_balanced(tmp_path: Path) -> None:
    a = make_synthetic_image_folder(tmp_path / "a", n_per_class=4, image_size=48, seed=7)
    b = make_synthetic_image_folder(tmp_path / "b", n_per_class=4, image_size=48, seed=7)
    c = make_synthetic_image_folder(tmp_path / "c", n_per_class=4, image_size=48, seed=8)
    assert _digest_tree(a) == _digest_tree(b)
    assert _digest_tree(a) != _digest_tree(c)
    assert sorted(p.name for p in a.iterdir()) == ["circle", "square", "triangle"]
    assert all(len(list((a / k).iterdir())) == 4 for k in ("circle", "square", "triangle"))
    assert {p.suffix for p in a.rglob("*.*")} == {".png", ".jpg"}


def test_bad_files_are_quarantined_with_reasons_and_counts_reconcile(tmp_path: Path) -> None:
    root = make_synthetic_image_folder(tmp_path / "imgs", n_per_class=3, image_size=40, seed=1)
    good = root / "circle" / "circle_0000.png"
    (root / "circle" / "garbage.jpg").write_bytes(b"definitely not an image")
    (root / "circle" / "empty.png").write_bytes(b"")
    (root / "square" / "truncated.png").write_bytes(good.read_bytes()[:60])
    (root / "square" / "bomb.png").write_bytes(bomb_png())
    (root / "triangle" / "notes.txt").write_text("hello")
    (root / "README.md").write_text("stray")
    (root / "empty-class").mkdir()
    (root / "empty-class" / "broken.png").write_bytes(b"\x89PNG broken")
    files = [p for p in root.rglob("*") if p.is_file()]
    quarantine = tmp_path / "q.jsonl"

    data = load_image_folder(root, image_size=32, quarantine_path=quarantine, max_pixels=25_000_000)

    rows = [json.loads(line) for line in quarantine.read_text().splitlines()]
    reasons = {r["file"]: r["reason"] for r in rows}
    assert data.classes == ["circle", "square", "triangle"]
    assert data.images.shape == (9, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.class_counts() == {"circle": 3, "square": 3, "triangle": 3}
    assert "empty image (0 bytes)" in reasons["circle/empty.png"]
    assert "not an image" in reasons["circle/garbage.jpg"]
    assert "not a decodable image" in reasons["square/truncated.png"]
    assert "decompression-bomb" in reasons["square/bomb.png"]
    assert "unsupported extension" in reasons["triangle/notes.txt"]
    assert reasons["README.md"] == "file outside a class folder"
    assert "not" in reasons["empty-class/broken.png"]
    assert "no decodable image" in reasons["empty-class/"]
    # every file is either decoded or quarantined (plus one row for the empty class folder)
    assert len(data.files) + len(rows) - 1 == len(files)


def test_decode_rejects_decompression_bombs() -> None:
    with pytest.raises(ImageDecodeError, match="limit of 25,000,000 pixels"):
        decode_image(bomb_png(), max_pixels=25_000_000)  # PIL warns (1-2x the limit): still an error
    with pytest.raises(ImageDecodeError, match="decompression-bomb"):
        decode_image(bomb_png(20_000, 10_000), max_pixels=25_000_000)  # PIL raises DecompressionBombError here
    buf = io.BytesIO()
    Image.new("L", (30, 20), color=128).save(buf, format="PNG")
    img = decode_image(buf.getvalue())
    assert img.mode == "RGB" and img.size == (30, 20)


def test_square_tensor_resizes_short_side_and_centre_crops() -> None:
    img = Image.new("RGB", (80, 40), color=(0, 0, 0))
    img.paste((255, 0, 0), (20, 0, 60, 40))  # red centre band, black sides
    t = to_square_tensor(img, 20)
    assert t.shape == (3, 20, 20) and t.dtype == torch.uint8
    assert int(t[0].min()) > 200 and int(t[1].max()) < 50  # the crop kept only the red centre


def test_fewer_than_two_classes_is_an_error(tmp_path: Path) -> None:
    make_synthetic_image_folder(tmp_path / "one", n_per_class=2, image_size=32, classes=("circle",))
    with pytest.raises(DataValidationError, match="need at least 2"):
        load_image_folder(tmp_path / "one", image_size=32)
    with pytest.raises(DataValidationError, match="does not exist"):
        load_image_folder(tmp_path / "missing", image_size=32)


def test_stratified_split_is_seeded_disjoint_and_keeps_proportions() -> None:
    labels = torch.tensor([0] * 20 + [1] * 10 + [2] * 5)
    train, val = stratified_split(labels, 0.2, seed=3)
    again = stratified_split(labels, 0.2, seed=3)
    other = stratified_split(labels, 0.2, seed=4)
    assert (train, val) == again
    assert val != other[1]
    assert sorted(train + val) == list(range(35)) and not set(train) & set(val)
    assert torch.bincount(labels[val], minlength=3).tolist() == [4, 2, 1]
    with pytest.raises(DataValidationError):
        stratified_split(labels, 1.5, seed=0)


def test_dataset_save_load_round_trip_keeps_digest(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = ImageDataset(images, torch.tensor([0, 1, 0, 1]), ["a", "b"], ["a/1", "b/1", "a/2", "b/2"], [])
    data.save(tmp_path / "d.pt")
    back = ImageDataset.load(tmp_path / "d.pt")
    assert back.sha256() == data.sha256()
    assert torch.equal(back.images, images) and back.files == data.files
    sub = data.subset([1, 3])
    assert sub.labels.tolist() == [1, 1] and sub.sha256() != data.sha256()
