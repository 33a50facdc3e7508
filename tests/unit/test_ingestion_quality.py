"""Declarative specs, cleansing, validation, PII, outliers, reports, versions, time travel and source merging."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pytest
import yaml
from typer.testing import CliRunner

from slipway.errors import ConfigError, DataValidationError, SlipwayError
from slipway.ingestion import (
    DatasetZones,
    IngestOptions,
    fetch_file,
    ingest_landed,
    load_spec,
    spec_from_dict,
)
from slipway.ingestion.integrate import SourceFrame, merge_sources
from slipway.storage import LocalArtifactStore

pytestmark = pytest.mark.unit

USAGE_SPEC = {
    "name": "usage",
    "columns": [
        {"name": "customer_id", "regex": r"^C\d{3}$"},
        {"name": "day", "type": "date", "date_formats": ["%Y-%m-%d", "%d/%m/%Y"]},
        {"name": "plan", "allowed": ["Basic", "Premium"], "aliases": {"prem": "Premium"}},
        {"name": "data", "type": "number", "min": 0, "unit_column": "data_unit", "units": {"GB": 1.0, "MB": 0.001}},
        {"name": "data_unit", "required": False},
        {"name": "minutes", "type": "integer", "min": 0, "max": 100000, "missing": "fill", "fill_value": 0},
        {"name": "roaming", "type": "boolean", "required": False, "missing": "keep"},
        {"name": "start", "type": "integer", "required": False},
        {"name": "end", "type": "integer", "required": False},
        {"name": "email", "pii": "hash", "required": False},
        {"name": "phone", "pii": "mask", "required": False},
        {"name": "spend", "type": "number", "outlier": "robust_z", "required": False},
        {"name": "country", "case": "upper", "required": False},
    ],
    "keys": ["customer_id", "day"],
    "rules": [{"name": "end_after_start", "expr": "end >= start"}],
    "partition_by": "day",
}

HEADER = "customer_id,day,plan,data,data_unit,minutes,roaming,start,end,email,phone,spend,country"
ROWS = [
    "C001,2026-01-01,Basic,1.5,GB,10,yes,1,2,a@x.io,5551234567,10,de",  # 2 clean
    "C002,02/01/2026, prem ,500,MB,,no,1,1,b@x.io,5559876543,11,fr",  # 3 alias, MB->GB, fill minutes, dd/mm/yyyy
    "C003,2026-01-01,Gold,1,GB,1,true,1,2,,,12,it",  # 4 category
    "C004,2026-13-45,Basic,1,GB,1,true,1,2,,,13,it",  # 5 bad date
    "C005,2026-01-02,Basic,1,TB,1,true,1,2,,,12,it",  # 6 unknown unit
    "C006,2026-01-02,Basic,1,GB,1,true,5,2,c@x.io,,11,it",  # 7 cross-field rule
    "C001,2026-01-01,Basic,2,GB,1,true,1,2,,,10,it",  # 8 duplicate key (first wins)
    "BAD,2026-01-02,Basic,1,GB,1,maybe,1,2,,,12,it",  # 9 regex + boolean type
    "C007,2026-01-02,Basic,-1,GB,1.5,true,1,2,,,10,it",  # 10 range + integer type
    "C008,2026-01-02,Basic,1,GB,3,,1,2,,,9999,es",  # 11 outlier (kept, flagged), roaming missing kept
    "C009,2026-01-02,Basic,1,GB,3,,1,2,,,12,es",  # 12 clean
    "C010,2026-01-03,Basic,1,GB,3,,1,2,,,11,es",  # 13 clean
]


@pytest.fixture
def zones(tmp_path: Path) -> DatasetZones:
    return DatasetZones(LocalArtifactStore(tmp_path / "store"))


def _ingest(tmp_path: Path, zones: DatasetZones, rows: list[str], name: str = "usage.csv", **kw):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    opts = IngestOptions(chunk_rows=kw.pop("chunk_rows", 4), pii_salt="pepper", report_dir=tmp_path / "reports")
    return ingest_landed(fetch_file(str(path)), spec_from_dict(USAGE_SPEC), zones, opts)


def _quarantine(zones: DatasetZones, key: str) -> dict[int, list[str]]:
    lines = zones.store.get_bytes(key).decode().splitlines()
    return {e["source_line"]: sorted(e["reasons"]) for e in map(json.loads, lines)}


def test_spec_rules_cleanse_and_quarantine(tmp_path: Path, zones: DatasetZones) -> None:
    report = _ingest(tmp_path, zones, ROWS)
    assert (report.rows_read, report.rows_curated, report.rows_quarantined) == (12, 5, 7)
    assert _quarantine(zones, report.quarantine_key) == {
        4: ["category:plan"],
        5: ["type:day"],
        6: ["unit:data"],
        7: ["rule:end_after_start"],
        8: ["duplicate:customer_id+day"],
        9: ["format:customer_id", "type:roaming"],
        10: ["range:data", "type:minutes"],
    }
    table = zones.read("usage")
    df = table.to_pandas().sort_values("_source_line").reset_index(drop=True)
    assert list(df["customer_id"]) == ["C001", "C002", "C008", "C009", "C010"]
    c2 = df.iloc[1]
    assert c2["plan"] == "Premium" and c2["data"] == pytest.approx(0.5) and c2["data_unit"] == "GB"
    assert c2["minutes"] == 0 and str(c2["day"]) == "2026-01-02"
    assert df["country"].tolist() == ["DE", "FR", "ES", "ES", "ES"]
    assert df["roaming"].tolist()[:2] == [True, False] and pd.isna(df["roaming"].iloc[2])
    # PII: hashed (salted, stable) and masked; the clear values are nowhere in the curated zone.
    assert df["email"].iloc[0] != "a@x.io" and len(df["email"].iloc[0]) == 32
    assert df["phone"].tolist()[:2] == ["******4567", "******6543"]
    assert report.rule_failures["rule:end_after_start"] == 1
    # Partitioned by the `day` column, with min/max statistics per file.
    manifest = zones.manifest("usage", 1)
    assert sorted(f["partition"] for f in manifest["files"]) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    stats = next(f for f in manifest["files"] if f["partition"] == "2026-01-02")["stats"]
    assert stats["spend"]["max"] == 9999.0 and stats["minutes"]["min"] == 0


def test_outliers_are_flagged_not_rejected(tmp_path: Path, zones: DatasetZones) -> None:
    # Bounds come from the valid values seen so far in the run (all of them while they fit in the sample).
    report = _ingest(tmp_path, zones, ROWS, chunk_rows=100)
    assert report.outliers == {"spend": 1} and report.rows_curated == 5
    df = zones.read("usage").to_pandas().sort_values("_source_line")
    assert df["_outliers"].tolist() == [None, None, "spend", None, None]


def test_quarantine_masks_pii(tmp_path: Path, zones: DatasetZones) -> None:
    rows = ["C001,2026-01-01,Gold,1,GB,1,true,1,2,secret@x.io,5550001111,1,it"]
    report = _ingest(tmp_path, zones, rows)
    text = zones.store.get_bytes(report.quarantine_key).decode()
    assert "secret@x.io" not in text and "5550001111" not in text and "******1111" in text


def test_reports_and_metrics(tmp_path: Path, zones: DatasetZones) -> None:
    report = _ingest(tmp_path, zones, ROWS)
    html = Path(report.html_report).read_text()
    assert "rule:end_after_start" in html and "Ingestion report: usage" in html
    prom = Path(report.prometheus_file).read_text()
    assert 'slipway_ingest_rows_read{dataset="usage"} 12.0' in prom
    assert 'slipway_ingest_rows_quarantined{dataset="usage"} 7.0' in prom
    assert 'slipway_ingest_rule_failures{dataset="usage",rule="unit:data"} 1.0' in prom
    metrics = report.metrics
    assert metrics["rows_curated"] == 5 and metrics["failures.category:plan"] == 1


def test_versions_idempotence_time_travel_and_pruning(tmp_path: Path, zones: DatasetZones) -> None:
    first = _ingest(tmp_path, zones, ROWS[:2])
    assert (first.version, first.new_version) == (1, True)
    again = _ingest(tmp_path, zones, ROWS[:2])
    assert (again.version, again.new_version) == (1, False)  # same input: no new version, no duplicate rows
    assert zones.read("usage").num_rows == 2
    second = _ingest(tmp_path, zones, ROWS[10:12], name="more.csv")
    assert (second.version, second.new_version) == (2, True)
    assert zones.read("usage").num_rows == 4
    assert zones.read("usage", version=1).num_rows == 2  # time travel
    pruned = zones.read("usage", partitions=("2026-01-03", None))
    assert pruned.num_rows == 1 and zones.files_read("usage", None, ("2026-01-03", None)) == 1
    filtered = zones.read("usage", filter=pc.field("customer_id") == "C009")
    assert filtered.num_rows == 1
    infos = zones.versions("usage")
    assert [(v.version, v.rows) for v in infos] == [(1, 2), (2, 4)]


def test_latest_row_per_key_across_versions(tmp_path: Path, zones: DatasetZones) -> None:
    _ingest(tmp_path, zones, ROWS[:2])
    changed = ROWS[0].replace(",10,yes,", ",25,yes,")  # C001 on 2026-01-01 again, 25 minutes instead of 10
    second = _ingest(tmp_path, zones, [changed, ROWS[10]], name="update.csv")
    assert second.version == 2 and zones.read("usage").num_rows == 4  # versions append
    latest = zones.read("usage", latest=True).to_pandas()
    assert len(latest) == 3 and latest.loc[latest["customer_id"] == "C001", "minutes"].tolist() == [25]
    assert zones.read("usage", version=1, latest=True).num_rows == 2
    only = zones.read("usage", latest=True, columns=["minutes"])
    assert only.column_names == ["minutes"] and sorted(only["minutes"].to_pylist()) == [0, 3, 25]
    keyless = DatasetZones(LocalArtifactStore(tmp_path / "keyless"))
    spec = spec_from_dict({"name": "plain", "columns": [{"name": "a"}, {"name": "b"}]})
    (tmp_path / "plain.csv").write_text("a,b\nx,y\nx,y\n")
    assert ingest_landed(fetch_file(str(tmp_path / "plain.csv")), spec, keyless).rows_curated == 2
    with pytest.raises(SlipwayError, match="no key columns"):
        keyless.read("plain", latest=True)


def test_cli_ingest_and_data_versions(tmp_path: Path) -> None:
    from slipway.cli import app

    spec_path = tmp_path / "usage.yaml"
    spec_path.write_text(yaml.safe_dump(USAGE_SPEC))
    src = tmp_path / "input.bin"
    src.write_text("\n".join([HEADER, *ROWS]) + "\n")
    runner = CliRunner()
    out = tmp_path / "zones"
    result = runner.invoke(app, ["ingest", str(src), "--dataset", str(spec_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("rows_read", "rows_curated", "rows_quarantined", "format", "version")} == {
        "rows_read": 12, "rows_curated": 5, "rows_quarantined": 7, "format": "csv", "version": 1,
    }  # fmt: skip
    listed = runner.invoke(app, ["data", "versions", "usage", "--store", str(out)])
    assert listed.exit_code == 0
    assert json.loads(listed.output.strip().splitlines()[-1])["rows"] == 5
    exported = tmp_path / "v1.parquet"
    read = runner.invoke(app, ["data", "read", "usage", "--version", "1", "--store", str(out), "--out", str(exported)])
    assert read.exit_code == 0 and len(pd.read_parquet(exported)) == 5
    read = runner.invoke(app, ["data", "read", "usage", "--latest", "--store", str(out), "--out", str(exported)])
    assert read.exit_code == 0 and len(pd.read_parquet(exported)) == 5  # one version: keys already unique
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert missing.exit_code != 0 and len(missing.output.strip().splitlines()) == 1


def test_spec_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="unsupported dataset"):
        load_spec("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "columns": [{"name": "a", "type": "complex"}]}))
    with pytest.raises(ConfigError, match="invalid"):
        load_spec(str(bad))
    with pytest.raises(ConfigError, match="not a declared column"):
        spec_from_dict({"name": "x", "columns": [{"name": "a"}], "keys": ["b"]})
    schema = spec_from_dict(USAGE_SPEC).to_pandera()
    assert "end_after_start" in str([c.name for c in schema.checks])


def test_merge_sources_priority_latest_and_lineage() -> None:
    crm = pd.DataFrame({"id": [1, 2, 3], "email": ["a@crm", None, "c@crm"], "plan": ["Basic", "Basic", "Pro"],
                        "updated": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-05"])})  # fmt: skip
    billing = pd.DataFrame({"id": [1, 2, 4], "email": ["a@bill", "b@bill", "d@bill"], "balance": [10.0, 20.0, 40.0],
                            "updated": pd.to_datetime(["2026-01-03", "2025-12-01", "2026-01-02"])})  # fmt: skip
    by_priority = merge_sources(
        [SourceFrame("postgres", crm, "updated"), SourceFrame("rest", billing, "updated")], keys=["id"]
    )
    assert by_priority["id"].tolist() == [1, 2, 3, 4]
    assert by_priority["email"].tolist() == ["a@crm", "b@bill", "c@crm", "d@bill"]
    assert by_priority["email__source"].tolist() == ["postgres", "rest", "postgres", "rest"]
    assert by_priority["balance"].tolist()[:2] == [10.0, 20.0] and pd.isna(by_priority["balance"].iloc[2])
    latest = merge_sources(
        [SourceFrame("postgres", crm, "updated"), SourceFrame("rest", billing, "updated")], keys=["id"],
        policy="latest",
    )  # fmt: skip
    assert latest["email"].tolist()[:2] == ["a@bill", "b@bill"]  # id 1: billing is newer
    assert latest["email__source"].tolist()[:3] == ["rest", "rest", "postgres"]
    with pytest.raises(DataValidationError, match="timestamp"):
        merge_sources([SourceFrame("a", crm.drop(columns="updated"))], keys=["id"], policy="latest")
