"""A corpus of malformed inputs, generated here: none crashes, every run reconciles, every rejection has a reason."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from slipway.data.churn import generate_synthetic_churn
from slipway.ingestion import DatasetZones, IngestOptions, churn_spec, fetch_file, ingest_landed
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit

GOOD = generate_synthetic_churn(12, seed=11)
CSV = GOOD.to_csv(index=False)
HEADER, *ROWS = CSV.splitlines()


def _lines(*extra: str) -> bytes:
    return ("\n".join([HEADER, *ROWS, *extra]) + "\n").encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _row(**changes: str) -> str:
    rec = {k: str(v) for k, v in GOOD.iloc[0].to_dict().items()}
    rec["customerID"] = "X-" + "".join(random.Random(len(changes)).choices("ABCDEFG", k=6))
    rec.update(changes)
    return ",".join(f'"{v}"' if ("," in v or "\n" in v) else v for v in rec.values())


def _wrong_types() -> bytes:
    frame = GOOD.astype(str)
    frame.loc[2, "tenure"] = "abc"
    return _parquet(frame)


def _records() -> list[dict]:
    return json.loads(GOOD.to_json(orient="records"))


# name -> (bytes, expected status, a reason code that must appear (row or file level), or None)
CORPUS: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
    "empty": (lambda: b"", "rejected", "unreadable"),
    "whitespace_only": (lambda: b"  \n\n \t\n", "rejected", "unreadable"),
    "header_only": (lambda: (HEADER + "\n").encode(), "ok", None),
    "truncated_mid_row": (lambda: _lines()[:-25], "ok", "ragged_row"),
    "latin1_encoding": (lambda: _lines(_row(gender="Fémale")).decode().encode("latin-1"), "ok", "encoding:gender"),
    "utf16_bom": (lambda: CSV.encode("utf-16"), "rejected", "unreadable"),
    "utf8_bom": (lambda: b"\xef\xbb\xbf" + _lines(), "ok", None),
    "mixed_delimiters": (lambda: _lines(_row().replace(",", ";")), "ok", "ragged_row"),
    "ragged_rows": (lambda: _lines("A-1,Female,0", _row() + ",extra"), "ok", "ragged_row"),
    "unbalanced_quotes": (lambda: _lines('Q-1,"Female,0,Yes', _row()), "ok", None),
    "binary_junk": (lambda: random.Random(1).randbytes(4096), "rejected", "unreadable"),
    "png_magic": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), "rejected", "unreadable"),
    "ten_mb_field": (lambda: _lines(_row(PaymentMethod="x" * 10_000_000)), "ok", "field_too_large:PaymentMethod"),
    "json_error_midway": (
        lambda: json.dumps(_records()).encode()[:600] + b'{"broken": tru, }, {"a": 1}]',
        "ok",
        "malformed_json",
    ),
    "json_unclosed_array": (lambda: json.dumps(_records()).encode()[:-1], "ok", "malformed_json"),
    "json_scalar": (lambda: b"42\n", "rejected", "unreadable"),
    "jsonl_bad_lines": (
        lambda: (GOOD.to_json(orient="records", lines=True) + "{not json\n[1, 2]\n").encode(),
        "ok",
        "malformed_json",
    ),
    "jsonl_first_line_broken": (
        lambda: ("{oops\n" + GOOD.to_json(orient="records", lines=True)).encode(),
        "ok",
        "malformed_json",
    ),
    "parquet_wrong_schema": (
        lambda: _parquet(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
        "rejected",
        "schema_mismatch",
    ),
    "parquet_wrong_types": (_wrong_types, "ok", "type:tenure"),
    "parquet_truncated": (lambda: _parquet(GOOD)[:-40], "rejected", "unreadable"),
    "gzip_truncated": (lambda: gzip.compress(_lines() * 40)[:-300], "ok", None),
    "zip_corrupt": (lambda: _zip({"a.csv": _lines()})[:60], "rejected", "unreadable"),
    "zip_two_members": (lambda: _zip({"a.csv": _lines(), "b.csv": _lines()}), "rejected", "unreadable"),
    "nul_bytes": (lambda: _lines().replace(b"Female", b"Fe\x00male", 1), "ok", None),
    "duplicate_header": (lambda: (HEADER + ",gender\n" + ROWS[0] + ",Male\n").encode(), "rejected", "unreadable"),
    "missing_required_column": (
        lambda: GOOD.drop(columns="Contract").to_csv(index=False).encode(),
        "rejected",
        "schema_mismatch",
    ),
    "crlf_line_endings": (lambda: _lines().replace(b"\n", b"\r\n"), "ok", None),
    "blank_lines": (lambda: _lines().replace(b"\n", b"\n\n", 3), "ok", None),
    # Cleansing collapses the inner newline, so the category matches: curated, not quarantined.
    "quoted_newline_in_value": (lambda: _lines(_row(Contract="One\nyear")), "ok", None),
    "bad_values": (
        lambda: _lines(_row(tenure="-3"), _row(MonthlyCharges="abc"), _row(Churn="Maybe")),
        "ok",
        "range:tenure",
    ),
    "one_column_no_delimiter": (lambda: b"justonecolumn\n" + b"value\n" * 5, "rejected", "unreadable"),
}


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> DatasetZones:
    return DatasetZones(LocalArtifactStore(tmp_path_factory.mktemp("store")))


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_input(name: str, tmp_path: Path, zones: DatasetZones) -> None:
    build, status, reason = CORPUS[name]
    path = tmp_path / name  # no extension: detection is by content only
    path.write_bytes(build())
    report = ingest_landed(fetch_file(str(path)), churn_spec(), zones, IngestOptions(chunk_rows=5))

    assert report.status == status, report.error
    assert report.rows_read == report.rows_curated + report.rows_quarantined
    store = zones.store
    if status == "rejected":
        assert report.files_quarantined == 1 and report.rows_read == 0
        assert report.error
        reason_doc = json.loads(store.get_bytes(report.quarantine_key + ".reason.json"))
        assert reason_doc["reason"] == reason
        assert reason_doc["error"] == report.error
        assert store.get_bytes(report.quarantine_key) == path.read_bytes()  # kept whole, byte for byte
        return
    entries = []
    if report.rows_quarantined:
        entries = [json.loads(line) for line in store.get_bytes(report.quarantine_key).decode().splitlines()]
    assert len(entries) == report.rows_quarantined
    assert all(e["reasons"] and "source_line" in e and e["run_id"] == report.run_id for e in entries)
    if reason is not None:
        assert any(reason in e["reasons"] for e in entries), [e["reasons"] for e in entries]


def test_specific_outcomes(tmp_path: Path, zones: DatasetZones) -> None:
    """Values that could be wrong: exact counts on a few corpus entries."""

    def run(name: str):  # type: ignore[no-untyped-def]
        path = tmp_path / name
        path.write_bytes(CORPUS[name][0]())
        return ingest_landed(fetch_file(str(path)), churn_spec(), zones, IngestOptions(chunk_rows=5))

    header_only = run("header_only")
    assert (header_only.rows_read, header_only.version) == (0, header_only.version)
    bom = run("utf8_bom")
    assert (bom.rows_read, bom.rows_curated) == (12, 12)
    midway = run("json_error_midway")
    assert midway.rows_quarantined == 1 and midway.rows_curated >= 1
    big = run("ten_mb_field")
    assert (big.rows_read, big.rows_curated, big.rows_quarantined) == (13, 12, 1)
    entry = json.loads(zones.store.get_bytes(big.quarantine_key).decode().splitlines()[0])
    assert len(entry["raw"]["PaymentMethod"]) < 100_000 and entry["raw"]["_truncated_fields"] == ["PaymentMethod"]
    latin = run("latin1_encoding")
    assert (latin.rows_curated, latin.rows_quarantined) == (12, 1)
    newline = run("quoted_newline_in_value")
    assert (newline.rows_read, newline.rows_curated) == (13, 13)
