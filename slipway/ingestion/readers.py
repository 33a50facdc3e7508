"""Chunked readers: one file -> batches of raw rows (Arrow tables) with their source positions.

Rows the parser itself rejects (ragged, malformed JSON, badly encoded, oversized fields, a truncated tail) come
back beside each batch with a reason, so the caller can account for every record it read.

CSV/TSV fast path: the byte stream is cut into ~16 MB segments that end on a line break, and pyarrow parses two
segments at a time on worker threads (it releases the GIL), converting numbers and ISO dates as it goes. Every
row keeps its physical line number: blank lines are counted, and a segment whose records and lines disagree
(a quoted value spanning lines) hands the file over. When pyarrow cannot parse a file (invalid UTF-8, a corrupt
stream, a value spanning lines) the caller switches to `iter_batches(..., exact=True)`, a Python `csv` reader
that rejects the offending rows one by one instead of failing the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from slipway.errors import DataFormatError
from slipway.ingestion.formats import FormatGuess, zip_member

RAW_TEXT_LIMIT = 64 * 1024  # longest raw value copied into a quarantine record (the raw zone keeps it all)
_STREAM_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


class FastPathUnavailable(Exception):
    """pyarrow could not parse this file; read it again with the exact (Python) reader."""


@dataclass
class Rejected:
    """A record refused before or during validation."""

    position: int
    reasons: list[str]
    raw: dict[str, Any]


@dataclass
class RawBatch:
    table: pa.Table
    positions: np.ndarray
    rejected: list[Rejected] = field(default_factory=list)


def clip_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """Copy of a raw record with very long values cut, so one 10 MB field does not bloat the quarantine."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and len(value) > RAW_TEXT_LIMIT:
            out[key] = value[:RAW_TEXT_LIMIT]
            out.setdefault("_truncated_fields", []).append(key)
        else:
            out[key] = value
    return out


def open_binary(path: Path, compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "zip":
        zf = zipfile.ZipFile(path)
        return zf.open(zip_member(zf, path))
    return open(path, "rb")


def open_text(path: Path, compression: str | None) -> IO[str]:
    # errors="replace" keeps a badly encoded row readable so it can be quarantined on its own.
    return io.TextIOWrapper(open_binary(path, compression), encoding="utf-8-sig", errors="replace", newline="")


def _header(path: Path, guess: FormatGuess) -> list[str]:
    delimiter = guess.delimiter or ("\t" if guess.format == "tsv" else ",")
    try:
        with open_text(path, guess.compression) as fh:
            header = next(csv.reader(fh, delimiter=delimiter), None)
    except (*_STREAM_ERRORS, csv.Error) as exc:
        raise DataFormatError(f"{path}: cannot read the header row ({exc})") from exc
    if not header or all(not h.strip() for h in header):
        raise DataFormatError(f"{path}: no header row")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataFormatError(f"{path}: duplicate column names in the header: {dupes}")
    if any(not n for n in names):
        raise DataFormatError(f"{path}: empty column name in the header at position {names.index('') + 1}")
    return names


def _string_table(names: list[str], rows: list[list[str | None]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({n: pa.array(list(c), type=pa.string()) for n, c in zip(names, columns, strict=True)})


# ------------------------------------------------------------------------------------------------ CSV / TSV


SEGMENT_BYTES = 16 << 20  # bytes parsed per task; segments end on a line break
PARSE_THREADS = 2


@dataclass
class _Segment:
    data: bytes
    first_line: int  # physical line number of the segment's first byte
    has_header: bool


def _segments(stream: IO[bytes] | pa.NativeFile, size: int) -> Iterator[_Segment]:
    """Cut a byte stream into segments of about `size` bytes that end on a line break."""
    carry = b""
    line = 1
    first = True
    while True:
        block = stream.read(size)
        if not block:
            break
        buf = carry + block if carry else bytes(block)
        cut = buf.rfind(b"\n")
        if cut < 0:  # one line longer than a segment (a huge field): keep reading
            carry = buf
            continue
        data, carry = buf[: cut + 1], buf[cut + 1 :]
        yield _Segment(data, line, first)
        line += data.count(b"\n")
        first = False
    if carry or first:
        yield _Segment(carry, line, first)


def _record_lines(seg: _Segment, records: int) -> np.ndarray | None:
    """Physical line number of every record (header included) in a segment, or None when records and lines
    coincide. pyarrow numbers records without the blank lines it skips; a quoted value that spans lines makes
    the two disagree, and then positions cannot be trusted, so the exact reader takes over."""
    lines = seg.data.count(b"\n") + (0 if seg.data.endswith(b"\n") or not seg.data else 1)
    if lines == records:
        return None
    raw = np.frombuffer(seg.data, dtype=np.uint8)
    breaks = np.flatnonzero(raw == 10)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(raw)]])
    if starts[-1] == len(raw):  # the segment ends with a line break: no line after it
        starts, ends = starts[:-1], ends[:-1]
    width = ends - starts
    carriage = np.zeros(len(starts), dtype=bool)
    one = np.flatnonzero(width == 1)
    carriage[one] = raw[starts[one]] == 13
    nonblank = np.flatnonzero((width > 0) & ~carriage)
    if len(nonblank) != records:
        raise FastPathUnavailable("a quoted value spans lines; positions need the exact reader")
    return nonblank + seg.first_line


