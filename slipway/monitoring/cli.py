"""`slipway monitor drift` and `slipway models history | rollback`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from slipway.errors import SlipwayError

logger = logging.getLogger(__name__)

monitor_app = typer.Typer(help="Drift checks on served traffic.", no_args_is_help=True)
models_app = typer.Typer(help="Model versions: history, decisions, rollback.", no_args_is_help=True)


def _settings() -> Any:
    from slipway.logging_config import configure_logging
    from slipway.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _registry(settings: Any) -> Any:
    from slipway.registry import ModelRegistry
    from slipway.storage import store_from_settings

    return ModelRegistry(store_from_settings(settings))


def build_retrain_trigger(settings: Any, registry: Any, model: str) -> Any:
    """KFP run on the cluster when SLIPWAY_KFP_HOST is set, else a local kfp.local run of churn-training."""
    from slipway.monitoring.retrain import KfpRunTrigger, LocalPipelineTrigger

    if settings.kfp_host:
        return KfpRunTrigger(
            settings.kfp_host,
            settings.kfp_pipeline_package,
            experiment=settings.kfp_experiment,
            base_arguments={"model_name": model, "seed": settings.seed},
        )
    from slipway.cli import _feast_workdir

    home = settings.home.resolve()
    return LocalPipelineTrigger(
        "churn-training",
        home / "pipeline_root",
        {
            "model_name": model,
            "seed": settings.seed,
            "feast_repo": str(_feast_workdir(settings)),
            "online_store": settings.online_store,
            "slipway_home": str(home),
        },
        registry=registry,
        model_name=model,
    )


def check_drift_from_settings(
    settings: Any,
    model: str,
    window: str,
    end: datetime,
    *,
    version: int | None = None,
    out_dir: Path | None = None,
    retrain: bool = True,
    trigger_factory: Any = build_retrain_trigger,
) -> Any:
    """`check_drift` wired from settings: stores, payload root, thresholds, alert sink, metrics, retraining."""
    from slipway.monitoring.alerts import WebhookAlertSink
    from slipway.monitoring.loop import check_drift, parse_window
    from slipway.storage import store_from_settings

    store = store_from_settings(settings)
    registry = _registry(settings)
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end
    url = settings.monitoring_alert_webhook_url
    trigger = trigger_factory(settings, registry, model) if retrain and settings.monitoring_retrain_on_drift else None
    return check_drift(
        registry=registry,
        payload_root=settings.monitoring_payload_root or store,
        model=model,
        start=end - parse_window(window or settings.monitoring_window),
        end=end,
        version=version,
        drift_share=settings.monitoring_drift_share,
        min_rows=settings.monitoring_min_rows,
        sample_rows=settings.monitoring_sample_rows,
        report_store=store,
        out_dir=out_dir,
        alert_sink=WebhookAlertSink(url.get_secret_value()) if url else None,
        metrics_textfile=settings.monitoring_metrics_textfile,
        pushgateway_url=settings.monitoring_pushgateway_url,
        retrain_trigger=trigger,
        retrain_data_dir=settings.home.resolve() / "retrain-data",
    )


@monitor_app.command("drift")
def drift(
    model: str = typer.Option("churn", help="Registered model whose traffic is checked."),
    window: str = typer.Option("", help="Window ending now (or at --end), e.g. 30m, 1h, 1d; default from settings."),
    end: str = typer.Option("", help="End of the window, ISO-8601 UTC; default now."),
    version: int = typer.Option(0, help="Reference version; 0 means the production version."),
    retrain: bool = typer.Option(
        True, help="Start retraining when drift is found (SLIPWAY_MONITORING_RETRAIN_ON_DRIFT)."
    ),
    out: Path = typer.Option(Path(""), help="Also keep the reports in this folder."),
    fail_on_drift: bool = typer.Option(False, help="Exit with code 3 when drift is found."),
) -> None:
    """Check a window of served traffic for drift; print the outcome as one JSON line."""
    settings = _settings()
    try:
        stop = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(UTC)
        result = check_drift_from_settings(
            settings,
            model,
            window,
            stop,
            version=version or None,
            out_dir=out if str(out) not in ("", ".") else None,
            retrain=retrain,
        )
    except (SlipwayError, ValueError, OSError) as e:
        typer.echo(f"error: drift check of {model} failed: {e}", err=True)
        raise typer.Exit(2) from e
    summary = result.summary
    typer.echo(
        json.dumps(
            {
                "model": model,
                "version": result.version,
                "status": result.status,
                "rows": result.rows,
                "drift_share": summary.drift_share if summary else None,
                "drifted_columns": summary.drifted_columns if summary else [],
                "prediction_drift": result.prediction_drift,
                "retrain": result.retrain.model_dump(mode="json") if result.retrain else None,
                "reports": result.reports,
            },
            default=str,
        )
    )
    if fail_on_drift and result.detected:
        raise typer.Exit(3)


def _decision(annotations: dict[str, Any]) -> str:
    decision = annotations.get("decision")
    if isinstance(decision, dict):
        verdict = "promote" if decision.get("promote") else "keep champion"
        p = decision.get("p_value")
        return f"{verdict} (p={p:.3g})" if isinstance(p, (int, float)) else verdict
    return str(decision) if decision else ""


@models_app.command("history")
def history(
    model: str = typer.Argument("churn", help="Registered model name."),
    events: bool = typer.Option(True, help="Also list the event history (stages, drift, decisions)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List versions with stage, metrics and decisions, then every event with its evidence."""
    settings = _settings()
    from rich.console import Console
    from rich.table import Table

    try:
        registry = _registry(settings)
        versions = registry.list_versions(model)
        log = registry.history(model) if events else []
    except SlipwayError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if not versions:
        typer.echo(f"error: no model named {model!r} is registered", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "versions": [v.model_dump(mode="json", exclude={"feature_schema"}) for v in versions],
                    "events": [event.model_dump(mode="json") for event in log],
                }
            )
        )
        return
    console = Console(width=160)
    table = Table(title=f"{model}: versions")
    for column in ("version", "stage", "created (UTC)", "roc_auc", "f1", "sha256", "decision"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            f"v{v.version}",
            v.stage,
            f"{v.created_at:%Y-%m-%d %H:%M:%S}",
            f"{v.metrics['roc_auc']:.4f}" if "roc_auc" in v.metrics else "",
            f"{v.metrics['f1']:.4f}" if "f1" in v.metrics else "",
            v.sha256[:12],
            _decision(v.annotations),
        )
    console.print(table)
    if log:
        table = Table(title=f"{model}: history")
        for column in ("at (UTC)", "kind", "version", "message", "evidence"):
            table.add_column(column, overflow="fold")
        for event in log:
            evidence = json.dumps(event.evidence, default=str)
            table.add_row(
                f"{event.at:%Y-%m-%d %H:%M:%S}",
                event.kind,
                f"v{event.version}" if event.version is not None else "",
                event.message,
                evidence if len(evidence) <= 120 else evidence[:117] + "...",
            )
        console.print(table)


