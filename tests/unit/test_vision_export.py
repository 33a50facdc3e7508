"""TorchScript export, registration (model.pt + classes.json, sha256) and verified loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slipway.errors import IntegrityError
from slipway.registry import ModelRegistry
from slipway.storage import LocalArtifactStore
from slipway.vision.augment import eval_transform
from slipway.vision.export import export_torchscript, load_verified_image_model, register_image_model
from slipway.vision.model import build_classifier

pytestmark = pytest.mark.unit

CLASSES = ["ants", "bees", "wasps"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_classifier(3, image_size=64, strategy="linear_probe").eval()
    return model, export_torchscript(model, CLASSES, 64, tmp_path_factory.mktemp("export"))


def test_export_bakes_in_normalisation_and_softmax(exported) -> None:  # type: ignore[no-untyped-def]
    model, out = exported
    assert out.model_path.name == "model.pt" and json.loads(out.classes_path.read_text())["classes"] == CLASSES
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    scripted = torch.jit.load(str(out.model_path))
    with torch.no_grad():
        proba = scripted(images.float() / 255.0)
        expected = torch.softmax(model(eval_transform(images)), dim=1)
    assert proba.shape == (3, 3)
    assert torch.allclose(proba.sum(1), torch.ones(3), atol=1e-5)
    assert torch.allclose(proba, expected, atol=1e-5)


def test_register_download_and_verified_load(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = exported
    registry = ModelRegistry(LocalArtifactStore(tmp_path / "store"))
    meta = register_image_model(
        registry, "insects", out, metrics={"accuracy": 0.9}, params={"epochs": 1}, training_data_sha256="a" * 64
    )
    assert meta.model_file == "model.pt" and meta.sha256 == out.sha256
    assert set(meta.extra_files) == {"classes.json"} and meta.annotations["classes"] == CLASSES
    folder = registry.download("insects", None, tmp_path / "dl")
    loaded = load_verified_image_model(folder)
    assert loaded.classes == CLASSES and loaded.image_size == 64 and loaded.meta.version == 1

    (folder / "classes.json").write_text(json.dumps({"classes": ["x", "y", "z"], "image_size": 64}))
    with pytest.raises(IntegrityError, match=r"classes\.json"):
        load_verified_image_model(folder)
    registry.download("insects", None, folder)
    with open(folder / "model.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(IntegrityError, match=r"model\.pt"):
        load_verified_image_model(folder)