_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): .*CSV conversion error")


class _ColumnTypes:
    """Target types the parser converts to while it reads (numbers and ISO dates cost nothing extra there).
    A column with a value that does not convert is read as text from then on, and the validator coerces it
    value by value, so a bad value is quarantined on its own instead of failing the file."""

    def __init__(self, names: list[str], typed: dict[str, pa.DataType]) -> None:
        self.names = names
        self.typed = {n: t for n, t in typed.items() if n in names}
        self.lock = threading.Lock()

    def options(self) -> pacsv.ConvertOptions:
        with self.lock:
            types = {n: self.typed.get(n, pa.string()) for n in self.names}
        return pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=True)

    def demote(self, exc: pa.ArrowInvalid) -> bool:
        """Read the column named in a conversion error as text; False when the error is of another kind."""
        found = _CONVERSION_ERROR.search(str(exc))
        if found is None or int(found.group(1)) >= len(self.names):
            return False
        with self.lock:
            return self.typed.pop(self.names[int(found.group(1))], None) is not None


def _parse_segment(seg: _Segment, names: list[str], parse: dict[str, Any], types: _ColumnTypes) -> RawBatch:
    while True:
        try:
            return _parse_segment_once(seg, names, parse, types.options())
        except pa.ArrowInvalid as exc:
            if not types.demote(exc):
                raise


def _parse_segment_once(
    seg: _Segment, names: list[str], parse: dict[str, Any], convert: pacsv.ConvertOptions
) -> RawBatch:
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((int(row.number) if row.number is not None else -1, row.text))
        return "skip"

    # One serial parse per segment, so the handler knows record numbers; segments run in parallel.
    read = pacsv.ReadOptions(
        use_threads=False, block_size=max(len(seg.data) + 1, 1 << 20), skip_rows=1 if seg.has_header else 0,
        column_names=names,
    )  # fmt: skip
    options = pacsv.ParseOptions(**parse, invalid_row_handler=on_invalid)
    table = pacsv.read_csv(pa.py_buffer(seg.data), read_options=read, parse_options=options, convert_options=convert)
    header = 1 if seg.has_header else 0
    records = table.num_rows + len(invalid) + header
    if any(n < 1 for n, _ in invalid):
        raise FastPathUnavailable("pyarrow did not number an invalid row")
    line_of = _record_lines(seg, records)
    bad = np.fromiter((n for n, _ in invalid), dtype=np.int64, count=len(invalid))
    ordinals = np.arange(header + 1, records + 1, dtype=np.int64)  # 1-based record numbers of data rows
    if len(bad):
        ordinals = ordinals[~np.isin(ordinals, bad)]

    def position(ordinal: np.ndarray) -> np.ndarray:
        return line_of[ordinal - 1] if line_of is not None else ordinal + (seg.first_line - 1)

    rows = position(ordinals)
    where = position(bad) if len(bad) else bad
    rejected = [
        Rejected(int(pos), ["ragged_row"], {"_text": text[:RAW_TEXT_LIMIT]})
        for pos, (_, text) in zip(where.tolist(), invalid, strict=True)
    ]
    return RawBatch(table, rows, rejected)


