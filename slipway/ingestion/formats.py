"""Format detection from content: magic bytes, then a compression sniffer, then a JSON/delimiter sniffer.

The extension of a file is never trusted; a file whose bytes match no supported format is refused with a
message that names the supported ones.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from slipway.errors import DataFormatError

SUPPORTED = "csv, tsv, json, jsonl, parquet (optionally gzip or zip compressed)"
SNIFF_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
# Formats we recognise only to refuse them with a precise message.
_KNOWN_UNSUPPORTED = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"%PDF": "pdf",
    b"\x89PNG": "png",
    b"\xff\xd8\xff": "jpeg",
    b"SQLite format 3": "sqlite",
}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class FormatGuess:
    """What a file looks like from its bytes: format, how sure we are (0..1) and any outer compression."""

    format: str  # csv | tsv | json | jsonl | parquet
    confidence: float
    compression: str | None = None  # gzip | zip | None
    delimiter: str | None = None  # for csv/tsv only


def zip_member(zf: zipfile.ZipFile, path: Path | str) -> str:
    """The single data file inside a zip archive."""
    members = [i.filename for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if len(members) != 1:
        raise DataFormatError(f"{path}: zip archives must hold exactly one file, found {len(members)}")
    return members[0]


def _read_head(path: Path, compression: str | None) -> bytes:
    """First bytes of the (decompressed) payload."""
    try:
        if compression == "gzip":
            # A streaming decompressor returns what a truncated stream holds instead of raising at its end.
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = b""
            with open(path, "rb") as fh:
                while len(out) < SNIFF_BYTES and (chunk := fh.read(16384)):
                    out += inflater.decompress(chunk, SNIFF_BYTES - len(out))
            return out
        if compression == "zip":
            with zipfile.ZipFile(path) as zf, zf.open(zip_member(zf, path)) as fh:
                return fh.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: {compression} stream is corrupt ({exc}); re-export the file") from exc
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def _looks_binary(text: str) -> bool:
    # Control characters other than whitespace are rare in real text files and common in junk.
    sample = text[:4096]
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\f")
    return bad > max(1, len(sample) // 100)


def decode_head(head: bytes, path: Path | str) -> str:
    """Decode the sniff window as UTF-8 (BOM allowed); refuse other encodings with a clear message."""
    if head.startswith(_UTF16_BOMS):
        raise DataFormatError(f"{path}: file is UTF-16 encoded; re-save it as UTF-8")
    text = head.decode("utf-8-sig", errors="replace")
    # The sniff window can cut a multi-byte character in half; a few bad bytes elsewhere are rows to quarantine,
    # many mean the file is not UTF-8 text at all.
    bad = text[:-2].count("\ufffd")
    if bad > max(2, len(text) // 100):
        raise DataFormatError(
            f"{path}: content is binary or not UTF-8 text ({bad} undecodable bytes in the first {len(head)}); "
            f"supported formats are {SUPPORTED}; re-encode text files as UTF-8"
        )
    return text


def sniff_payload(head: bytes, path: Path | str, compression: str | None = None) -> FormatGuess:
    """Guess the format of decompressed bytes."""
    if head.startswith(_PARQUET_MAGIC):
        return FormatGuess("parquet", 1.0, compression)
    for magic, name in _KNOWN_UNSUPPORTED.items():
        if head.startswith(magic):
            raise DataFormatError(f"{path}: {name} content is not supported; supported formats are {SUPPORTED}")
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise DataFormatError(f"{path}: file is empty (or only whitespace); nothing to ingest")
    text = decode_head(head, path)
    if text.count("\x00") > 2 or _looks_binary(text):
        raise DataFormatError(f"{path}: content looks binary; supported formats are {SUPPORTED}")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return FormatGuess("json", 0.9, compression)
    if stripped.startswith("{"):
        first_line = stripped.splitlines()[0]
        try:
            json.loads(first_line)
            return FormatGuess("jsonl", 0.95, compression)
        except json.JSONDecodeError:
            # A pretty-printed object spans lines; a JSONL file whose first line is broken looks the same.
            second = [ln for ln in stripped.splitlines()[1:3] if ln.strip()]
            if second and second[0].lstrip().startswith("{"):
                return FormatGuess("jsonl", 0.6, compression)
            return FormatGuess("json", 0.6, compression)
    # Drop the possibly cut last line so the sniffer sees whole records only.
    lines = text.splitlines()
    sample = "\n".join(lines[:-1] if len(lines) > 1 and len(head) == SNIFF_BYTES else lines)
    if len(lines) == 1 or len(sample) > 16 * 1024:
        # One line (header only) or very long lines: count candidate delimiters in the first line instead.
        first = lines[0]
        counts = {d: first.count(d) for d in ",\t;|"}
        best = max(counts, key=lambda d: counts[d])
        if counts[best] == 0:
            raise DataFormatError(f"{path}: could not recognise the format (one column, no delimiter); {SUPPORTED}")
        return FormatGuess("tsv" if best == "\t" else "csv", 0.6, compression, best)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error as exc:
        raise DataFormatError(
            f"{path}: could not recognise the format (no consistent csv/tsv delimiter, not JSON or Parquet)"
        ) from exc
    delimiter = dialect.delimiter
    fmt = "tsv" if delimiter == "\t" else "csv"
    widths = {len(r) for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r}
    confidence = 0.95 if len(widths) == 1 else 0.7
    return FormatGuess(fmt, confidence, compression, delimiter)


def detect_format(path: str | Path) -> FormatGuess:
    """Guess a file's format from its content (magic bytes, JSON shape, csv delimiter), never its extension."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if not magic:
        raise DataFormatError(f"{path}: file is empty; nothing to ingest")
    if magic.startswith(_GZIP_MAGIC):
        return sniff_payload(_read_head(path, "gzip"), path, "gzip")
    if magic.startswith(_ZIP_MAGIC):
        return sniff_payload(_read_head(path, "zip"), path, "zip")
    return sniff_payload(_read_head(path, None), path, None)
