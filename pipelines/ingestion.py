"""`ingestion`: one source -> validated, cleansed, versioned dataset, with an HTML report and KFP metrics.

Scheduled with a KFP recurring run (`recurring_run_args`), or in clusters without KFP by the equivalent CronJob in
`manifests/base/ingestion/`. Re-runs are idempotent: an input already committed creates no new version.
"""

from typing import Any

from kfp import dsl

from components.ingestion import ingest_source

PIPELINE_NAME = "ingestion"


@dsl.pipeline(name=PIPELINE_NAME, description="Land, validate, cleanse and version one data source.")
def ingestion(source_uri: str, dataset: str = "churn", store_root: str = "") -> None:
    task = ingest_source(source_uri=source_uri, dataset=dataset, store_root=store_root)
    task.set_display_name("ingest-validate-version")
    # Each run must look at the source again: a cached result would skip new rows.
    task.set_caching_options(False)


def recurring_run_args(
    source_uri: str,
    dataset: str,
    *,
    experiment_id: str,
    package_path: str = "build/pipelines/ingestion.yaml",
    cron: str = "0 15 */6 * * *",
    job_name: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `kfp.Client(host).create_recurring_run(**args)`.

    KFP cron expressions have six fields (seconds first): the default runs at minute 15 every six hours.
    `max_concurrency=1` and `no_catchup=True` keep at most one ingestion per dataset in flight and skip missed
    slots after a pause (the next run picks up everything new anyway: watermarks, offsets, content hashes).
    """
    return {
        "experiment_id": experiment_id,
        "job_name": job_name or f"ingest-{dataset}",
        "description": f"Scheduled ingestion of {source_uri} into dataset {dataset}",
        "cron_expression": cron,
        "max_concurrency": 1,
        "no_catchup": True,
        "pipeline_package_path": package_path,
        "params": {"source_uri": source_uri, "dataset": dataset, "store_root": ""},
        "enable_caching": False,
        "enabled": True,
    }