def _iter_csv_fast(
    path: Path, guess: FormatGuess, chunk_rows: int, column_types: dict[str, pa.DataType] | None = None
) -> Iterator[RawBatch]:
    """pyarrow's parser on line-aligned segments, several at a time, regrouped into chunks of `chunk_rows`.
    Columns in `column_types` are converted while parsing when every value in a segment converts."""
    names = _header(path, guess)
    parse = {"delimiter": guess.delimiter or ","}
    types = _ColumnTypes(names, column_types or {})
    tables: list[pa.Table] = []
    spans: list[np.ndarray] = []
    rejected: list[Rejected] = []
    buffered = 0

    def take(count: int) -> RawBatch:
        nonlocal tables, spans, rejected, buffered
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        positions = np.concatenate(spans) if len(spans) > 1 else spans[0]
        out = RawBatch(table.slice(0, count), positions[:count], rejected)
        rest = table.num_rows - count
        tables = [table.slice(count)] if rest else []
        spans = [positions[count:]] if rest else []
        rejected, buffered = [], rest
        return out

    try:
        # A native input stream avoids a Python file object between pyarrow and the bytes (and decompresses
        # gzip/bz2 without the GIL).
        stream = (
            open_binary(path, "zip") if guess.compression == "zip" else pa.input_stream(str(path), guess.compression)
        )
        with stream as fh, ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="slipway-csv") as pool:
            pending: list[Future[RawBatch]] = []
            emitted = False

            def drain(keep: int) -> Iterator[RawBatch]:
                nonlocal buffered, rejected
                while len(pending) > keep:
                    part = pending.pop(0).result()
                    rejected += part.rejected
                    if tables and part.table.schema != tables[0].schema:
                        yield take(buffered)  # a column changed to text: one chunk holds one schema
                    if part.table.num_rows:
                        tables.append(part.table)
                        spans.append(part.positions)
                        buffered += part.table.num_rows
                    while buffered >= chunk_rows:
                        yield take(chunk_rows)

            for seg in _segments(fh, SEGMENT_BYTES):
                pending.append(pool.submit(_parse_segment, seg, names, parse, types))
                for batch in drain(PARSE_THREADS):  # bounded: memory stays flat
                    emitted = True
                    yield batch
            for batch in drain(0):
                emitted = True
                yield batch
            if buffered:
                yield take(buffered)
                emitted = True
            if rejected or not emitted:
                yield RawBatch(_string_table(names, []), np.empty(0, dtype=np.int64), rejected)
    except (pa.ArrowInvalid, *_STREAM_ERRORS) as exc:
        raise FastPathUnavailable(str(exc)) from exc


