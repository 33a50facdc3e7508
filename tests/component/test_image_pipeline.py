"""The image-classification pipeline run for real with kfp.local on tiny images, and compiled to IR YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.compile import compile_all
from pipelines.run_local import find_outputs, run_pipeline_locally

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("image-pipeline")
    run_dir = run_pipeline_locally(
        "image-classification",
        work / "pipeline_root",
        n_per_class=8,
        image_size=64,
        val_fraction=0.25,
        seed=5,
        epochs=1,
        batch_size=16,
        device="cpu",
        compare_baselines=True,
        model_name="shapes",
        slipway_home=str(work / "home"),
    )
    return run_dir, work / "home"


def test_pipeline_splits_trains_evaluates_and_registers_a_verified_model(pipeline_run: tuple[Path, Path]) -> None:
    from slipway.registry import ModelRegistry
    from slipway.storage import LocalArtifactStore
    from slipway.vision.data import ImageDataset
    from slipway.vision.export import load_verified_image_model

    run_dir, home = pipeline_run
    train = ImageDataset.load(find_outputs(run_dir, "load-image-dataset", "train_set"))
    val = ImageDataset.load(find_outputs(run_dir, "load-image-dataset", "val_set"))
    assert len(train.labels) + len(val.labels) == 24
    assert val.class_counts() == {"circle": 2, "square": 2, "triangle": 2}
    assert find_outputs(run_dir, "load-image-dataset", "quarantine").read_text() == ""

    registry = ModelRegistry(LocalArtifactStore(home / "artifacts"))
    entry = registry.get("shapes")
    assert entry.version == 1 and entry.model_file == "model.pt" and "classes.json" in entry.extra_files
    assert 0.0 <= entry.metrics["accuracy"] <= 1.0
    assert {"scratch_accuracy", "linear_probe_accuracy", "f1_macro"} <= set(entry.metrics)
    assert entry.training_data_sha256 == train.sha256()
    loaded = load_verified_image_model(registry.download("shapes", 1, home / "dl"))
    assert loaded.classes == ["circle", "square", "triangle"] and loaded.image_size == 64
    proba = loaded.module(val.images[:2].float() / 255.0)
    assert proba.shape == (2, 3)


def test_pipeline_logs_confusion_matrix_and_html_report(pipeline_run: tuple[Path, Path]) -> None:
    run_dir, _ = pipeline_run
    html = find_outputs(run_dir, "evaluate-image-classifier", "report").read_text()
    assert "data:image/png;base64," in html and "linear_probe" in html and "scratch" in html
    executor = json.loads((run_dir / "evaluate-image-classifier" / "executor_output.json").read_text())
    confusion = json.dumps(executor)
    assert "confusionMatrix" in confusion and "triangle" in confusion


def test_image_pipeline_compiles(tmp_path: Path) -> None:
    written = compile_all(tmp_path)
    spec = yaml.safe_load(written["image-classification"].read_text())
    assert spec["pipelineInfo"]["name"] == "image-classification"
    tasks = set(spec["root"]["dag"]["tasks"])
    assert tasks == {
        "load-image-dataset",
        "train-image-classifier",
        "evaluate-image-classifier",
        "export-register-image-model",
    }
