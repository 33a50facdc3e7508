"""Event parsing (poison messages get a reason) and the simulator's disorder."""

from __future__ import annotations

from collections import Counter

import pytest

from slipway.streaming.events import Event, Rejection, make_event, parse_event
from slipway.streaming.simulator import SimulatorConfig, replay_csv, simulate

pytestmark = pytest.mark.unit
NOW = 1_764_000_000_000


def test_valid_event_round_trips() -> None:
    assert parse_event(make_event("e1", "s1", NOW, 1.5), NOW) == Event("e1", "s1", NOW, 1.5)
    assert parse_event(b'{"event_id":"e","sensor_id":"s","ts":%d,"value":3}' % NOW, NOW) == Event("e", "s", NOW, 3.0)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"{not json", "bad_json"),
        (None, "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"event_id":"e","sensor_id":"s","ts":1764000000000}', "missing_field"),
        (b'{"event_id":"e","sensor_id":"s","ts":"yesterday","value":1}', "wrong_type"),
        (b'{"event_id":"e","sensor_id":"s","ts":1764000000000,"value":"hot"}', "wrong_type"),
        (b'{"event_id":"e","sensor_id":"s","ts":1764000000000,"value":true}', "wrong_type"),
        (b'{"event_id":"e","sensor_id":"","ts":1764000000000,"value":1}', "wrong_type"),
        (b'{"event_id":"e","sensor_id":"s","ts":1764000000000.5,"value":1}', "wrong_type"),
        (b'{"event_id":"e","sensor_id":"s","ts":5,"value":1}', "bad_timestamp"),
        (b'{"event_id":"e","sensor_id":"s","ts":99999999999999,"value":1}', "bad_timestamp"),
    ],
)
def test_poison_messages_are_rejected_with_a_reason(raw: bytes | None, kind: str) -> None:
    result = parse_event(raw, NOW)
    assert isinstance(result, Rejection)
    assert result.kind == kind and result.detail


def test_simulator_disorder_is_bounded_and_counted() -> None:
    cfg = SimulatorConfig(
        sensors=4, interval_ms=1000, out_of_order_rate=0.1, late_rate=0.02, duplicate_rate=0.05, anomaly_rate=0.01
    )
    events = list(simulate(cfg, 500))
    kinds = Counter(e.kind for e in events)
    originals = [e for e in events if e.kind != "duplicate"]
    assert len(originals) == 2000 and len({e.event_id for e in originals}) == 2000
    assert kinds["duplicate"] > 50 and kinds["out_of_order"] > 100 and kinds["late"] > 10
    assert 0 < sum(e.anomaly for e in originals) < 60
    # Send order: out-of-order events arrive at most out_of_order_max_ms behind the newest event time sent before.
    newest = 0
    for e in events:
        if e.kind == "out_of_order":
            assert newest - e.ts <= cfg.out_of_order_max_ms
        newest = max(newest, e.ts)
    assert list(simulate(cfg, 50)) == list(simulate(cfg, 50))  # reproducible for a seed


def test_replay_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "series.csv"
    path.write_text("timestamp,value\n2013-12-02 21:15:00,73.9\n2013-12-02 21:20:00,74.5\n")
    events = list(replay_csv(path, "machine"))
    assert [(e.event_id, e.ts, e.value) for e in events] == [
        ("machine-0", 1_386_018_900_000, 73.9),
        ("machine-1", 1_386_019_200_000, 74.5),
    ]
