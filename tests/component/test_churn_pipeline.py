"""The churn-training pipeline run for real with kfp.local, and compiled to IR YAML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.compile import compile_all
from pipelines.run_local import find_outputs, run_pipeline_locally
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("pipeline")
    repo = work / "feature_repo"
    shutil.copytree(REPO_ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    run_dir = run_pipeline_locally(
        "churn-training",
        work / "pipeline_root",
        n_rows=1500,
        seed=3,
        cv_folds=3,
        cv_repeats=1,
        feast_repo=str(repo),
        online_store="sqlite",
        slipway_home=str(work / "home"),
    )
    return run_dir, work / "home"


def test_pipeline_reconciles_counts_and_registers_a_verified_model(pipeline_run: tuple[Path, Path]) -> None:
    from slipway.registry import ModelRegistry, load_verified_model
    from slipway.storage import LocalArtifactStore

    run_dir, home = pipeline_run
    curated = pd.read_parquet(find_outputs(run_dir, "ingest-churn", "curated"))
    quarantined = find_outputs(run_dir, "ingest-churn", "quarantine").read_text().splitlines()
    assert len(curated) + len(quarantined) == 1500

    training = pd.read_parquet(find_outputs(run_dir, "build-training-set", "training_set"))
    assert len(training) == len(curated)
    assert training["tenure"].notna().all()
    train = pd.read_parquet(find_outputs(run_dir, "split-holdout", "train"))
    test = pd.read_parquet(find_outputs(run_dir, "split-holdout", "test"))
    assert len(train) + len(test) == len(training)
    assert not set(train["customerID"]) & set(test["customerID"])

    registry = ModelRegistry(LocalArtifactStore(home / "artifacts"))
    entry = registry.get("churn")
    assert entry.version == 1
    assert 0.6 < entry.metrics["roc_auc"] <= 1.0
    assert entry.metrics["cv_roc_auc_ci_low"] <= entry.metrics["cv_roc_auc_mean"] <= entry.metrics["cv_roc_auc_ci_high"]
    assert 0.0 < float(entry.params["decision_threshold"]) < 1.0
    model, meta = load_verified_model(registry.download("churn", 1, home / "dl"))
    assert meta.sha256 == entry.sha256
    assert model.predict_proba(curated.drop(columns=["customerID", "Churn"]).head(3)).shape == (3, 2)
    # First version, no champion: promoted, with the decision and its evidence recorded.
    assert entry.stage == "production"
    assert entry.annotations["decision"]["promote"] is True
    assert "no champion" in entry.annotations["decision"]["reason"]
    selected = entry.annotations["candidate"]
    assert selected["algorithm"] == entry.params["algorithm"]
    assert len(entry.annotations["cv"]["folds"]) == 3  # 3-fold x 1 repeat, every fold's metrics kept
    kinds = [e.kind for e in registry.history("churn")]
    assert "champion-challenger" in kinds and "stage" in kinds
    card = (home / "dl" / "model_card.md").read_text()
    assert {"model_card.md", "model_card.html"} <= set(entry.extra_files)
    assert entry.training_data_sha256 in card
    assert "## Known limits" in card and "## Comparison with the champion" in card


def test_candidates_fan_out_and_are_collected_into_one_comparison(pipeline_run: tuple[Path, Path]) -> None:
    run_dir, _ = pipeline_run
    iterations = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("for-loop"))
    assert len(iterations) == 4, iterations  # one ParallelFor task per candidate, run by kfp.local
    table = find_outputs(run_dir, "select-candidate", "comparison").read_text()
    for algorithm in ("logistic_regression", "random_forest", "gradient_boosting", "svm"):
        assert f"| {algorithm}-0 |" in table
    assert "All 4 trials" in table
    html = find_outputs(run_dir, "select-candidate", "comparison_html").read_text()
    assert html.count("<tr>") == 2 * 5


def test_pipeline_renders_isvc_and_html_reports(pipeline_run: tuple[Path, Path]) -> None:
    run_dir, _ = pipeline_run
    isvc = yaml.safe_load(find_outputs(run_dir, "render-inference-service", "manifest").read_text())
    assert isvc["kind"] == "InferenceService"
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert "/churn/v1" in json.dumps(isvc)
    for task in ("train-churn-model", "drift-report"):
        html = find_outputs(run_dir, task, "report").read_text()
        assert "<html" in html.lower()
    report = find_outputs(run_dir, "train-churn-model", "report").read_text()
    assert "Precision-recall curve" in report and "Permutation importance" in report
    card = find_outputs(run_dir, "write-model-card", "card_html").read_text()
    assert "<h1>Model card: churn v1</h1>" in card


def test_every_pipeline_compiles_and_loads(tmp_path: Path) -> None:
    written = compile_all(tmp_path)
    spec = yaml.safe_load(written["churn-training"].read_text())
    assert spec["pipelineInfo"]["name"] == "churn-training"
    tasks = spec["root"]["dag"]["tasks"]
    assert {"ingest-churn", "build-training-set", "train-churn-model", "register-model"} <= set(tasks)
    assert {"split-holdout", "plan-candidates", "select-candidate", "compare-with-champion"} <= set(tasks)
    loop = next(t for name, t in tasks.items() if name.startswith("for-loop"))
    assert loop["iteratorPolicy"]["parallelismLimit"] == 4
    assert "parameterIterator" in loop
    assert "housing-cv" in written
