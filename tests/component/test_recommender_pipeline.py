"""The recommender-training pipeline run for real with kfp.local, on synthetic data and on a MovieLens file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.compile import compile_all
from pipelines.run_local import find_outputs, run_pipeline_locally
from slipway.recommender.data import generate_interactions

pytestmark = pytest.mark.component


def test_pipeline_trains_beats_popularity_and_registers(tmp_path: Path) -> None:
    from slipway.recommender.model import Recommender
    from slipway.registry import ModelRegistry, load_verified_model
    from slipway.storage import LocalArtifactStore

    # a MovieLens u.data file written from synthetic interactions, plus one malformed line
    frame = generate_interactions(500, 300, seed=8)
    source = tmp_path / "u.data"
    lines = [f"{u[1:]}\t{i[1:]}\t4\t{t}" for u, i, t in zip(frame.user_id, frame.item_id, frame.timestamp, strict=True)]
    source.write_text("\n".join([*lines, "1\t2\tbad\t3"]) + "\n")
    home = tmp_path / "home"
    run_dir = run_pipeline_locally(
        "recommender-training", tmp_path / "root", source_uri=str(source), seed=3, slipway_home=str(home)
    )
    interactions = pd.read_parquet(find_outputs(run_dir, "prepare-interactions", "interactions"))
    assert len(interactions) == len(frame)  # the malformed line was rejected, nothing else lost

    registry = ModelRegistry(LocalArtifactStore(home / "artifacts"))
    entry = registry.get("recommender")
    assert entry.version == 1 and entry.feature_schema["kind"] == "recommender"
    assert entry.metrics["ndcg_at_10"] > 1.3 * entry.metrics["baseline_ndcg_at_10"]
    assert 0 < entry.metrics["recall_at_10"] <= 1
    model, meta = load_verified_model(registry.download("recommender", 1, tmp_path / "dl"))
    assert isinstance(model, Recommender) and meta.sha256 == entry.sha256
    assert len(model.recommend(interactions["user_id"].iloc[0], k=10).items) == 10
    report = find_outputs(run_dir, "train-recommender-model", "report").read_text()
    assert "| ndcg_at_10 |" in report


def test_recommender_pipeline_compiles(tmp_path: Path) -> None:
    spec = yaml.safe_load(compile_all(tmp_path)["recommender-training"].read_text())
    assert spec["pipelineInfo"]["name"] == "recommender-training"
    assert set(spec["root"]["dag"]["tasks"]) == {
        "prepare-interactions",
        "train-recommender-model",
        "register-recommender-model",
    }
