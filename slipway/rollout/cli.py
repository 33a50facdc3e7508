"""`slipway rollout canary | router` and `slipway ab plan | report`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from slipway.errors import SlipwayError

logger = logging.getLogger(__name__)

rollout_app = typer.Typer(
    help="Progressive delivery: metric-gated canaries and the traffic router.", no_args_is_help=True
)
ab_app = typer.Typer(help="A/B tests: sample size up front, z-test decision report.", no_args_is_help=True)

EXIT_CODES = {"promoted": 0, "rolled_back": 3, "held": 4}


def _settings() -> Any:
    from slipway.logging_config import configure_logging
    from slipway.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per synthetic request otherwise
    return settings


def _policy(settings: Any, min_requests: int | None) -> Any:
    from slipway.rollout.controller import CanaryPolicy

    return CanaryPolicy(
        steps=settings.rollout_steps,
        min_requests=min_requests or settings.rollout_min_requests,
        step_wait_s=settings.rollout_step_wait_s,
        max_error_rate_increase=settings.rollout_max_error_rate_increase,
        max_p99_ratio=settings.rollout_max_p99_ratio,
        max_psi=settings.rollout_max_psi,
    )


@rollout_app.command("canary")
def canary(
    model: str = typer.Argument(..., help="Registered model name, e.g. churn."),
    version: int = typer.Option(0, "--version", help="Canary version; 0 means the latest registered one."),
    local: bool = typer.Option(True, "--local/--cluster", help="Local servers + router, or the KServe ISVC."),
    primary_version: int = typer.Option(0, help="Primary version; 0 means the production one."),
    min_requests: int = typer.Option(0, help="Canary requests per step; 0 means SLIPWAY_ROLLOUT_MIN_REQUESTS."),
    inject_error_rate: float = typer.Option(0.0, help="Local rehearsal: share of canary calls answered 503."),
    inject_latency_ms: float = typer.Option(0.0, help="Local rehearsal: delay added to every canary call."),
) -> None:
    """Shift traffic to VERSION step by step; promote, hold or roll back on error rate, p99, shift and accuracy.

    Exit code: 0 promoted, 3 rolled back, 4 held (too little traffic).
    """
    settings = _settings()
    from slipway.registry import ModelRegistry
    from slipway.storage import store_from_settings

    registry = ModelRegistry(store_from_settings(settings))
    policy = _policy(settings, min_requests)
    try:
        version = version or registry.get(model).version
        if local:
            from slipway.rollout.local import run_local_canary

            port = settings.rollout_router_port
            faults = {"fault_error_rate": inject_error_rate, "fault_latency_s": inject_latency_ms / 1000.0}
            result = run_local_canary(
                registry,
                model,
                version,
                policy,
                settings.home.resolve() / "rollout" / model,
                primary_version=primary_version or None,
                router_port=port,
                server_ports=(port + 1, port + 2),
                canary_faults=faults,
            )
        else:
            result = _cluster_canary(settings, registry, model, version, primary_version, policy)
    except SlipwayError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for step in result.steps:
        failed = [c.name for c in step.checks if c.status == "fail"]
        typer.echo(f"{step.percent:>3}% attempt {step.attempt}: {step.verdict} {failed or ''}")
    typer.echo(
        json.dumps({"decision": result.decision, "reason": result.reason, "final_percent": result.final_percent})
    )
    raise typer.Exit(EXIT_CODES[result.decision])


def _cluster_canary(settings: Any, registry: Any, model: str, version: int, primary_version: int, policy: Any) -> Any:
    from kubernetes import client, config

    from slipway.errors import RolloutError
    from slipway.rollout.controller import CanaryController, KServeBackend, PrometheusMetrics

    if not primary_version:
        current = registry.production(model)
        if current is None:
            raise RolloutError(f"{model!r} has no production version: pass --primary-version")
        primary_version = current.version
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    token = settings.prometheus_token.get_secret_value() if settings.prometheus_token else None
    backend = KServeBackend(
        client.CustomObjectsApi(),
        model,
        PrometheusMetrics(settings.prometheus_url, model, bearer_token=token),
        namespace=settings.namespace,
        primary_version=primary_version,
        storage_uri_prefix=settings.storage_uri_prefix,
    )
    return CanaryController(backend, policy, registry=registry, model_name=model).run(version)


@rollout_app.command("router")
def router(
    variant: list[str] = typer.Option(..., help="name=url=weight, e.g. canary=http://127.0.0.1:8081=10 (repeat)."),
    port: int = typer.Option(0, help="Listen port on 127.0.0.1; 0 means SLIPWAY_ROLLOUT_ROUTER_PORT."),
    sticky: bool = typer.Option(False, help="Route by user id (x-user-id header or user_id body field)."),
    salt: str = typer.Option("slipway", help="Assignment salt (the experiment name for A/B tests)."),
) -> None:
    """Run the traffic-splitting router in the foreground until Ctrl-C."""
    import time

    from slipway.rollout.router import TrafficRouter, Variant, serve_router

    settings = _settings()
    variants = []
    for spec in variant:
        name, _, rest = spec.partition("=")
        url, _, weight = rest.rpartition("=")
        if not name or not url:
            raise typer.BadParameter(f"{spec!r}: use name=url=weight")
        variants.append(Variant(name, url, float(weight)))
    token = settings.rollout_router_token.get_secret_value() if settings.rollout_router_token else None
    traffic = TrafficRouter(variants, sticky=sticky, salt=salt, admin_token=token)
    with serve_router(traffic, port or settings.rollout_router_port) as base:
        typer.echo(f"router on {base}: {traffic.weights}")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


@ab_app.command("plan")
def plan(
    baseline: float = typer.Option(..., help="Control conversion rate, e.g. 0.10."),
    mde: float = typer.Option(..., help="Absolute lift worth detecting, e.g. 0.02."),
    alpha: float = typer.Option(0.05),
    power: float = typer.Option(0.8),
    experiment: str = typer.Option("experiment"),
) -> None:
    """Users needed per variant, fixed before the test starts."""
    from slipway.rollout.ab import plan_ab_test

    typer.echo(plan_ab_test(experiment, baseline, mde, alpha=alpha, power=power).model_dump_json())


@ab_app.command("report")
def report(
    experiment: str = typer.Option(..., help="Experiment name as logged."),
    baseline: float = typer.Option(..., help="Planned control conversion rate."),
    mde: float = typer.Option(..., help="Planned minimum detectable (absolute) effect."),
    alpha: float = typer.Option(0.05),
    power: float = typer.Option(0.8),
    outcomes: Path = typer.Option(None, help="Outcome JSONL; default SLIPWAY_AB_OUTCOMES_PATH."),
    event: str = typer.Option("conversion", help="Outcome event that counts as a success, e.g. click."),
    control: str = typer.Option("control"),
    treatment: str = typer.Option("treatment"),
    out: Path = typer.Option(None, help="Write the report here (.md or .html); default: print Markdown."),
) -> None:
    """Two-proportion z-test on the outcome log and a decision report."""
    settings = _settings()
    from slipway.rollout.ab import analyze_outcome_log, plan_ab_test, render_report

    path = outcomes or settings.ab_outcomes_path
    try:
        ab_plan = plan_ab_test(
            experiment, baseline, mde, alpha=alpha, power=power, control=control, treatment=treatment
        )
        result = analyze_outcome_log(ab_plan, path, event)
    except (SlipwayError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    html = out is not None and out.suffix.lower() in (".html", ".htm")
    text = render_report(result, "html" if html else "markdown")
    if out is None:
        typer.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        typer.echo(f"{result.decision}: {out}")
