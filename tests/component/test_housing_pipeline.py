"""The housing-cv pipeline run with kfp.local: one task per regressor (ParallelFor), compared (Collected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.compile import compile_all
from pipelines.run_local import find_outputs, run_pipeline_locally
from slipway.training.housing import REGRESSORS

pytestmark = pytest.mark.component


def test_housing_cv_runs_locally_and_compares_three_regressors(tmp_path: Path) -> None:
    run_dir = run_pipeline_locally("housing-cv", tmp_path / "root", n_rows=600, n_splits=3, seed=5)
    iterations = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("for-loop"))
    assert len(iterations) == 3, iterations
    table = find_outputs(run_dir, "compare-regressors", "comparison").read_text()
    for name in ("linear_regression", "random_forest", "gradient_boosting"):
        assert f"| {name} |" in table
        assert f"### {name} per fold" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3 * 3  # three folds per regressor
    # kfp.local keeps Metrics values in the task's executor output (the metadata of the artifact).
    executor = json.loads((run_dir / "compare-regressors" / "executor_output.json").read_text())
    logged = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    best = executor["parameterValues"]["Output"]
    assert logged[f"{best}_rmse_mean"] == min(logged[f"{n}_rmse_mean"] for n in REGRESSORS)
    assert 10_000 < logged[f"{best}_rmse_mean"] < 60_000


def test_housing_cv_compiles_with_a_parallel_for(tmp_path: Path) -> None:
    spec = yaml.safe_load(compile_all(tmp_path)["housing-cv"].read_text())
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for name, t in tasks.items() if name.startswith("for-loop"))
    assert loop["iteratorPolicy"]["parallelismLimit"] == 3
    assert "compare-regressors" in tasks


def test_prepare_housing_reads_a_csv_and_subsamples(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import pandas as pd

    from components.housing import prepare_housing
    from slipway.data.housing import generate_synthetic_housing

    src = tmp_path / "housing.csv"
    generate_synthetic_housing(300, seed=2).to_csv(src, index=False)
    out = SimpleNamespace(path=str(tmp_path / "data.parquet"), metadata={})
    prepare_housing.python_func(source_uri=str(src), n_rows=120, seed=1, data=out)
    frame = pd.read_parquet(out.path)
    assert len(frame) == 120 and out.metadata == {"rows": 120, "source_uri": str(src)}
    prepare_housing.python_func(source_uri=str(src), n_rows=0, seed=1, data=out)  # 0 keeps every row
    assert len(pd.read_parquet(out.path)) == 300