@models_app.command("rollback")
def rollback(
    model: str = typer.Argument("churn", help="Registered model name."),
    reason: str = typer.Option("manual rollback", help="Recorded in the history."),
    cluster: bool = typer.Option(False, help="Also point the InferenceService at the restored version."),
    isvc: str = typer.Option("", help="InferenceService name; default: the model name."),
) -> None:
    """Restore the previous production version (registry), and with --cluster patch the InferenceService."""
    settings = _settings()
    from slipway.monitoring import rollback as rb

    try:
        registry = _registry(settings)
        current = registry.production(model)
        restored = registry.rollback(model, reason=reason)
        typer.echo(f"{model}: v{current.version if current else '?'} -> v{restored.version} in production")
        if cluster:
            name = isvc or model
            uri = rb.storage_uri_for(settings.storage_uri_prefix, model, restored.version)
            rb.patch_inference_service_version(
                rb.kubernetes_custom_objects_api(), name, settings.namespace, uri, restored.version
            )
            registry.record_event(
                model,
                "rollback-cluster",
                version=restored.version,
                message=f"InferenceService {settings.namespace}/{name} -> {uri}",
                evidence={"storage_uri": uri, "namespace": settings.namespace, "inference_service": name},
            )
            typer.echo(f"InferenceService {settings.namespace}/{name} now serves {uri}")
    except SlipwayError as e:
        typer.echo(f"error: rollback of {model} failed: {e}", err=True)
        raise typer.Exit(2) from e
