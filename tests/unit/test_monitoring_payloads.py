"""Reading payload logs: window bounds across hour partitions, label joins, and every bad line accounted for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.errors import DataValidationError
from slipway.monitoring.payloads import ReadStats, read_payload_logs
from slipway.monitoring.simulate import typed_churn_frame, write_labels, write_payload_log
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 9, 58, tzinfo=UTC)


def _log(root: Path, rows: int = 300, version: int = 3) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    frame = typed_churn_frame(rows, seed=4)
    preds = np.linspace(0.0, 1.0, rows)
    # 1 s apart from 09:58: rows straddle the 09 -> 10 hour partition.
    ids = write_payload_log(root, "churn", version, frame, preds, T0, batch=40, spacing=timedelta(seconds=1))
    return frame, preds, ids


def test_window_spans_hour_partitions_and_flattens_features(tmp_path: Path) -> None:
    frame, preds, ids = _log(tmp_path)
    assert len(list((tmp_path / "payload-logs/churn").glob("dt=2026-03-01/hour=*/*.jsonl"))) == 2
    stats = ReadStats()
    out = read_payload_logs(tmp_path, "churn", T0, T0 + timedelta(seconds=300), stats=stats)
    assert len(out) == 300 and stats.rows == 300 and stats.files == 2 and not stats.rejected
    assert list(out.columns[: len(frame.columns)]) == list(frame.columns)
    assert {"ts", "request_id", "row_id", "version", "variant", "prediction", "label"} <= set(out.columns)
    pd.testing.assert_frame_equal(out[frame.columns], frame, check_dtype=False)
    assert out["prediction"].tolist() == pytest.approx(preds.tolist())
    assert out["row_id"].tolist() == ids and out["label"].isna().all()
    assert (out["version"] == 3).all()
    # [start, end): 10:00:00 is row 120, the first one of the window.
    late = read_payload_logs(tmp_path, "churn", datetime(2026, 3, 1, 10, 0, tzinfo=UTC), T0 + timedelta(hours=1))
    assert len(late) == 180 and late["row_id"].iloc[0] == ids[120]


def test_labels_join_on_row_id(tmp_path: Path) -> None:
    _, _, ids = _log(tmp_path, rows=100)
    write_labels(tmp_path, "churn", ids[:60], np.array([1, 0] * 30), T0 + timedelta(days=1))
    stats = ReadStats()
    out = read_payload_logs(tmp_path, "churn", T0, T0 + timedelta(hours=1), stats=stats)
    assert stats.labels_joined == 60
    assert out["label"].iloc[:60].astype(int).tolist() == [1, 0] * 30
    assert out["label"].iloc[60:].isna().all()


def test_bad_lines_are_counted_by_reason(tmp_path: Path) -> None:
    _log(tmp_path, rows=10)
    path = next((tmp_path / "payload-logs/churn").rglob("*.jsonl"))
    good = {"ts": T0.isoformat(), "row_id": "r:0", "features": {"tenure": 1}, "prediction": 0.3}
    with path.open("a") as fh:
        fh.write("not json\n\n")
        fh.write(json.dumps({**good, "features": None}) + "\n")
        fh.write(json.dumps({**good, "ts": "yesterday"}) + "\n")
        fh.write(json.dumps({**good, "prediction": "high"}) + "\n")
        fh.write(json.dumps({**good, "ts": (T0 - timedelta(minutes=5)).isoformat()}) + "\n")
    stats = ReadStats()
    out = read_payload_logs(tmp_path, "churn", T0, T0 + timedelta(hours=1), stats=stats)
    assert len(out) == 10
    assert dict(stats.rejected) == {
        "invalid JSON": 1,
        "no features object": 1,
        "missing or invalid ts": 1,
        "missing or non-numeric prediction": 1,
    }
    assert stats.outside_window == 1
    assert stats.lines == stats.rows + sum(stats.rejected.values()) + stats.outside_window


def test_artifact_store_root_and_empty_window(tmp_path: Path) -> None:
    _log(tmp_path / "store", rows=50)
    store = LocalArtifactStore(tmp_path / "store")
    out = read_payload_logs(store, "churn", T0, T0 + timedelta(hours=1))
    assert len(out) == 50
    empty = read_payload_logs(store, "churn", T0 + timedelta(days=2), T0 + timedelta(days=3))
    assert empty.empty and "prediction" in empty.columns
    assert read_payload_logs(tmp_path / "nothing", "churn", T0, T0 + timedelta(hours=1)).empty
    with pytest.raises(DataValidationError, match="empty window"):
        read_payload_logs(store, "churn", T0, T0)
