"""Raw file -> curated Parquet + quarantine JSONL, with row-level validation and reconciliation.

Every row read ends up in exactly one place: the curated Parquet file or the quarantine file, with the
reasons it was rejected. A run that loses or double-counts a row raises instead of writing quietly.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from slipway.data.churn_schema import CATEGORICAL_FEATURES, ID_COLUMN, NUMERIC_FEATURES, RAW_COLUMNS, TARGET_COLUMN
from slipway.errors import DataFormatError, DataValidationError, ReconciliationError

logger = logging.getLogger(__name__)

SUPPORTED_DATASETS = ("churn",)
_SNIFF_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
# Row index of the frame handed to pandera -> source line; kept in a column so it survives every step.
_LINE = "__source_line__"


@dataclass(frozen=True)
class FormatGuess:
    """What a file looks like from its bytes: format, how sure we are (0..1) and any outer compression."""

    format: str  # csv | tsv | json | jsonl | parquet
    confidence: float
    compression: str | None = None  # gzip | zip | None
    delimiter: str | None = None  # for csv/tsv only


@dataclass
class IngestResult:
    """Counts and output paths of one ingestion run."""

    rows_read: int
    rows_curated: int
    rows_quarantined: int
    format: str
    curated_path: Path
    quarantine_path: Path
    compression: str | None = None
    reason_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_curated": self.rows_curated,
            "rows_quarantined": self.rows_quarantined,
            "format": self.format,
            "compression": self.compression,
            "curated_path": str(self.curated_path),
            "quarantine_path": str(self.quarantine_path),
            "reason_counts": dict(self.reason_counts),
        }


# --------------------------------------------------------------------------- format detection


def _read_head(path: Path, compression: str | None) -> bytes:
    """First bytes of the (decompressed) payload."""
    if compression == "gzip":
        with gzip.open(path, "rb") as fh:
            try:
                return fh.read(_SNIFF_BYTES)
            except (OSError, EOFError) as exc:
                # A truncated gzip still yields what it has in most cases; anything else is corrupt.
                raise DataFormatError(f"{path}: gzip stream is corrupt ({exc})") from exc
    if compression == "zip":
        with zipfile.ZipFile(path) as zf, zf.open(_zip_member(zf, path)) as fh:
            return fh.read(_SNIFF_BYTES)
    with open(path, "rb") as fh:
        return fh.read(_SNIFF_BYTES)


def _zip_member(zf: zipfile.ZipFile, path: Path) -> str:
    members = [i.filename for i in zf.infolist() if not i.is_dir()]
    if len(members) != 1:
        raise DataFormatError(f"{path}: zip archives must hold exactly one file, found {len(members)}")
    return members[0]


def _looks_binary(text: str) -> bool:
    # Control characters other than whitespace are rare in real text files and common in junk.
    sample = text[:4096]
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\f")
    return bad > max(1, len(sample) // 100)


def _sniff_payload(head: bytes, path: Path, compression: str | None) -> FormatGuess:
    if head.startswith(_PARQUET_MAGIC):
        return FormatGuess("parquet", 1.0, compression)
    if not head.strip():
        raise DataFormatError(f"{path}: file is empty (or only whitespace); nothing to ingest")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # The sniff window can cut a multi-byte character in half; only the tail may fail for text files.
        if exc.start < len(head) - 4:
            raise DataFormatError(
                f"{path}: content is binary or not UTF-8 text; supported formats are csv, tsv, json, jsonl, parquet "
                "(optionally gzip or zip compressed)"
            ) from exc
        text = head[: exc.start].decode("utf-8-sig")
    if "\x00" in text or _looks_binary(text):
        raise DataFormatError(
            f"{path}: content looks binary; supported formats are csv, tsv, json, jsonl, parquet "
            "(optionally gzip or zip compressed)"
        )
    stripped = text.lstrip()
    if stripped.startswith("["):
        return FormatGuess("json", 0.9, compression)
    if stripped.startswith("{"):
        first_line = stripped.splitlines()[0]
        try:
            json.loads(first_line)
            return FormatGuess("jsonl", 0.95, compression)
        except json.JSONDecodeError:
            # A pretty-printed single object spans lines; treat it as JSON, less sure.
            return FormatGuess("json", 0.6, compression)
    # Drop the possibly cut last line so the sniffer sees whole records only.
    lines = text.splitlines()
    sample = "\n".join(lines[:-1] if len(lines) > 1 and len(head) == _SNIFF_BYTES else lines)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error as exc:
        raise DataFormatError(
            f"{path}: could not recognise the format (no consistent csv/tsv delimiter, not JSON or Parquet)"
        ) from exc
    delimiter = dialect.delimiter
    fmt = "tsv" if delimiter == "\t" else "csv"
    counts = {len(r) for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r}
    confidence = 0.95 if len(counts) == 1 else 0.7
    return FormatGuess(fmt, confidence, compression, delimiter)


def detect_format(path: str | Path) -> FormatGuess:
    """Guess a file's format from its content (magic bytes, JSON shape, csv delimiter), never its extension."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if not magic:
        raise DataFormatError(f"{path}: file is empty; nothing to ingest")
    if magic.startswith(_GZIP_MAGIC):
        return _sniff_payload(_read_head(path, "gzip"), path, "gzip")
    if magic.startswith(_ZIP_MAGIC):
        try:
            return _sniff_payload(_read_head(path, "zip"), path, "zip")
        except zipfile.BadZipFile as exc:
            raise DataFormatError(f"{path}: zip archive is corrupt ({exc})") from exc
    return _sniff_payload(_read_head(path, None), path, None)


