"""One ingestion run: land -> detect -> read in chunks -> cleanse + validate -> curated / quarantine -> version.

Conservation is checked before anything is committed: rows_read == rows_curated + rows_quarantined, or the run
fails with ReconciliationError. A file that cannot be read at all is quarantined whole, with its reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from slipway.errors import DataFormatError, DataValidationError, ReconciliationError
from slipway.ingestion.connectors import Landed
from slipway.ingestion.formats import FormatGuess, detect_format
from slipway.ingestion.quality import OUTLIER_COLUMN, PARTITION_COLUMN, SOURCE_COLUMN, BatchValidator
from slipway.ingestion.readers import FastPathUnavailable, RawBatch, Rejected, iter_batches, prefetch
from slipway.ingestion.report import kfp_metrics, write_html, write_prometheus
from slipway.ingestion.spec import DatasetSpec
from slipway.ingestion.zones import DatasetZones
from slipway.storage import sha256_file

logger = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    chunk_rows: int = 200_000
    max_field_bytes: int = 1 << 20
    pii_salt: str = ""
    keep_raw: bool = True
    report_dir: Path | None = None
    pushgateway: str | None = None
    sample_limit: int = 50


@dataclass
class ProcessResult:
    """What reading one file produced, before anything is committed."""

    guess: FormatGuess
    rows_read: int
    rows_curated: int
    rows_quarantined: int
    parts: list[tuple[Path, str, int, str]]  # (parquet file, partition, rows, sha256)
    quarantine_path: Path
    rule_failures: Counter[str]
    outliers: Counter[str]
    exact_reader: bool


@dataclass
class IngestionReport:
    dataset: str
    source: str
    run_id: str
    status: str  # ok | rejected
    format: str | None = None
    compression: str | None = None
    confidence: float = 0.0
    rows_read: int = 0
    rows_curated: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    bytes_read: int = 0
    duration_s: float = 0.0
    finished_at: float = 0.0
    version: int | None = None
    new_version: bool = False
    rule_failures: dict[str, int] = field(default_factory=dict)
    outliers: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    raw_key: str | None = None
    quarantine_key: str | None = None
    html_report: str | None = None
    prometheus_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def metrics(self) -> dict[str, float]:
        return kfp_metrics(self)


class _PartitionWriters:
    """Parquet files per date partition. Rows are buffered per partition so row groups stay large when chunks
    span many days, within two bounds: the rows buffered over all partitions (the fullest buffer is written
    first past it) and the files open at once (the least recently written one is finished past it, and a new
    file starts if its partition gets more rows later)."""

    ROW_GROUP = 32_000
    MAX_BUFFERED = 256_000
    MAX_OPEN = 64

    def __init__(self, staging: Path, dictionary_columns: list[str] | None = None) -> None:
        self.staging = staging
        # Dictionary encoding pays off for low-cardinality columns only; elsewhere it is wasted work.
        self.dictionary_columns = dictionary_columns
        # Parquet encoding runs on a background thread (pyarrow releases the GIL) while the next chunk is parsed.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slipway-parquet")
        self.pending: list[Future[None]] = []
        self.open: OrderedDict[str, tuple[pq.ParquetWriter, int]] = OrderedDict()  # partition -> (writer, file)
        self.files: list[list[Any]] = []  # [path, partition, rows]
        self.lock = threading.Lock()
        self.buffers: dict[str, list[pa.Table]] = {}
        self.buffered: Counter[str] = Counter()
        self.total_buffered = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.pending = [f for f in self.pending if not f.done() or f.result()]
        while len(self.pending) >= 2:  # bounded: at most two chunks waiting, so memory stays flat
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(self._write, table))

    def _write(self, table: pa.Table) -> None:
        partitions = table[PARTITION_COLUMN].combine_chunks()
        data = table.drop_columns([PARTITION_COLUMN])
        values = partitions.dictionary.to_pylist()
        if len(values) == 1:
            self._add(values[0], data)
            return
        order = pc.sort_indices(partitions.indices)
        data, codes = data.take(order), partitions.indices.take(order)
        counts = np.bincount(codes.to_numpy(zero_copy_only=False), minlength=len(values))
        start = 0
        for value, count in zip(values, counts.tolist(), strict=True):
            if count:
                self._add(value, data.slice(start, count))
            start += count

    def _add(self, partition: str, part: pa.Table) -> None:
        self.buffers.setdefault(partition, []).append(part)
        self.buffered[partition] += part.num_rows
        self.total_buffered += part.num_rows
        if self.buffered[partition] >= self.ROW_GROUP:
            self._flush(partition)
        while self.total_buffered > self.MAX_BUFFERED:
            self._flush(max(self.buffered, key=self.buffered.__getitem__))

    def _writer(self, partition: str, schema: pa.Schema, *, limit: bool) -> tuple[pq.ParquetWriter, int]:
        with self.lock:
            if partition in self.open:
                self.open.move_to_end(partition)
                return self.open[partition]
            if limit and len(self.open) >= self.MAX_OPEN:
                _, (oldest, _) = self.open.popitem(last=False)
                oldest.close()
            index = len(self.files)
            path = self.staging / f"part-{index:05d}.parquet"
            self.files.append([path, partition, 0])
            writer = pq.ParquetWriter(
                path, schema, compression="lz4",
                use_dictionary=self.dictionary_columns if self.dictionary_columns is not None else True,
            )  # fmt: skip
            self.open[partition] = (writer, index)
            return writer, index

    def _flush(self, partition: str, *, limit: bool = True) -> None:
        parts = self.buffers.pop(partition, [])
        self.total_buffered -= self.buffered.pop(partition, 0)
        if not parts:
            return
        table = pa.concat_tables(parts).combine_chunks()
        writer, index = self._writer(partition, table.schema, limit=limit)
        writer.write_table(table.cast(writer.schema), row_group_size=self.ROW_GROUP)
        self.files[index][2] += table.num_rows

    def close(self) -> list[tuple[Path, str, int, str]]:
        """Finish every file; returns (file, partition, rows, sha256) per file."""
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pool.shutdown(wait=True)

        def finish(partition: str) -> None:
            self._flush(partition, limit=False)
            with self.lock:
                writer, _ = self.open.pop(partition)
            writer.close()

        # Many partitions still hold their last rows here: they are encoded in parallel, one partition per task
        # (pyarrow releases the GIL), and every file is then fingerprinted the same way.
        partitions = sorted(set(self.open) | {p for p, rows in self.buffered.items() if rows})
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="slipway-parquet") as pool:
            list(pool.map(finish, partitions))
            digests = list(pool.map(sha256_file, [path for path, _, _ in self.files]))
        return [
            (path, partition, rows, digest)
            for (path, partition, rows), digest in zip(self.files, digests, strict=True)
            if rows
        ]


def _write_rejected(fh: IO[str], rejected: list[Rejected], extra: dict[str, Any]) -> None:
    for rej in rejected:
        rec = {"source_line": rej.position, "reasons": rej.reasons, "raw": rej.raw, **extra}
        fh.write(json.dumps(rec, default=str) + "\n")


def _parse_types(spec: DatasetSpec) -> dict[str, pa.DataType]:
    """Columns the csv parser may convert itself: numbers and dates, which the validator would otherwise parse
    from text. PII columns stay text, so hashing and masking see the value exactly as received."""
    return {c.name: c.arrow_type for c in spec.columns if c.type in ("integer", "number", "date") and not c.pii}


def _process_once(
    path: Path, guess: FormatGuess, spec: DatasetSpec, opts: IngestOptions, staging: Path, *, source: str,
    run_id: str, exact: bool,
) -> ProcessResult:  # fmt: skip
    validator = BatchValidator(spec, source=source, pii_salt=opts.pii_salt, max_field_bytes=opts.max_field_bytes)
    low_cardinality = [c.name for c in spec.columns if c.allowed or c.type == "boolean"]
    writers = _PartitionWriters(staging, [*low_cardinality, SOURCE_COLUMN, OUTLIER_COLUMN])
    quarantine_path = staging / "quarantine.jsonl"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rows_read = rows_curated = rows_quarantined = 0
    failures: Counter[str] = Counter()
    outliers: Counter[str] = Counter()
    first = True
    raw_batches = iter_batches(
        path, guess, chunk_rows=opts.chunk_rows, max_field_bytes=opts.max_field_bytes, exact=exact,
        column_types=_parse_types(spec),
    )  # fmt: skip
    batches: Iterator[RawBatch] = prefetch(raw_batches)
    try:
        with open(quarantine_path, "w", encoding="utf-8") as qfh:
            for batch in batches:
                if first:
                    validator.check_header(batch.table.column_names, str(path))
                    first = False
                outcome = validator.process(batch.table, batch.positions, today)
                rejected = [*batch.rejected, *outcome.rejected]
                for rej in batch.rejected:
                    failures.update(rej.reasons)
                failures.update(outcome.rule_failures)
                outliers.update(outcome.outliers)
                writers.write(outcome.curated)
                _write_rejected(qfh, rejected, {"source": source, "run_id": run_id})
                rows_read += batch.table.num_rows + len(batch.rejected)
                rows_curated += outcome.curated.num_rows
                rows_quarantined += len(rejected)
    finally:
        parts = writers.close()
    return ProcessResult(
        guess, rows_read, rows_curated, rows_quarantined, parts, quarantine_path, failures, outliers, exact
    )


def process_file(
    path: str | Path, spec: DatasetSpec, opts: IngestOptions, staging: Path, *, source: str = "", run_id: str = ""
) -> ProcessResult:
    """Read, cleanse and validate one local file into `staging`; raises DataFormatError/DataValidationError
    when the file as a whole is unusable and ReconciliationError when a row went missing."""
    path = Path(path)
    guess = detect_format(path)
    logger.info("reading %s as %s (compression=%s, confidence=%.2f)", path, guess.format, guess.compression,
                guess.confidence)  # fmt: skip
    source = source or str(path)
    try:
        result = _process_once(path, guess, spec, opts, staging, source=source, run_id=run_id, exact=False)
    except FastPathUnavailable as exc:
        logger.info("%s: fast csv reader gave up (%s); re-reading row by row", path, exc)
        for child in staging.iterdir():
            child.unlink()
        result = _process_once(path, guess, spec, opts, staging, source=source, run_id=run_id, exact=True)
    if result.rows_read != result.rows_curated + result.rows_quarantined:
        raise ReconciliationError(
            f"{path}: read {result.rows_read} rows but curated {result.rows_curated} + quarantined "
            f"{result.rows_quarantined}; nothing was committed"
        )
    return result


def _reason_code(exc: Exception) -> str:
    return "schema_mismatch" if isinstance(exc, DataValidationError) else "unreadable"


def ingest_landed(
    landed: Landed, spec: DatasetSpec, zones: DatasetZones, opts: IngestOptions | None = None
) -> IngestionReport:
    """Run one ingestion of an already landed source and commit a dataset version (if anything changed)."""
    opts = opts or IngestOptions()
    started = time.perf_counter()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    report = IngestionReport(dataset=spec.name, source=landed.source, run_id=run_id, status="ok")
    staging = Path(tempfile.mkdtemp(prefix="slipway-ingest-"))
    samples: list[dict[str, Any]] = []
    try:
        if landed.rows_fetched == 0:
            # Nothing new at the source (e.g. watermark or offsets already at the end): nothing to commit.
            report.version = zones.latest_version(spec.name)
            return report
        report.bytes_read = landed.path.stat().st_size
        day = dt.datetime.now(dt.UTC).date().isoformat()

        def fingerprint_and_land() -> tuple[str, str | None]:
            digest = sha256_file(landed.path)
            raw_key = zones.land_raw(spec.name, landed.path, digest, landed.name, day) if opts.keep_raw else None
            return digest, raw_key

        # Hashing and the raw-zone copy overlap with parsing; hashlib and file copies release the GIL.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slipway-raw") as pool:
            landing = pool.submit(fingerprint_and_land)
            result: ProcessResult | None = None
            failure: Exception | None = None
            try:
                result = process_file(landed.path, spec, opts, staging, source=landed.source, run_id=run_id)
            except (DataFormatError, DataValidationError) as caught:
                failure = caught
            digest, report.raw_key = landing.result()
        if failure is not None:
            report.status, report.error, report.files_quarantined = "rejected", str(failure), 1
            code = _reason_code(failure)
            report.quarantine_key = zones.quarantine_file(
                spec.name, run_id, landed.path, landed.name,
                {"reason": code, "error": str(failure), "sha256": digest, "source": landed.source},
            )  # fmt: skip
            report.rule_failures = {code: 1}
            report.version = zones.latest_version(spec.name)
            logger.debug("%s: file quarantined whole: %s", landed.source, failure)  # callers report it
            return report
        assert result is not None
        report.format, report.compression = result.guess.format, result.guess.compression
        report.confidence = result.guess.confidence
        report.rows_read, report.rows_curated = result.rows_read, result.rows_curated
        report.rows_quarantined = result.rows_quarantined
        report.rule_failures = dict(sorted(result.rule_failures.items()))
        report.outliers = dict(sorted(result.outliers.items()))
        if result.rows_quarantined:
            report.quarantine_key = zones.quarantine_rows(spec.name, run_id, result.quarantine_path)
            with open(result.quarantine_path, encoding="utf-8") as fh:
                samples = [json.loads(line) for _, line in zip(range(opts.sample_limit), fh, strict=False)]
        inputs = [{"source": landed.source, "sha256": digest, "run_id": run_id, "bytes": report.bytes_read}]
        if result.rows_curated:
            report.version, report.new_version = zones.commit(spec.name, result.parts, inputs, run_id, keys=spec.keys)
        else:
            report.version = zones.latest_version(spec.name)
        # Source state moves forward only once the batch is safely committed.
        if landed.state_key and landed.new_state is not None:
            zones.save_state(spec.name, landed.state_key, landed.new_state)
        if landed.on_commit is not None:
            landed.on_commit()
        logger.info(
            "%s -> %s: read %d, curated %d, quarantined %d, version %s (%s)", landed.source, spec.name,
            report.rows_read, report.rows_curated, report.rows_quarantined, report.version,
            "new" if report.new_version else "unchanged",
        )  # fmt: skip
        return report
    finally:
        report.duration_s = time.perf_counter() - started
        report.finished_at = time.time()
        if opts.report_dir is not None:
            out = Path(opts.report_dir)
            report.html_report = str(write_html(report, out / "validation_report.html", samples))
            report.prometheus_file = str(write_prometheus(report, out / "metrics.prom", opts.pushgateway))
            zones.put_report(spec.name, run_id, "validation_report.html", Path(report.html_report))
        shutil.rmtree(staging, ignore_errors=True)
        landed.close()
