"""The `ingestion` pipeline run for real with kfp.local (twice: the second run is a no-op), plus its schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.ingestion import recurring_run_args
from pipelines.run_local import find_outputs, run_pipeline_locally
from slipway.data.churn import generate_synthetic_churn
from slipway.ingestion import DatasetZones
from slipway.storage import LocalArtifactStore
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.component


def test_ingestion_pipeline_runs_locally_and_is_idempotent(tmp_path: Path) -> None:
    src = tmp_path / "batch.dat"
    generate_synthetic_churn(200, seed=4).to_csv(src, index=False)
    with src.open("a") as fh:
        fh.write("broken,row\n")
    store = tmp_path / "zones"
    args = {"source_uri": str(src), "dataset": "churn", "store_root": str(store)}

    run_dir = run_pipeline_locally("ingestion", tmp_path / "root", **args)
    summary = json.loads(find_outputs(run_dir, "ingest-source", "summary").read_text())
    assert (summary["rows_read"], summary["rows_curated"], summary["rows_quarantined"]) == (201, 200, 1)
    assert (summary["version"], summary["new_version"]) == (1, True)
    assert "Ingestion report: churn" in find_outputs(run_dir, "ingest-source", "report").read_text()

    rerun = run_pipeline_locally("ingestion", tmp_path / "root2", **args)
    again = json.loads(find_outputs(rerun, "ingest-source", "summary").read_text())
    assert (again["version"], again["new_version"]) == (1, False)
    assert DatasetZones(LocalArtifactStore(store)).read("churn").num_rows == 200  # no duplicate rows


def test_recurring_run_args_match_the_client_and_the_cronjob() -> None:
    import inspect

    import kfp

    args = recurring_run_args("s3://landing/churn.csv", "churn", experiment_id="exp-1")
    accepted = set(inspect.signature(kfp.Client.create_recurring_run).parameters)
    assert set(args) <= accepted
    assert len(args["cron_expression"].split()) == 6 and args["max_concurrency"] == 1
    cronjob = yaml.safe_load((REPO_ROOT / "manifests/base/ingestion/cronjob.yaml").read_text())
    # Same cadence: the CronJob's five fields are the KFP expression without its seconds field.
    assert cronjob["spec"]["schedule"] == " ".join(args["cron_expression"].split()[1:])
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
