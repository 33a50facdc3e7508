"""The parallel CSV reader: physical line numbers across segments, typed parsing with a per-column fall back to
text, the exact reader taking over for values that span lines, and outlier bounds that do not depend on chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from slipway.ingestion import DatasetZones, IngestOptions, fetch_file, ingest_landed, readers, spec_from_dict
from slipway.ingestion.engine import process_file
from slipway.ingestion.formats import detect_format
from slipway.ingestion.readers import FastPathUnavailable, iter_batches
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit

SPEC = {
    "name": "readings",
    "columns": [
        {"name": "id", "unique": True},
        {"name": "x", "type": "number"},
        {"name": "n", "type": "integer", "min": 0},
        {"name": "day", "type": "date"},
    ],
    "keys": ["id"],
}
TYPES = {"x": pa.float64(), "n": pa.int64(), "day": pa.date32()}


def _file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "readings.csv"
    path.write_text("id,x,n,day\n" + "\n".join(lines) + "\n")
    return path


def _clean(i: int) -> str:
    return f"r{i:04d},{i * 0.5},{i},2026-01-{1 + i % 28:02d}"


def _positions(path: Path, segment: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], dict[int, list[str]]]:
    monkeypatch.setattr(readers, "SEGMENT_BYTES", segment)
    good: list[int] = []
    bad: dict[int, list[str]] = {}
    for batch in iter_batches(path, detect_format(path), chunk_rows=7, max_field_bytes=1 << 20, column_types=TYPES):
        good += batch.positions.tolist()
        bad.update({r.position: r.reasons for r in batch.rejected})
    return good, bad


@pytest.mark.parametrize("segment", [64, 200, 1 << 20])
def test_positions_are_physical_lines_whatever_the_segment_size(
    segment: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [_clean(i) for i in range(40)]
    lines[5] = ""  # blank lines are layout: skipped, but they still count as lines
    lines[6] = ""
    lines[20] = "r9999,1,2"  # ragged
    lines[33] = "\r"  # a blank line with a Windows line ending
    path = _file(tmp_path, lines)
    good, bad = _positions(path, segment, monkeypatch)
    # Line 1 is the header, so data line i sits on physical line i + 2.
    assert bad == {22: ["ragged_row"]}
    assert good == [i + 2 for i in range(40) if i not in (5, 6, 20, 33)]


def test_a_bad_number_turns_only_its_column_to_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [_clean(i) for i in range(60)]
    lines[45] = "r0045,oops,45,2026-01-02"
    path = _file(tmp_path, lines)
    monkeypatch.setattr(readers, "SEGMENT_BYTES", 256)
    batches = list(iter_batches(path, detect_format(path), chunk_rows=10, max_field_bytes=1 << 20, column_types=TYPES))
    kinds = {str(b.table.schema.field("x").type) for b in batches if b.table.num_rows}
    assert kinds == {"double", "string"}  # typed until the bad segment, text from there on
    assert all(str(b.table.schema.field("n").type) == "int64" for b in batches if b.table.num_rows)
    # End to end the bad value is quarantined on its own, with its line and reason, and nothing else is.
    store = DatasetZones(LocalArtifactStore(tmp_path / "store"))
    report = ingest_landed(fetch_file(str(path)), spec_from_dict(SPEC), store, IngestOptions(chunk_rows=10))
    assert (report.rows_read, report.rows_curated, report.rows_quarantined) == (60, 59, 1)
    assert report.quarantine_key is not None
    record = json.loads(store.store.get_bytes(report.quarantine_key))
    assert record["source_line"] == 47 and record["reasons"] == ["type:x"] and record["raw"]["x"] == "oops"
    table = store.read("readings")
    assert table.schema.field("x").type == pa.float64() and table.num_rows == 59


def test_a_value_spanning_lines_hands_over_to_the_exact_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [_clean(i) for i in range(10)]
    lines[3] = 'r0003,"1.5\nx",3,2026-01-04'  # a quoted line break: physical lines and records disagree
    path = _file(tmp_path, lines)
    monkeypatch.setattr(readers, "SEGMENT_BYTES", 1 << 20)
    with pytest.raises(FastPathUnavailable):
        list(iter_batches(path, detect_format(path), chunk_rows=100, max_field_bytes=1 << 20, column_types=TYPES))
    # The engine falls back to Python's csv reader, which numbers records by the line they start on.
    staging = tmp_path / "staging"
    staging.mkdir()
    result = process_file(path, spec_from_dict(SPEC), IngestOptions(), staging)
    assert result.exact_reader and result.rows_read == 10 and result.rows_quarantined == 1
    record = json.loads(result.quarantine_path.read_text().splitlines()[0])
    assert record["source_line"] == 5 and record["reasons"] == ["type:x"]


def test_a_short_last_chunk_is_judged_by_the_whole_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = [*rng.normal(100, 5, 997).round(2).tolist(), 100.0, 101.0, 250.0]
    spec = {"name": "spend", "columns": [{"name": "id"}, {"name": "v", "type": "number", "outlier": "iqr"}]}
    path = tmp_path / "spend.csv"
    path.write_text("id,v\n" + "".join(f"s{i},{v}\n" for i, v in enumerate(values)))
    flagged = {}
    for chunk_rows in (997, 100_000):  # the last chunk holds 3 rows, or everything is one chunk
        zones = DatasetZones(LocalArtifactStore(tmp_path / f"store-{chunk_rows}"))
        report = ingest_landed(fetch_file(str(path)), spec_from_dict(spec), zones, IngestOptions(chunk_rows=chunk_rows))
        frame = zones.read("spend").to_pandas().sort_values("_source_line")
        flagged[chunk_rows] = set(frame.loc[frame["_outliers"].notna(), "id"])
        assert report.outliers["v"] == len(flagged[chunk_rows])
    # Three values alone have no spread to speak of; judged with the run, only 250 stands out among them.
    assert "s999" in flagged[997] and not {"s997", "s998"} & flagged[997]
    assert flagged[997] == flagged[100_000]


def test_writer_memory_and_open_files_stay_bounded_with_many_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slipway.ingestion import engine

    spec = dict(SPEC, partition_by="day")
    lines = [f"r{i:04d},{i},{i},2026-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d}" for i in range(3000)]
    path = _file(tmp_path, lines)
    baseline = DatasetZones(LocalArtifactStore(tmp_path / "baseline"))
    ingest_landed(fetch_file(str(path)), spec_from_dict(spec), baseline, IngestOptions(chunk_rows=500))
    monkeypatch.setattr(engine._PartitionWriters, "MAX_OPEN", 3)
    monkeypatch.setattr(engine._PartitionWriters, "MAX_BUFFERED", 40)
    monkeypatch.setattr(engine._PartitionWriters, "ROW_GROUP", 16)
    bounded = DatasetZones(LocalArtifactStore(tmp_path / "bounded"))
    report = ingest_landed(fetch_file(str(path)), spec_from_dict(spec), bounded, IngestOptions(chunk_rows=500))
    assert report.rows_curated == 3000
    files = bounded.manifest("readings")["files"]
    partitions = {f["partition"] for f in files}
    assert len(partitions) == len({line.rsplit(",", 1)[1] for line in lines})
    assert len(files) > len(partitions)  # closed early, so some partitions span several files
    assert sum(f["rows"] for f in files) == 3000
    one = bounded.read("readings").sort_by("_source_line").drop_columns(["_source"])
    two = baseline.read("readings").sort_by("_source_line").drop_columns(["_source"])
    assert one.equals(two)
    # Partition pruning still finds every file of a partition.
    march = bounded.read("readings", partitions=("2026-03-01", "2026-03-31"))
    assert march.num_rows == sum(1 for line in lines if "-03-" in line)
