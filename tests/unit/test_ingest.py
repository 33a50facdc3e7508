"""Format detection, row-level validation, quarantine and reconciliation of `ingest_file`."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from slipway.data.churn import generate_synthetic_churn
from slipway.data.ingest import detect_format, ingest_file
from slipway.errors import DataFormatError, DataValidationError

pytestmark = pytest.mark.unit


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return generate_synthetic_churn(20, seed=3)


def _write_csv(path: Path, df: pd.DataFrame, sep: str = ",") -> Path:
    df.to_csv(path, index=False, sep=sep)
    return path


def _quarantine(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- detect_format


def test_detect_csv(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    guess = detect_format(_write_csv(tmp_path / "data.bin", good_frame))
    assert (guess.format, guess.compression, guess.delimiter) == ("csv", None, ",")
    assert guess.confidence >= 0.9


def test_detect_tsv_ignores_extension(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    guess = detect_format(_write_csv(tmp_path / "data.csv", good_frame, sep="\t"))
    assert guess.format == "tsv"


def test_detect_gzip_csv(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(gzip.compress(good_frame.to_csv(index=False).encode()))
    guess = detect_format(path)
    assert (guess.format, guess.compression) == ("csv", "gzip")


def test_detect_zip_csv(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("inner.csv", good_frame.to_csv(index=False))
    assert (detect_format(path).format, detect_format(path).compression) == ("csv", "zip")


def test_detect_jsonl_and_json(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    jsonl = tmp_path / "a"
    good_frame.to_json(jsonl, orient="records", lines=True)
    assert detect_format(jsonl).format == "jsonl"
    arr = tmp_path / "b"
    good_frame.to_json(arr, orient="records")
    assert detect_format(arr).format == "json"


def test_detect_parquet(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    path = tmp_path / "data.csv"  # misleading extension on purpose
    good_frame.to_parquet(path)
    guess = detect_format(path)
    assert (guess.format, guess.confidence) == ("parquet", 1.0)


def test_detect_binary_junk_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DataFormatError, match="binary"):
        detect_format(path)


def test_detect_empty_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty"):
        detect_format(path)


# ---------------------------------------------------------------- ingest_file


def _broken_csv(tmp_path: Path, good_frame: pd.DataFrame) -> Path:
    lines = good_frame.to_csv(index=False).splitlines()
    header, body = lines[0], lines[1:11]  # 10 good rows, on source lines 2..11

    def row(**changes: str) -> str:
        rec = good_frame.iloc[15].to_dict()
        rec["customerID"] = changes.pop("customerID", f"BAD-{len(extra)}")
        rec.update(changes)
        return ",".join(f'"{v}"' if "," in v else v for v in rec.values())

    extra: list[str] = []
    extra.append(row(tenure="abc"))  # line 12: type
    extra.append(row(customerID=""))  # line 13: missing id
    extra.append("0000-RAGGED,Female,0,Yes")  # line 14: ragged (too few fields)
    extra.append(row(Contract="Weekly"))  # line 15: bad category
    extra.append(row(customerID=good_frame.iloc[0]["customerID"]))  # line 16: duplicate id
    extra.append(row(MonthlyCharges="-5", gender=""))  # line 17: range + missing
    extra.append(lines[12] + ",surplus")  # line 18: ragged (too many fields)
    extra.append(row(tenure="3.5"))  # line 19: non-integer tenure
    path = tmp_path / "broken.csv"
    path.write_text("\n".join([header, *body, *extra]) + "\n")
    return path


def test_broken_csv_reconciles_and_quarantines(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    result = ingest_file(_broken_csv(tmp_path, good_frame), out_dir=tmp_path / "out")
    assert result.rows_read == 18
    assert result.rows_curated == 10
    assert result.rows_quarantined == 8
    assert result.rows_read == result.rows_curated + result.rows_quarantined

    entries = _quarantine(result.quarantine_path)
    assert len(entries) == 8
    assert all(e["reasons"] and isinstance(e["raw"], dict) for e in entries)
    by_line = {e["source_line"]: e["reasons"] for e in entries}
    assert set(by_line.pop(17)) == {"range:MonthlyCharges", "missing:gender"}
    assert by_line == {
        12: ["type:tenure"],
        13: ["missing:customerID"],
        14: ["ragged_row"],
        15: ["category:Contract"],
        16: ["duplicate:customerID"],
        18: ["ragged_row"],
        19: ["type:tenure"],
    }
    raw_13 = next(e["raw"] for e in entries if e["source_line"] == 13)
    assert raw_13["customerID"] == ""

    curated = pd.read_parquet(result.curated_path)
    assert len(curated) == 10
    assert curated["tenure"].dtype == "int64"
    assert curated["MonthlyCharges"].dtype == "float64"
    assert good_frame.iloc[0]["customerID"] in set(curated["customerID"])  # first occurrence kept


def test_cleansing_strips_and_fills_new_customer_total(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    df = good_frame.copy()
    df.loc[0, ["tenure", "TotalCharges"]] = ["0", " "]
    df.loc[1, "Contract"] = "  One year  "
    result = ingest_file(_write_csv(tmp_path / "in.csv", df), out_dir=tmp_path / "out")
    assert result.rows_quarantined == 0
    curated = pd.read_parquet(result.curated_path)
    assert curated.loc[0, "TotalCharges"] == 0.0
    assert curated.loc[1, "Contract"] == "One year"


def test_blank_total_with_tenure_is_missing(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    df = good_frame.copy()
    df.loc[0, ["tenure", "TotalCharges"]] = ["5", ""]
    result = ingest_file(_write_csv(tmp_path / "in.csv", df), out_dir=tmp_path / "out")
    assert _quarantine(result.quarantine_path)[0]["reasons"] == ["missing:TotalCharges"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet", "gzip"])
def test_other_formats(tmp_path: Path, good_frame: pd.DataFrame, kind: str) -> None:
    path = tmp_path / "input"
    if kind == "jsonl":
        good_frame.to_json(path, orient="records", lines=True)
    elif kind == "json":
        good_frame.to_json(path, orient="records")
    elif kind == "parquet":
        good_frame.to_parquet(path)
    else:
        path.write_bytes(gzip.compress(good_frame.to_csv(index=False).encode()))
    result = ingest_file(path, out_dir=tmp_path / "out")
    assert (result.rows_read, result.rows_curated, result.rows_quarantined) == (20, 20, 0)
    expected = {"gzip": "csv"}.get(kind, kind)
    assert result.format == expected
    assert result.to_dict()["rows_read"] == 20


def test_jsonl_malformed_line_is_quarantined(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    path = tmp_path / "in.jsonl"
    good_frame.to_json(path, orient="records", lines=True)
    with open(path, "a") as fh:
        fh.write("{not json\n")
    result = ingest_file(path, out_dir=tmp_path / "out")
    assert (result.rows_read, result.rows_quarantined) == (21, 1)
    assert _quarantine(result.quarantine_path)[0] == {
        "source_line": 21,
        "reasons": ["malformed_json"],
        "raw": {"_text": "{not json"},
    }


def test_unsupported_dataset(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="unsupported dataset"):
        ingest_file(_write_csv(tmp_path / "in.csv", good_frame), dataset="iris", out_dir=tmp_path)


def test_missing_required_column(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="Contract"):
        ingest_file(_write_csv(tmp_path / "in.csv", good_frame.drop(columns="Contract")), out_dir=tmp_path)
