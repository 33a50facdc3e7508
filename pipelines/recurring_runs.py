"""Recurring runs on a KFP cluster: hourly drift monitoring and a weekly scheduled retraining of churn-training.

`schedule_recurring_runs(kfp.Client(host=...), "build/pipelines")` creates them from the compiled packages;
the CronJob in manifests/ runs the same drift check for clusters without KFP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecurringRun:
    """One KFP recurring run. `cron` has KFP's six fields: second minute hour day-of-month month day-of-week."""

    name: str
    pipeline: str
    cron: str
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    max_concurrency: int = 1
    no_catchup: bool = True


RECURRING_RUNS: tuple[RecurringRun, ...] = (
    RecurringRun(
        name="drift-monitoring-hourly",
        pipeline="drift-monitoring",
        cron="0 5 * * * *",  # 5 minutes past every hour: the previous hour's payload logs are flushed by then
        parameters={"model_name": "churn", "window": "1h", "retrain_on_drift": True},
        description="Drift check of the last hour of churn traffic; retrains on drift.",
    ),
    RecurringRun(
        name="churn-training-weekly",
        pipeline="churn-training",
        cron="0 0 3 * * 1",  # Mondays 03:00 UTC
        parameters={"model_name": "churn"},
        description="Scheduled retraining of the churn model, whether or not drift was seen.",
    ),
)


def schedule_recurring_runs(
    client: Any,
    packages_dir: str | Path,
    *,
    experiment: str = "slipway",
    runs: tuple[RecurringRun, ...] = RECURRING_RUNS,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Create each recurring run from `<packages_dir>/<pipeline>.yaml`; returns {name: recurring run id}.

    `overrides[name]` is merged into that run's parameters (e.g. `slipway_home`, storage prefixes).
    """
    packages = Path(packages_dir)
    missing = [r.pipeline for r in runs if not (packages / f"{r.pipeline}.yaml").is_file()]
    if missing:
        raise FileNotFoundError(f"compiled packages missing in {packages}: {missing}; run `slipway compile` first")
    experiment_id = client.create_experiment(experiment).experiment_id
    created: dict[str, str] = {}
    for run in runs:
        job = client.create_recurring_run(
            experiment_id,
            run.name,
            description=run.description,
            cron_expression=run.cron,
            max_concurrency=run.max_concurrency,
            no_catchup=run.no_catchup,
            params={**run.parameters, **(overrides or {}).get(run.name, {})},
            pipeline_package_path=str(packages / f"{run.pipeline}.yaml"),
            enabled=True,
        )
        created[run.name] = str(getattr(job, "recurring_run_id", ""))
        logger.info("recurring run %s (%s, cron %s) created", run.name, run.pipeline, run.cron)
    return created