def _iter_csv_exact(path: Path, guess: FormatGuess, chunk_rows: int, max_field_bytes: int) -> Iterator[RawBatch]:
    names = _header(path, guess)
    delimiter = guess.delimiter or ("\t" if guess.format == "tsv" else ",")
    csv.field_size_limit(max(max_field_bytes * 64, 1 << 28))
    rows: list[list[str | None]] = []
    positions: list[int] = []
    rejected: list[Rejected] = []

    def flush() -> RawBatch:
        batch = RawBatch(_string_table(names, rows), np.asarray(positions, dtype=np.int64), list(rejected))
        rows.clear()
        positions.clear()
        rejected.clear()
        return batch

    try:
        fh = open_text(path, guess.compression)
    except _STREAM_ERRORS as exc:
        raise DataFormatError(f"{path}: cannot open ({exc})") from exc
    with fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            next(reader)
        except (*_STREAM_ERRORS, csv.Error) as exc:
            raise DataFormatError(f"{path}: cannot read the header row ({exc})") from exc
        line = reader.line_num + 1
        errors = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rejected.append(Rejected(line, ["parse_error"], {"_error": str(exc)}))
                line = reader.line_num + 1
                errors += 1
                if errors > 10_000:
                    raise DataFormatError(f"{path}: more than 10000 unparseable records; not a valid csv") from exc
                continue
            except _STREAM_ERRORS as exc:
                # A truncated or corrupt compressed stream: everything before it is kept, the tail is one record.
                rejected.append(Rejected(line, ["truncated_stream"], {"_error": str(exc)}))
                break
            pos, line = line, reader.line_num + 1
            if not fields or all(not f.strip() for f in fields):
                continue  # blank lines are layout, not records
            raw: dict[str, Any] = dict(zip(names, fields, strict=False))
            if len(fields) != len(names):
                if len(fields) > len(names):
                    raw["_extra"] = fields[len(names) :]
                rejected.append(Rejected(pos, ["ragged_row"], clip_raw(raw)))
                continue
            reasons = [f"encoding:{n}" for n, f in zip(names, fields, strict=True) if "\ufffd" in f]
            reasons += [f"field_too_large:{n}" for n, f in zip(names, fields, strict=True) if len(f) > max_field_bytes]
            if reasons:
                rejected.append(Rejected(pos, reasons, clip_raw(raw)))
                continue
            rows.append(list(fields))
            positions.append(pos)
            if len(rows) >= chunk_rows:
                yield flush()
    yield flush()


# ------------------------------------------------------------------------------------------------ JSON


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _records_to_batch(records: list[tuple[int, dict[str, Any]]], rejected: list[Rejected]) -> RawBatch:
    names: list[str] = []
    seen: set[str] = set()
    for _, rec in records:
        for key in rec:
            if key not in seen:
                seen.add(key)
                names.append(key)
    columns = {n: pa.array([_json_text(rec.get(n)) for _, rec in records], type=pa.string()) for n in names}
    table = pa.table(columns) if names else pa.table({})
    if not names and records:
        table = pa.table({"_empty": pa.nulls(len(records), pa.string())})
    return RawBatch(table, np.asarray([p for p, _ in records], dtype=np.int64), list(rejected))


def _iter_jsonl(path: Path, guess: FormatGuess, chunk_rows: int, max_field_bytes: int) -> Iterator[RawBatch]:
    records: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejected] = []
    try:
        with open_text(path, guess.compression) as fh:
            for n, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                body = text.rstrip("\r\n")
                if "\ufffd" in body:
                    rejected.append(Rejected(n, ["encoding"], {"_text": body[:RAW_TEXT_LIMIT]}))
                    continue
                if len(body) > max_field_bytes:
                    rejected.append(Rejected(n, ["field_too_large"], {"_text": body[:RAW_TEXT_LIMIT]}))
                    continue
                try:
                    obj = json.loads(body)
                except json.JSONDecodeError:
                    rejected.append(Rejected(n, ["malformed_json"], {"_text": body[:RAW_TEXT_LIMIT]}))
                    continue
                if not isinstance(obj, dict):
                    rejected.append(Rejected(n, ["malformed_json"], {"_value": obj}))
                    continue
                records.append((n, obj))
                if len(records) >= chunk_rows:
                    yield _records_to_batch(records, rejected)
                    records, rejected = [], []
    except _STREAM_ERRORS as exc:
        rejected.append(Rejected(-1, ["truncated_stream"], {"_error": str(exc)}))
    yield _records_to_batch(records, rejected)


