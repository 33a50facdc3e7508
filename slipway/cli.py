"""The `slipway` command line: demo, run, compile, serve, ingest."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from slipway.errors import SlipwayError
from slipway.logging_config import configure_logging
from slipway.settings import Settings

app = typer.Typer(help="Slipway: Kubernetes-native MLOps on KFP, Feast, KServe and Evidently.", no_args_is_help=True)
logger = logging.getLogger("slipway")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def ingest(
    path: str = typer.Argument(..., help="Path or URI: s3://, postgres://, http(s)://, kafka://."),
    dataset: str = typer.Option("churn", help="Dataset spec: a built-in name or a YAML spec path."),
    out: Path = typer.Option(None, help="Local store folder for the zones; default: the configured artifact store."),
    report_dir: Path = typer.Option(None, help="Folder for validation_report.html and metrics.prom."),
) -> None:
    """Ingest one source: detect, validate, cleanse, quarantine, commit a version; print a JSON line."""
    from slipway.ingestion.cli import ingest_command

    ingest_command(path, dataset, out, report_dir)


@app.command()
def compile(out: Path = typer.Option(Path("build/pipelines"), help="Folder for the IR YAML files.")) -> None:
    """Compile every pipeline to KFP IR YAML and read each back with the kfp loader."""
    _settings()
    from pipelines.compile import compile_all

    for name, path in compile_all(out).items():
        typer.echo(f"{name}: {path}")


@app.command()
def run(
    pipeline: str = typer.Argument("churn-training", help="Pipeline name, e.g. churn-training."),
    source: str = typer.Option("", help="Input CSV; empty means the synthetic generator."),
    algorithms: str = typer.Option("", help="churn-training: comma-separated algorithms (default: all four)."),
    n_rows: int = typer.Option(3000),
) -> None:
    """Run a pipeline locally with kfp.local (SubprocessRunner, no containers)."""
    settings = _settings()
    from pipelines.run_local import run_pipeline_locally

    home = settings.home.resolve()
    source_uri = str(Path(source).resolve()) if source else ""
    if pipeline == "housing-cv":
        run_dir = run_pipeline_locally(
            pipeline, home / "pipeline_root", source_uri=source_uri, n_rows=n_rows, seed=settings.seed
        )
        typer.echo(f"run outputs: {run_dir}")
        return
    run_dir = run_pipeline_locally(
        pipeline,
        home / "pipeline_root",
        source_uri=source_uri,
        n_rows=n_rows,
        seed=settings.seed,
        **({"algorithms": algorithms} if algorithms else {}),
        feast_repo=str(_feast_workdir(settings)),
        online_store=settings.online_store,
        slipway_home=str(home),
    )
    typer.echo(f"run outputs: {run_dir}")


def _feast_workdir(settings: Settings) -> Path:
    """A working copy of the Feast repo under SLIPWAY_HOME, so runs never write into the source tree."""
    import shutil

    dest = settings.home.resolve() / "feature_repo"
    src = settings.feast_repo.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return dest


def _served_feast_repo(settings: Settings) -> Path:
    """The Feast repo the pipelines materialised (the working copy under SLIPWAY_HOME), else the source repo."""
    workdir = settings.home.resolve() / "feature_repo"
    return workdir if (workdir / "feature_store.yaml").exists() else settings.feast_repo.resolve()


@app.command()
def serve(
    model: str = typer.Argument("churn", help="Registered model name."),
    version: int = typer.Option(0, help="Version to serve; 0 means the latest."),
    port: int = typer.Option(8080, help="HTTP port of the KServe ModelServer."),
    workers: int = typer.Option(0, help="Server processes sharing the port; 0 means SLIPWAY_SERVING_WORKERS."),
    variant: str = typer.Option("", help="Traffic variant label; empty means SLIPWAY_SERVING_VARIANT."),
    payload_log: str = typer.Option(
        "", help="Payload log target (folder, 'store', kafka://host:port/topic); empty: SLIPWAY_SERVING_PAYLOAD_LOG."
    ),
    enrich: bool = typer.Option(False, help="Enrich customer_id-only requests from the Feast online store."),
) -> None:
    """Serve a registered model with the KServe ModelServer (v1 and v2 protocols)."""
    settings = _settings()
    from slipway.registry import ModelRegistry
    from slipway.serving.churn_model import ServeOptions
    from slipway.serving.churn_model import serve as serve_model
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(settings))
    entry = registry.get(model, version or None)
    model_dir = registry.download(model, entry.version, settings.home.resolve() / "serving" / model)
    token = settings.serving_token.get_secret_value() if settings.serving_token else None
    options = ServeOptions(
        variant=variant or settings.serving_variant,
        payload_log=payload_log or settings.serving_payload_log,
        feast_repo=str(_served_feast_repo(settings)) if (enrich or settings.serving_enrich) else None,
        online_store=settings.online_store,
        redis_url=settings.redis_url if settings.online_store == "redis" else None,
    )
    serve_model(
        model_dir,
        name=model,
        http_port=port,
        bearer_token=token,
        workers=workers or settings.serving_workers,
        options=options,
    )


@app.command()
def demo(
    n_rows: int = typer.Option(3000, help="Rows of synthetic churn data."),
    port: int = typer.Option(8085, help="Port of the demo model server."),
) -> None:
    """Run the churn loop end to end on embedded defaults and print what it produced."""
    settings = _settings()
    from slipway.demo import run_demo

    try:
        run_demo(settings, n_rows=n_rows, port=port)
    except SlipwayError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e


# Image classification: `slipway vision make-synthetic | train | serve`.
from slipway.vision.cli import vision_app  # noqa: E402

app.add_typer(vision_app, name="vision")


# Real-time IoT pipeline: `slipway stream broker | simulate | process | insights | mqtt-bridge | nab-score`.
from slipway.streaming.cli import stream_app  # noqa: E402  (commands import lazily)

app.add_typer(stream_app, name="stream")


# Monitoring and model lifecycle: `slipway monitor drift`, `slipway models history | rollback`.
from slipway.monitoring.cli import models_app, monitor_app  # noqa: E402  (commands import lazily)

app.add_typer(monitor_app, name="monitor")
app.add_typer(models_app, name="models")


# Versioned datasets: `slipway data versions | read`.
from slipway.ingestion.cli import data_app  # noqa: E402  (commands import lazily)

app.add_typer(data_app, name="data")


# Model building: `slipway train compare | ablation | nested-cv | class-weights`.
from slipway.training.cli import train_app  # noqa: E402  (commands import lazily)

app.add_typer(train_app, name="train")


# Progressive delivery: `slipway rollout canary | router`, `slipway ab plan | report`.
from slipway.rollout.cli import ab_app, rollout_app  # noqa: E402  (commands import lazily)

app.add_typer(rollout_app, name="rollout")
app.add_typer(ab_app, name="ab")


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="slipway")


if __name__ == "__main__":  # pragma: no cover
    main()
