"""Window engine against a pandas recomputation; lateness, duplicates, batching and checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slipway.streaming.simulator import SimulatorConfig, simulate
from slipway.streaming.windows import DUPLICATE, HOPPING, LATE, TUMBLING, WindowEngine, WindowResult, hash_ids

pytestmark = pytest.mark.unit


def expected_windows(
    events: pd.DataFrame, bound: dict[int, int], pane: int = 10_000, span: int = 60_000
) -> pd.DataFrame:
    """Batch recomputation: every window of accepted events whose end is at or before its partition's close bound."""
    frames = []
    start = events["ts"] - events["ts"] % pane
    for k in range(span // pane):
        frames.append(events.assign(kind=HOPPING, start=start - k * pane, end=start - k * pane + span))
    frames.append(events.assign(kind=TUMBLING, start=start, end=start + pane))
    allw = pd.concat(frames)
    allw = allw[allw["end"] <= allw["partition"].map(bound)]
    agg = allw.groupby(["kind", "sensor_id", "start"])["value"].agg(
        count="count", mean="mean", min="min", max="max", std=lambda v: float(np.std(v, ddof=0))
    )
    return agg.reset_index().sort_values(["kind", "sensor_id", "start"]).reset_index(drop=True)


def to_frame(windows: list[WindowResult]) -> pd.DataFrame:
    cols = ["kind", "sensor_id", "start_ms", "count", "mean", "min", "max", "std"]
    frame = pd.DataFrame([w.to_dict() for w in windows], columns=[*cols, "end_ms"])[cols]
    frame = frame.rename(columns={"start_ms": "start"})
    return frame.sort_values(["kind", "sensor_id", "start"]).reset_index(drop=True)


def run_engine(engine: WindowEngine, ev: pd.DataFrame, batch: int) -> tuple[list[WindowResult], np.ndarray]:
    windows: list[WindowResult] = []
    status = []
    for lo in range(0, len(ev), batch):
        chunk = ev.iloc[lo : lo + batch]
        out = engine.process(
            chunk["partition"].tolist(),
            chunk["sensor_id"].tolist(),
            hash_ids(chunk["event_id"].tolist()),
            chunk["ts"].tolist(),
            chunk["value"].tolist(),
        )
        windows.extend(out.windows)
        status.append(out.status)
    return windows, np.concatenate(status)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    cfg = SimulatorConfig(
        sensors=6, interval_ms=700, out_of_order_rate=0.1, out_of_order_max_ms=3000, duplicate_rate=0.05
    )
    rows = [(e.sensor_id, e.event_id, e.ts, e.value, e.kind) for e in simulate(cfg, 400)]
    frame = pd.DataFrame(rows, columns=["sensor_id", "event_id", "ts", "value", "kind"])
    frame["partition"] = frame["sensor_id"].str[-1].astype(int) % 2
    return frame


@pytest.mark.parametrize("batch", [7, 97, 100_000])
def test_windows_match_batch_recomputation(events: pd.DataFrame, batch: int) -> None:
    engine = WindowEngine(allowed_lateness_ms=5_000)
    windows, status = run_engine(engine, events, batch)
    assert (status == DUPLICATE).sum() == (events["kind"] == "duplicate").sum() > 0
    assert (status == LATE).sum() == 0  # out-of-order only within the allowed lateness
    accepted = events[status == 0]
    bound = {p: int(g["ts"].max()) - 5_000 for p, g in events.groupby("partition")}
    want = expected_windows(accepted, bound)
    got = to_frame(windows)
    assert len(got) == len(want) > 100
    assert not got.duplicated(["kind", "sensor_id", "start"]).any()
    pd.testing.assert_frame_equal(
        got[["kind", "sensor_id", "start", "count"]], want[["kind", "sensor_id", "start", "count"]]
    )
    for col in ("mean", "min", "max", "std"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9)


def test_late_events_are_flagged_and_not_folded_in() -> None:
    engine = WindowEngine(allowed_lateness_ms=2_000)
    base = 1_700_000_000_000 - 1_700_000_000_000 % 10_000
    ts = [base + 1_000, base + 5_000, base + 12_000, base + 12_500, base + 3_000, base + 13_000]
    vals = [1.0, 3.0, 10.0, 20.0, 100.0, 30.0]
    out = engine.process([0] * 6, ["s"] * 6, hash_ids([f"e{i}" for i in range(6)]), ts, vals)
    # The watermark reached base+12_500: pane [base, base+10s) closed at base+12_000 (10 s + 2 s lateness),
    # so the reading at base+3_000 that arrives after it is late.
    assert out.status.tolist() == [0, 0, 0, 0, LATE, 0]
    first = [w for w in out.windows if w.kind == TUMBLING]
    assert [(w.start_ms, w.count, w.mean, w.min, w.max) for w in first] == [
        (
            base,
            2,
            2.0,
            1.0,
            3.0,
        )
    ]
    assert first[0].std == pytest.approx(1.0)


def test_per_partition_watermarks_do_not_mark_other_partitions_late() -> None:
    engine = WindowEngine(allowed_lateness_ms=1_000)
    base = 1_700_000_000_000 - 1_700_000_000_000 % 10_000
    # Partition 1 is far ahead; partition 0's reading at `base` is on time for partition 0.
    out = engine.process([1, 0], ["a", "b"], hash_ids(["x", "y"]), [base + 600_000, base], [1.0, 2.0])
    assert out.status.tolist() == [0, 0]
    assert engine.watermark(0) == base and engine.watermark(1) == base + 600_000


def test_snapshot_restore_gives_identical_results(events: pd.DataFrame) -> None:
    whole, _ = run_engine(WindowEngine(), events, 50)
    first = WindowEngine()
    half = len(events) // 2
    before, _ = run_engine(first, events.iloc[:half], 50)
    import orjson

    second = WindowEngine()
    for p in (0, 1):
        second.restore(p, orjson.loads(orjson.dumps(first.snapshot(p))))
    after, _ = run_engine(second, events.iloc[half:], 50)
    got, want = to_frame(before + after), to_frame(whole)
    assert len(got) == len(whole) and len(before) > 0 and len(after) > 0
    # Batch boundaries change the order of floating-point merges, so compare values to 1e-12.
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