def _iter_json(path: Path, guess: FormatGuess, chunk_rows: int, max_field_bytes: int) -> Iterator[RawBatch]:
    try:
        with open_text(path, guess.compression) as fh:
            text = fh.read()
    except _STREAM_ERRORS as exc:
        raise DataFormatError(f"{path}: cannot read the JSON stream ({exc})") from exc
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    records: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejected] = []
    if text[start : start + 1] == "{":
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: invalid JSON object ({exc})") from exc
        items = next((obj[k] for k in ("records", "data", "items", "rows") if isinstance(obj.get(k), list)), [obj])
        for n, item in enumerate(items, start=1):
            if isinstance(item, dict):
                records.append((n, item))
            else:
                rejected.append(Rejected(n, ["malformed_json"], {"_value": item}))
        yield _records_to_batch(records, rejected)
        return
    # A top-level array is decoded element by element, so a syntax error midway keeps every record before it.
    pos, n = start + 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            rejected.append(Rejected(n + 1, ["malformed_json"], {"_error": "array is not closed (truncated file?)"}))
            break
        if text[pos] == "]":
            break
        n += 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            tail = text[pos : pos + 1000]
            rejected.append(Rejected(n, ["malformed_json"], {"_error": str(exc), "_text": tail}))
            break
        if isinstance(item, dict):
            records.append((n, item))
        else:
            rejected.append(Rejected(n, ["malformed_json"], {"_value": item}))
        if len(records) >= chunk_rows:
            yield _records_to_batch(records, rejected)
            records, rejected = [], []
    yield _records_to_batch(records, rejected)


# ------------------------------------------------------------------------------------------------ Parquet


def _iter_parquet(path: Path, guess: FormatGuess, chunk_rows: int, max_field_bytes: int) -> Iterator[RawBatch]:
    try:
        source: Any = path
        if guess.compression:
            with open_binary(path, guess.compression) as fh:
                source = pa.BufferReader(fh.read())
        pf = pq.ParquetFile(source)
        offset = 0
        emitted = False
        for batch in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            positions = np.arange(offset + 1, offset + table.num_rows + 1, dtype=np.int64)
            offset += table.num_rows
            emitted = True
            yield RawBatch(table, positions)
        if not emitted:
            yield RawBatch(pf.schema_arrow.empty_table(), np.empty(0, dtype=np.int64))
    except (pa.ArrowException, *_STREAM_ERRORS) as exc:
        raise DataFormatError(f"{path}: unreadable Parquet ({exc})") from exc


def prefetch(batches: Iterator[RawBatch], depth: int = 1) -> Iterator[RawBatch]:
    """Run a batch iterator on a background thread so parsing the next chunk overlaps validating this one
    (pyarrow's parser releases the GIL). Exceptions are re-raised in the consumer."""
    import queue
    import threading

    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        box.put(("batch", batch), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box.put(("error", exc))

    thread = threading.Thread(target=produce, name="slipway-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def iter_batches(
    path: str | Path,
    guess: FormatGuess,
    *,
    chunk_rows: int,
    max_field_bytes: int,
    exact: bool = False,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[RawBatch]:
    """Batches of at most `chunk_rows` rows; raises FastPathUnavailable when the csv fast path gives up.
    `column_types` lets the csv fast path convert columns while it parses (text otherwise)."""
    path = Path(path)
    if guess.format in ("csv", "tsv"):
        if exact:
            return _iter_csv_exact(path, guess, chunk_rows, max_field_bytes)
        return _iter_csv_fast(path, guess, chunk_rows, column_types)
    readers = {"jsonl": _iter_jsonl, "json": _iter_json, "parquet": _iter_parquet}
    if guess.format not in readers:
        raise DataFormatError(f"{path}: no reader for format {guess.format!r}")
    return readers[guess.format](path, guess, chunk_rows, max_field_bytes)
