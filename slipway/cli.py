"""The `slipway` command line: demo, run, compile, serve, ingest."""

from __future__ import annotations

import json
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
    path: Path = typer.Argument(..., help="File to ingest; its format is detected from its content."),
    dataset: str = typer.Option("churn", help="Dataset schema to validate against."),
    out: Path = typer.Option(Path("build/ingest"), help="Output folder for curated and quarantined rows."),
) -> None:
    """Ingest one file: detect, parse, validate, cleanse; print the row accounting as a JSON line."""
    _settings()
    from slipway.data.ingest import ingest_file

    try:
        result = ingest_file(path, dataset=dataset, out_dir=out)
    except (SlipwayError, OSError) as e:
        typer.echo(f"error: cannot ingest {path}: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(result.to_dict(), default=str))


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
    algorithm: str = typer.Option("logistic_regression"),
    n_rows: int = typer.Option(3000),
) -> None:
    """Run a pipeline locally with kfp.local (SubprocessRunner, no containers)."""
    settings = _settings()
    from pipelines.run_local import run_pipeline_locally

    home = settings.home.resolve()
    run_dir = run_pipeline_locally(
        pipeline,
        home / "pipeline_root",
        source_uri=str(Path(source).resolve()) if source else "",
        n_rows=n_rows,
        seed=settings.seed,
        algorithm=algorithm,
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


@app.command()
def serve(
    model: str = typer.Argument("churn", help="Registered model name."),
    version: int = typer.Option(0, help="Version to serve; 0 means the latest."),
    port: int = typer.Option(8080, help="HTTP port of the KServe ModelServer."),
) -> None:
    """Serve a registered model with the KServe ModelServer (v1 and v2 protocols)."""
    settings = _settings()
    from slipway.registry import ModelRegistry
    from slipway.serving.churn_model import serve as serve_model
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(settings))
    entry = registry.get(model, version or None)
    model_dir = registry.download(model, entry.version, settings.home.resolve() / "serving" / model)
    token = settings.serving_token.get_secret_value() if settings.serving_token else None
    serve_model(model_dir, name=model, http_port=port, bearer_token=token)


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


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="slipway")


if __name__ == "__main__":  # pragma: no cover
    main()