# --------------------------------------------------------------------------- reading


@dataclass
class _Rejected:
    source_line: int
    reasons: list[str]
    raw: dict[str, Any]


def _open_text(path: Path, compression: str | None) -> IO[str]:
    # newline="" lets the csv module handle quoted newlines itself.
    if compression == "gzip":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    if compression == "zip":
        zf = zipfile.ZipFile(path)
        return io.TextIOWrapper(zf.open(_zip_member(zf, path)), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _open_binary(path: Path, compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return io.BytesIO(gzip.open(path, "rb").read())
    if compression == "zip":
        with zipfile.ZipFile(path) as zf:
            return io.BytesIO(zf.read(_zip_member(zf, path)))
    return open(path, "rb")


def _as_str(value: Any) -> str:
    """Render a parsed JSON/Parquet value the way it would appear in the CSV."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _read_csv(path: Path, guess: FormatGuess) -> tuple[list[dict[str, str]], list[int], list[_Rejected]]:
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    rejected: list[_Rejected] = []
    with _open_text(path, guess.compression) as fh:
        reader = csv.reader(fh, delimiter=guess.delimiter or ("\t" if guess.format == "tsv" else ","))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration as exc:
            raise DataFormatError(f"{path}: no header row") from exc
        _check_header(header, path)
        start = reader.line_num + 1
        try:
            for fields in reader:
                line, start = start, reader.line_num + 1
                if not fields or all(not f.strip() for f in fields):
                    continue  # blank lines are layout, not records
                if len(fields) != len(header):
                    raw: dict[str, Any] = dict(zip(header, fields, strict=False))
                    if len(fields) > len(header):
                        raw["_extra"] = fields[len(header) :]
                    rejected.append(_Rejected(line, ["ragged_row"], raw))
                    continue
                rows.append(dict(zip(header, fields, strict=True)))
                lines.append(line)
        except csv.Error as exc:
            raise DataFormatError(f"{path}: csv parse error near line {reader.line_num}: {exc}") from exc
    return rows, lines, rejected


def _read_jsonl(path: Path, guess: FormatGuess) -> tuple[list[dict[str, str]], list[int], list[_Rejected]]:
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    rejected: list[_Rejected] = []
    with _open_text(path, guess.compression) as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                rejected.append(_Rejected(n, ["malformed_json"], {"_text": text.rstrip("\n")}))
                continue
            if not isinstance(obj, dict):
                rejected.append(_Rejected(n, ["malformed_json"], {"_value": obj}))
                continue
            rows.append({k: _as_str(v) for k, v in obj.items()})
            lines.append(n)
    return rows, lines, rejected


def _read_json(path: Path, guess: FormatGuess) -> tuple[list[dict[str, str]], list[int], list[_Rejected]]:
    with _open_text(path, guess.compression) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: invalid JSON ({exc})") from exc
    if isinstance(data, dict):
        data = data.get("records", data.get("data", [data]))
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: JSON must be an array of objects")
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    rejected: list[_Rejected] = []
    # "source_line" for a JSON array is the 1-based record position; there is no meaningful line.
    for n, obj in enumerate(data, start=1):
        if isinstance(obj, dict):
            rows.append({k: _as_str(v) for k, v in obj.items()})
            lines.append(n)
        else:
            rejected.append(_Rejected(n, ["malformed_json"], {"_value": obj}))
    return rows, lines, rejected


def _read_parquet(path: Path, guess: FormatGuess) -> tuple[list[dict[str, str]], list[int], list[_Rejected]]:
    try:
        with _open_binary(path, guess.compression) as fh:
            frame = pd.read_parquet(fh)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataFormatError(f"{path}: unreadable Parquet ({exc})") from exc
    rows = [{str(k): _as_str(v) for k, v in rec.items()} for rec in frame.to_dict(orient="records")]
    return rows, list(range(1, len(rows) + 1)), []


_READERS = {"csv": _read_csv, "tsv": _read_csv, "jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet}


def _check_header(columns: list[str], path: Path) -> None:
    missing = [c for c in RAW_COLUMNS if c not in columns]
    if missing:
        raise DataValidationError(f"{path}: required columns missing from the header: {missing}")


# --------------------------------------------------------------------------- validation


def churn_pandera_schema() -> pa.DataFrameSchema:
    """Row-level contract of the curated churn table, built from `churn_schema`.

    Numeric columns are validated as float64 (integers carry an `integer` check) because missing values
    must be representable before they are reported; the curated file casts them to int64 afterwards.
    """
    columns: dict[str, pa.Column] = {
        ID_COLUMN: pa.Column(str, nullable=False, unique=True, report_duplicates="exclude_first"),
        TARGET_COLUMN: pa.Column(str, checks=pa.Check.isin(["No", "Yes"]), nullable=False),
    }
    for name, allowed in CATEGORICAL_FEATURES.items():
        columns[name] = pa.Column(str, checks=pa.Check.isin(allowed), nullable=False)
    for name, (kind, lo, hi) in NUMERIC_FEATURES.items():
        checks = [pa.Check.in_range(lo, hi)]
        if kind == "integer":
            checks.append(pa.Check(lambda s: s % 1 == 0, element_wise=False, name="integer"))
        columns[name] = pa.Column(float, checks=checks, nullable=False)
    return pa.DataFrameSchema(columns, strict=False, name="churn")


def _reason(check: str, column: str) -> str:
    if check == "not_nullable":
        return f"missing:{column}"
    if check == "field_uniqueness":
        return f"duplicate:{column}"
    if check.startswith("isin"):
        return f"category:{column}"
    if check.startswith("in_range"):
        return f"range:{column}"
    if check == "integer" or check.startswith(("dtype", "coerce_dtype")):
        return f"type:{column}"
    return f"{check}:{column}"


def _cleanse(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Strip strings, map blanks to missing and coerce numerics; return the typed frame and type errors."""
    frame = raw[RAW_COLUMNS].apply(lambda s: s.str.strip()).replace("", np.nan)
    type_errors: dict[int, list[str]] = {}
    for name in NUMERIC_FEATURES:
        parsed = pd.to_numeric(frame[name], errors="coerce")
        # Present but unparseable is a type error; absent is left for pandera to call "missing".
        for idx in frame.index[frame[name].notna() & parsed.isna()]:
            type_errors.setdefault(int(idx), []).append(f"type:{name}")
        frame[name] = parsed.astype("float64")
    # The source file leaves TotalCharges blank for customers in their first month: nothing billed yet.
    new_customer = (frame["tenure"] == 0) & raw["TotalCharges"].str.strip().eq("")
    frame.loc[new_customer, "TotalCharges"] = 0.0
    return frame, type_errors


def _validate(frame: pd.DataFrame, type_errors: dict[int, list[str]]) -> dict[int, list[str]]:
    """Row index -> reason codes, for every row that fails the schema."""
    reasons: dict[int, list[str]] = {i: list(r) for i, r in type_errors.items()}
    try:
        churn_pandera_schema().validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].isna().any():
            # Failures without a row index are table-level (e.g. a column of the wrong kind): no row to blame.
            table_level = cases[cases["index"].isna()][["column", "check", "failure_case"]].to_dict("records")
            raise DataValidationError(f"table-level validation failures: {table_level}") from exc
        for rec in cases.to_dict("records"):
            code = _reason(str(rec["check"]), str(rec["column"]))
            row = reasons.setdefault(int(rec["index"]), [])
            if code not in row:
                row.append(code)
    for row in reasons.values():
        # An unparseable value became NaN, so pandera also calls it missing; the type error is the truth.
        for code in [c for c in row if c.startswith("type:")]:
            missing = "missing:" + code.split(":", 1)[1]
            if missing in row:
                row.remove(missing)
    return reasons


def _curate(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name, (kind, _, _) in NUMERIC_FEATURES.items():
        out[name] = out[name].astype("int64" if kind == "integer" else "float64")
    for name in [*CATEGORICAL_FEATURES, ID_COLUMN, TARGET_COLUMN]:
        out[name] = out[name].astype(str)
    return out[RAW_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- entry point


def _iter_quarantine(rejected: list[_Rejected]) -> Iterator[str]:
    for rej in sorted(rejected, key=lambda r: r.source_line):
        yield json.dumps({"source_line": rej.source_line, "reasons": rej.reasons, "raw": rej.raw}, default=str)


def ingest_file(
    path: str | Path, dataset: str = "churn", out_dir: str | Path = Path(".slipway") / "ingest"
) -> IngestResult:
    """Ingest one raw file into `out_dir`/curated.parquet and `out_dir`/quarantine.jsonl."""
    if dataset not in SUPPORTED_DATASETS:
        raise DataValidationError(f"unsupported dataset {dataset!r}; supported: {list(SUPPORTED_DATASETS)}")
    path = Path(path)
    out = Path(out_dir)
    guess = detect_format(path)
    logger.info("ingesting %s as %s (compression=%s, confidence=%.2f)", path, guess.format, guess.compression,
                guess.confidence)  # fmt: skip
    rows, lines, rejected = _READERS[guess.format](path, guess)
    rows_read = len(rows) + len(rejected)

    raw = pd.DataFrame(rows, dtype=object)
    if rows:
        _check_header(list(raw.columns), path)
    else:
        raw = pd.DataFrame(columns=RAW_COLUMNS, dtype=object)
    # Missing keys in JSON records become NaN; make them blank strings like an empty CSV field.
    raw = raw.reindex(columns=RAW_COLUMNS).fillna("").astype(str)
    frame, type_errors = _cleanse(raw)
    reasons = _validate(frame, type_errors) if rows else {}

    for idx, codes in reasons.items():
        rec = {k: v for k, v in rows[idx].items()}
        rejected.append(_Rejected(lines[idx], codes, rec))
    good = frame.drop(index=list(reasons))
    curated = _curate(good)

    if rows_read != len(curated) + len(rejected):
        raise ReconciliationError(
            f"{path}: read {rows_read} rows but curated {len(curated)} + quarantined {len(rejected)}"
        )

    out.mkdir(parents=True, exist_ok=True)
    curated_path = out / "curated.parquet"
    quarantine_path = out / "quarantine.jsonl"
    curated.to_parquet(curated_path, index=False)
    with open(quarantine_path, "w", encoding="utf-8") as fh:
        for line in _iter_quarantine(rejected):
            fh.write(line + "\n")

    counts: dict[str, int] = {}
    for rej in rejected:
        for code in rej.reasons:
            counts[code] = counts.get(code, 0) + 1
    if rejected:
        logger.warning("%s: quarantined %d of %d rows: %s", path, len(rejected), rows_read, counts)
    return IngestResult(
        rows_read=rows_read,
        rows_curated=len(curated),
        rows_quarantined=len(rejected),
        format=guess.format,
        curated_path=curated_path,
        quarantine_path=quarantine_path,
        compression=guess.compression,
        reason_counts=dict(sorted(counts.items())),
    )
