"""Raw file -> curated Parquet + quarantine JSONL in one folder: the single-file form of `slipway.ingestion`.

Every row read ends up in exactly one place: the curated Parquet file or the quarantine file, with the
reasons it was rejected. A run that loses or double-counts a row raises instead of writing quietly.
For connectors, versioned zones, reports and metrics use `slipway.ingestion`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandera.pandas as pa
import pyarrow as pyarrow_mod
import pyarrow.parquet as pq

from slipway.ingestion.engine import IngestOptions, process_file
from slipway.ingestion.formats import FormatGuess, detect_format
from slipway.ingestion.quality import POSITION_COLUMN
from slipway.ingestion.spec import churn_spec, load_spec

__all__ = ["FormatGuess", "IngestResult", "churn_pandera_schema", "detect_format", "ingest_file"]

logger = logging.getLogger(__name__)


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


def churn_pandera_schema() -> pa.DataFrameSchema:
    """Row-level contract of the curated churn table (see `slipway.ingestion.spec.churn_spec`)."""
    return churn_spec().to_pandera()


def ingest_file(
    path: str | Path, dataset: str = "churn", out_dir: str | Path = Path(".slipway") / "ingest"
) -> IngestResult:
    """Ingest one raw file into `out_dir`/curated.parquet and `out_dir`/quarantine.jsonl."""
    spec = load_spec(dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curated_path = out / "curated.parquet"
    quarantine_path = out / "quarantine.jsonl"
    with tempfile.TemporaryDirectory(prefix="slipway-ingest-") as staging:
        result = process_file(path, spec, IngestOptions(), Path(staging))
        tables = [pq.read_table(part[0]) for part in result.parts]
        if tables:
            curated = pyarrow_mod.concat_tables(tables).sort_by(POSITION_COLUMN).select(spec.column_names)
        else:
            curated = pyarrow_mod.schema([pyarrow_mod.field(c.name, c.arrow_type) for c in spec.columns]).empty_table()
        pq.write_table(curated, curated_path)
        with open(result.quarantine_path, encoding="utf-8") as fh:
            entries = [json.loads(line) for line in fh]
    entries.sort(key=lambda e: e["source_line"])
    counts: Counter[str] = Counter()
    with open(quarantine_path, "w", encoding="utf-8") as fh:
        for e in entries:
            counts.update(e["reasons"])
            fh.write(json.dumps({"source_line": e["source_line"], "reasons": e["reasons"], "raw": e["raw"]}) + "\n")
    if entries:
        logger.warning("%s: quarantined %d of %d rows: %s", path, len(entries), result.rows_read, dict(counts))
    return IngestResult(
        rows_read=result.rows_read,
        rows_curated=result.rows_curated,
        rows_quarantined=result.rows_quarantined,
        format=result.guess.format,
        curated_path=curated_path,
        quarantine_path=quarantine_path,
        compression=result.guess.compression,
        reason_counts=dict(sorted(counts.items())),
    )
