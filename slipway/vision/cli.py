"""`slipway vision ...`: make a synthetic image set, train + register a classifier, serve it.

Heavy imports (torch, kserve) stay inside the commands so `slipway --help` stays fast.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

from slipway.errors import SlipwayError
from slipway.logging_config import configure_logging
from slipway.settings import Settings

vision_app = typer.Typer(help="Image classification by transfer learning (EfficientNet-Lite0).", no_args_is_help=True)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@vision_app.command("make-synthetic")
def make_synthetic(
    out: Path = typer.Argument(..., help="Folder to write <class>/<image> files into."),
    per_class: int = typer.Option(40, help="Images per class."),
    size: int = typer.Option(96, help="Width and height of each image in pixels."),
    seed: int = typer.Option(42),
) -> None:
    """Write a deterministic synthetic set of shapes (circle, square, triangle) as an ImageFolder."""
    _settings()
    from slipway.vision.data import SYNTHETIC_CLASSES, make_synthetic_image_folder

    make_synthetic_image_folder(out, n_per_class=per_class, image_size=size, seed=seed)
    typer.echo(json.dumps({"root": str(out), "classes": list(SYNTHETIC_CLASSES), "per_class": per_class}))


@vision_app.command("train")
def train(
    source: str = typer.Argument(..., help="Image folder <root>/<class>/<image>: a local path or s3://bucket/prefix."),
    name: str = typer.Option("", help="Registered model name; default SLIPWAY_VISION_MODEL_NAME."),
    epochs: int = typer.Option(0, help="Epochs; 0 means SLIPWAY_VISION_EPOCHS."),
    image_size: int = typer.Option(0, help="Input size; 0 means SLIPWAY_VISION_IMAGE_SIZE."),
    trainable_blocks: int = typer.Option(-1, help="Last blocks to fine-tune; -1 means the setting."),
    strategy: str = typer.Option("finetune", help="finetune, linear_probe or scratch."),
    compare: bool = typer.Option(False, help="Also train the other strategies on the same budget and report them."),
) -> None:
    """Fine-tune on an image folder, evaluate, export to TorchScript and register; prints a JSON summary."""
    settings = _settings()
    from slipway.registry import ModelRegistry
    from slipway.storage import store_from_settings
    from slipway.vision.train import TrainConfig
    from slipway.vision.workflow import materialize_source, train_and_register

    config = TrainConfig(
        strategy=strategy,  # type: ignore[arg-type]  # validated by pydantic
        trainable_blocks=settings.vision_trainable_blocks if trainable_blocks < 0 else trainable_blocks,
        epochs=epochs or settings.vision_epochs,
        batch_size=settings.vision_batch_size,
        learning_rate=settings.vision_learning_rate,
        patience=settings.vision_patience,
        seed=settings.seed,
        device=settings.vision_device,
        num_threads=settings.vision_num_threads,
    )
    home = settings.home.resolve()
    try:
        with tempfile.TemporaryDirectory(dir=home if home.exists() else None) as download:
            root = materialize_source(source, download, settings)
            result = train_and_register(
                root,
                registry=ModelRegistry(store_from_settings(settings)),
                name=name or settings.vision_model_name,
                config=config,
                image_size=image_size or settings.vision_image_size,
                val_fraction=settings.vision_val_fraction,
                work_dir=home / "vision" / (name or settings.vision_model_name),
                max_pixels=settings.vision_max_image_pixels,
                compare=compare,
            )
    except (SlipwayError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(result.to_dict(), default=str))


@vision_app.command("serve")
def serve(
    name: str = typer.Argument("", help="Registered model name; default SLIPWAY_VISION_MODEL_NAME."),
    version: int = typer.Option(0, help="Version to serve; 0 means the latest."),
    port: int = typer.Option(8080, help="HTTP port of the KServe ModelServer."),
) -> None:
    """Serve a registered image classifier (v1 base64 instances, v2 BYTES) with the KServe ModelServer."""
    settings = _settings()
    from slipway.registry import ModelRegistry
    from slipway.serving.image_model import serve as serve_model
    from slipway.storage import store_from_settings

    model = name or settings.vision_model_name
    registry = ModelRegistry(store_from_settings(settings))
    entry = registry.get(model, version or None)
    model_dir = registry.download(model, entry.version, settings.home.resolve() / "serving" / model)
    token = settings.serving_token.get_secret_value() if settings.serving_token else None
    serve_model(
        model_dir,
        name=model,
        http_port=port,
        bearer_token=token,
        top_k=settings.vision_top_k,
        max_pixels=settings.vision_max_image_pixels,
        device=settings.vision_device,
    )
