"""`image-classification`: image folder -> decode/quarantine/split -> fine-tune -> evaluate (vs scratch and a
linear probe) -> TorchScript export -> registry."""

from kfp import dsl

from components.vision import (
    evaluate_image_classifier,
    export_register_image_model,
    load_image_dataset,
    train_image_classifier,
)


@dsl.pipeline(
    name="image-classification",
    description="Transfer learning with EfficientNet-Lite0 on an ImageFolder (local path, s3:// or synthetic "
    "shapes): quarantine unreadable images, fine-tune the last blocks, compare with training from scratch and a "
    "linear probe on the same budget, export to TorchScript and register.",
)
def image_classification(
    source_uri: str = "",
    n_per_class: int = 40,
    image_size: int = 224,
    val_fraction: float = 0.2,
    seed: int = 42,
    strategy: str = "finetune",
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 0.001,
    trainable_blocks: int = 2,
    device: str = "auto",
    compare_baselines: bool = True,
    model_name: str = "image-classifier",
    slipway_home: str = "/tmp/slipway",
) -> None:
    data = load_image_dataset(
        source_uri=source_uri,
        n_per_class=n_per_class,
        image_size=image_size,
        val_fraction=val_fraction,
        seed=seed,
        slipway_home=slipway_home,
    ).set_display_name("load-quarantine-split")
    train = train_image_classifier(
        train_set=data.outputs["train_set"],
        val_set=data.outputs["val_set"],
        strategy=strategy,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        trainable_blocks=trainable_blocks,
        seed=seed,
        device=device,
    ).set_display_name("fine-tune")
    evaluate = evaluate_image_classifier(
        model=train.outputs["model"],
        train_set=data.outputs["train_set"],
        val_set=data.outputs["val_set"],
        compare_baselines=compare_baselines,
    ).set_display_name("evaluate")
    export_register_image_model(
        model=train.outputs["model"],
        train_set=data.outputs["train_set"],
        metrics=evaluate.outputs["metrics"],
        model_name=model_name,
        slipway_home=slipway_home,
    ).set_display_name("export-register")
