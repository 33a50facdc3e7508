"""Ingest + validate + cleanse throughput against a raw pyarrow CSV read of the same file, in the same run.

    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000

Generates a 20-column CSV (ids, 5 categories, 8 floats, 4 integers, a date, an e-mail) with ~0.3 % dirty rows
(bad numbers, unknown categories, out-of-range values, duplicate ids), then runs each measurement in a fresh
child process so peak RSS (ru_maxrss) belongs to that measurement alone. Phases, interleaved per repeat:

    raw       pyarrow.csv.read_csv of the whole file (the peer; multi-threaded, types inferred)
    read      Slipway's chunked reader alone (parallel segments, numbers and dates converted while parsing)
    validate  reader + cleanse + validate (pandera) + de-duplicate, curated batches kept in memory only
    ingest    the whole run: also partitioned Parquet, quarantine file, raw-zone copy and a committed version
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = ["alpha", "beta", "gamma", "delta"]


def bench_spec() -> dict:
    columns: list[dict] = [{"name": "id", "unique": True}]
    columns += [{"name": f"cat{j}", "allowed": CATEGORIES} for j in range(5)]
    columns += [{"name": f"num{j}", "type": "number", "min": -1000, "max": 1000} for j in range(8)]
    columns[6]["outlier"] = "iqr"
    columns += [{"name": f"int{j}", "type": "integer", "min": 0, "max": 999} for j in range(4)]
    columns += [{"name": "event_date", "type": "date"}, {"name": "email", "regex": r"^[^@\s]+@[^@\s]+$"}]
    return {"name": "bench", "columns": columns, "keys": ["id"], "partition_by": "event_date"}


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 250_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        ids = np.arange(start, start + n)
        df = pd.DataFrame({"id": pd.Series(ids).map("C{:08d}".format)})
        for j in range(5):
            df[f"cat{j}"] = rng.choice(CATEGORIES, n)
        for j in range(8):
            df[f"num{j}"] = rng.normal(100, 15, n).round(3).astype(str)
        for j in range(4):
            df[f"int{j}"] = rng.integers(0, 1000, n).astype(str)
        day = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
        df["event_date"] = day.strftime("%Y-%m-%d")
        df["email"] = pd.Series(ids).map("user{}@example.com".format)
        dirty = rng.random(n) < 0.003
        kinds = rng.integers(0, 4, n)
        df.loc[dirty & (kinds == 0), "num1"] = "n/a"
        df.loc[dirty & (kinds == 1), "cat2"] = "omega"
        df.loc[dirty & (kinds == 2), "int3"] = "5000"
        df.loc[dirty & (kinds == 3), "id"] = "C00000000"
        df.to_csv(path, index=False, header=start == 0, mode="w" if start == 0 else "a")


def run_raw(path: Path) -> dict:
    import pyarrow.csv as pacsv

    start, cpu = time.perf_counter(), time.process_time()
    table = pacsv.read_csv(path)
    seconds = time.perf_counter() - start
    return {"rows": table.num_rows, "seconds": seconds, "cpu_seconds": time.process_time() - cpu}


def run_stages(path: Path, chunk_rows: int, validate: bool) -> dict:
    """The first stages alone, for the breakdown: the chunked reader, then reader + cleanse + validate (no
    Parquet, no versions, no raw-zone copy)."""
    from slipway.ingestion import spec_from_dict
    from slipway.ingestion.engine import _parse_types
    from slipway.ingestion.formats import detect_format
    from slipway.ingestion.quality import BatchValidator
    from slipway.ingestion.readers import iter_batches, prefetch

    spec = spec_from_dict(bench_spec())
    start, cpu = time.perf_counter(), time.process_time()
    validator = BatchValidator(spec, source=str(path), pii_salt="", max_field_bytes=1 << 20)
    batches = iter_batches(
        path, detect_format(path), chunk_rows=chunk_rows, max_field_bytes=1 << 20, column_types=_parse_types(spec)
    )
    rows = curated = 0
    for batch in prefetch(batches):
        rows += batch.table.num_rows + len(batch.rejected)
        if validate and batch.table.num_rows:
            curated += validator.process(batch.table, batch.positions, "2026-01-01").curated.num_rows
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "cpu_seconds": time.process_time() - cpu, "curated": curated}


def run_ingest(path: Path, chunk_rows: int) -> dict:
    from slipway.ingestion import DatasetZones, IngestOptions, fetch_file, ingest_landed, spec_from_dict
    from slipway.storage import LocalArtifactStore

    with tempfile.TemporaryDirectory() as store_dir:
        zones = DatasetZones(LocalArtifactStore(store_dir))
        start, cpu = time.perf_counter(), time.process_time()
        report = ingest_landed(
            fetch_file(str(path)), spec_from_dict(bench_spec()), zones, IngestOptions(chunk_rows=chunk_rows)
        )
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
    assert report.rows_read == report.rows_curated + report.rows_quarantined
    return {
        "rows": report.rows_read,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "curated": report.rows_curated,
        "quarantined": report.rows_quarantined,
        "version": report.version,
    }


def child(args: argparse.Namespace) -> None:
    path = Path(args.file)
    if args.phase == "raw":
        result = run_raw(path)
    elif args.phase in ("read", "validate"):
        result = run_stages(path, args.chunk_rows, validate=args.phase == "validate")
    else:
        result = run_ingest(path, args.chunk_rows)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(phase: str, path: Path, chunk_rows: int) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--file", str(path), "--chunk-rows", str(chunk_rows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--phase", choices=["raw", "read", "validate", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        runs: dict[str, list[dict]] = {"raw": [], "read": [], "validate": [], "ingest": []}
        for _ in range(args.repeats):  # interleaved, so machine noise hits every phase alike
            for phase, results in runs.items():
                results.append(measure(phase, path, args.chunk_rows))
    best = {phase: min(results, key=lambda r: r["seconds"]) for phase, results in runs.items()}
    rps = {phase: r["rows"] / r["seconds"] for phase, r in best.items()}
    # CPU seconds (all threads) do not depend on what else the machine runs; wall time does.
    cpu = {phase: min(r["cpu_seconds"] for r in results) for phase, results in runs.items()}
    ing = best["ingest"]
    summary = {
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "raw_pyarrow_read_csv_rows_per_s": round(rps["raw"]),
        "ingest_validate_cleanse_rows_per_s": round(rps["ingest"]),
        "ratio": round(rps["ingest"] / rps["raw"], 3),
        "cpu_ratio": round(cpu["raw"] / cpu["ingest"], 3),
        "breakdown_rows_per_s": {phase: round(v) for phase, v in rps.items()},
        "breakdown_ratio": {phase: round(v / rps["raw"], 3) for phase, v in rps.items()},
        "breakdown_cpu_seconds": {phase: round(v, 2) for phase, v in cpu.items()},
        "seconds": {phase: [round(r["seconds"], 2) for r in results] for phase, results in runs.items()},
        "ingest_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["ingest"])),
        "raw_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["raw"])),
        "curated": ing["curated"],
        "quarantined": ing["quarantined"],
    }
    summary["load_average_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
