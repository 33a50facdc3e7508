"""Image-classification components: load/quarantine/split, fine-tune, evaluate against baselines, export+register."""

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def load_image_dataset(
    source_uri: str,
    n_per_class: int,
    image_size: int,
    val_fraction: float,
    seed: int,
    slipway_home: str,
    train_set: Output[Dataset],
    val_set: Output[Dataset],
    quarantine: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Decode an image folder (local, s3://, or synthetic shapes when empty); bad files go to quarantine."""
    import tempfile
    from pathlib import Path

    from slipway.settings import Settings
    from slipway.vision.data import load_image_folder, make_synthetic_image_folder
    from slipway.vision.workflow import materialize_source, split_dataset

    settings = Settings(home=Path(slipway_home))
    with tempfile.TemporaryDirectory() as work:
        if source_uri:
            root = materialize_source(source_uri, Path(work) / "images", settings)
        else:
            root = make_synthetic_image_folder(Path(work) / "images", n_per_class=n_per_class, seed=seed)
        data = load_image_folder(
            root, image_size=image_size, quarantine_path=quarantine.path, max_pixels=settings.vision_max_image_pixels
        )
    train, val = split_dataset(data, val_fraction, seed)
    train.save(train_set.path)
    val.save(val_set.path)
    for name, part in (("train", train), ("val", val)):
        metrics.log_metric(f"{name}_images", len(part.labels))
    metrics.log_metric("quarantined", len(data.quarantined))
    metrics.log_metric("classes", len(data.classes))
    train_set.metadata.update(
        {"classes": data.classes, "sha256": train.sha256(), "source_uri": source_uri or "synthetic"}
    )


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def train_image_classifier(
    train_set: Input[Dataset],
    val_set: Input[Dataset],
    strategy: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    trainable_blocks: int,
    seed: int,
    device: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> float:
    """Transfer learning with early stopping on validation loss; returns the best validation accuracy."""
    from slipway.vision.data import ImageDataset
    from slipway.vision.train import TrainConfig, save_checkpoint, train_classifier

    config = TrainConfig(
        strategy=strategy, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        trainable_blocks=trainable_blocks, seed=seed, device=device,
    )  # fmt: skip
    result = train_classifier(ImageDataset.load(train_set.path), ImageDataset.load(val_set.path), config)
    save_checkpoint(result, model.path)
    for key in ("val_loss", "val_accuracy", "best_epoch", "epochs_run", "train_seconds", "trainable_parameters"):
        metrics.log_metric(key, float(result.summary()[key]))
    model.metadata.update({"framework": "pytorch", "architecture": "efficientnet-lite0", **config.model_dump()})
    return float(result.best.val_accuracy)


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def evaluate_image_classifier(
    model: Input[Model],
    train_set: Input[Dataset],
    val_set: Input[Dataset],
    compare_baselines: bool,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
) -> float:
    """Accuracy, macro P/R/F1 and confusion matrix; optionally scratch and linear-probe runs on the same budget."""
    from slipway.vision.data import ImageDataset
    from slipway.vision.evaluate import compare_strategies, evaluate_classifier, write_evaluation_html
    from slipway.vision.train import TrainConfig, load_checkpoint

    net, checkpoint = load_checkpoint(model.path)
    val = ImageDataset.load(val_set.path)
    evaluation = evaluate_classifier(net, val)
    for key, value in evaluation.metrics().items():
        metrics.log_metric(key, value)
    classification.log_confusion_matrix(evaluation.classes, evaluation.confusion_matrix)
    comparison = None
    if compare_baselines:
        config = TrainConfig(**checkpoint["config"])
        baselines = compare_strategies(
            ImageDataset.load(train_set.path), val, config, strategies=("scratch", "linear_probe")
        )
        comparison = {config.strategy: evaluation.metrics(), **baselines.table()}
        for strategy, figures in baselines.table().items():
            metrics.log_metric(f"{strategy}_accuracy", figures["accuracy"])
    write_evaluation_html(evaluation, report.path, title="image classifier", comparison=comparison)
    return evaluation.accuracy


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def export_register_image_model(
    model: Input[Model], train_set: Input[Dataset], metrics: Input[Metrics], model_name: str, slipway_home: str
) -> int:
    """Export to TorchScript (`model.pt` + `classes.json`) and register it with its sha256; returns the version."""
    import tempfile
    from pathlib import Path

    from slipway.registry import ModelRegistry
    from slipway.settings import Settings
    from slipway.storage import store_from_settings
    from slipway.vision.export import export_torchscript, register_image_model
    from slipway.vision.train import load_checkpoint

    net, checkpoint = load_checkpoint(model.path)
    registry = ModelRegistry(store_from_settings(Settings(home=Path(slipway_home))))
    with tempfile.TemporaryDirectory() as work:
        exported = export_torchscript(net, checkpoint["classes"], int(checkpoint["image_size"]), work)
        version = register_image_model(
            registry,
            model_name,
            exported,
            metrics={k: float(v) for k, v in metrics.metadata.items()},
            params={k: str(v) for k, v in model.metadata.items()},
            training_data_sha256=str(train_set.metadata["sha256"]),
        )
    return version.version
