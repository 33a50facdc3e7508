"""Read the serving payload logs of a time window into one frame (features flattened, delayed labels joined).

Layout under a root (a local folder, or the same keys on an artifact store):
`payload-logs/<model>/dt=YYYY-MM-DD/hour=HH/<writer-id>.jsonl`, one JSON object per scored row, and
`payload-logs/<model>/_labels/<anything>.jsonl` with `{"row_id", "label", "ts"}` for labels that arrive later.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from slipway.errors import DataValidationError
from slipway.storage import ArtifactStore

logger = logging.getLogger(__name__)

PAYLOAD_PREFIX = "payload-logs"
LABELS_DIR = "_labels"
META_COLUMNS = ["ts", "request_id", "row_id", "model", "version", "variant", "prediction", "label"]
_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")

Root = str | Path | ArtifactStore


@dataclass
class ReadStats:
    """Accounting of one read: every line is either a row in the frame or a rejection with its reason."""

    files: int = 0
    lines: int = 0
    rows: int = 0
    outside_window: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    labels_joined: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "rows": self.rows,
            "outside_window": self.outside_window,
            "rejected": dict(self.rejected),
            "labels_joined": self.labels_joined,
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hours(start: datetime, end: datetime) -> set[str]:
    """Partition folders `dt=.../hour=.../` that can hold rows of [start, end)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out: set[str] = set()
    while hour < end:
        out.add(f"dt={hour:%Y-%m-%d}/hour={hour:%H}/")
        hour += timedelta(hours=1)
    return out


def _list_keys(root: Root, prefix: str) -> list[str]:
    if isinstance(root, (str, Path)):
        base = Path(root) / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(root)) for p in base.rglob("*.jsonl") if p.is_file())
    return [k for k in root.list(prefix) if k.endswith(".jsonl")]


def _read_lines(root: Root, key: str) -> Iterator[str]:
    if isinstance(root, (str, Path)):
        with (Path(root) / key).open(encoding="utf-8", errors="replace") as fh:
            yield from fh
    else:
        yield from root.get_bytes(key).decode("utf-8", errors="replace").splitlines()


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def read_labels(root: Root, model: str) -> dict[str, Any]:
    """`row_id -> label` from every `_labels/*.jsonl` file; the latest line wins for a repeated row id."""
    labels: dict[str, Any] = {}
    for key in _list_keys(root, f"{PAYLOAD_PREFIX}/{model}/{LABELS_DIR}"):
        for line in _read_lines(root, key):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                labels[str(obj["row_id"])] = obj["label"]
            except (ValueError, KeyError, TypeError):
                logger.warning("skipping malformed label line in %s", key)
    return labels


def _rows(
    root: Root, keys: Iterable[str], start: datetime, end: datetime, stats: ReadStats
) -> Iterator[dict[str, Any]]:
    for key in keys:
        stats.files += 1
        for line in _read_lines(root, key):
            if not line.strip():
                continue
            stats.lines += 1
            try:
                obj = json.loads(line)
            except ValueError:
                stats.rejected["invalid JSON"] += 1
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("features"), dict):
                stats.rejected["no features object"] += 1
                continue
            ts = _parse_ts(obj.get("ts"))
            if ts is None:
                stats.rejected["missing or invalid ts"] += 1
                continue
            prediction = obj.get("prediction")
            if isinstance(prediction, bool) or not isinstance(prediction, (int, float)):
                stats.rejected["missing or non-numeric prediction"] += 1
                continue
            if not start <= ts < end:
                stats.outside_window += 1
                continue
            row = dict(obj["features"])
            row.update(
                ts=ts,
                request_id=obj.get("request_id"),
                row_id=str(obj.get("row_id", "")),
                model=obj.get("model"),
                version=obj.get("version"),
                variant=obj.get("variant"),
                prediction=float(prediction),
                label=obj.get("label"),
            )
            stats.rows += 1
            yield row


def read_payload_logs(
    root: Root,
    model: str,
    start: datetime,
    end: datetime,
    *,
    stats: ReadStats | None = None,
) -> pd.DataFrame:
    """Rows scored in [start, end) by `model`: feature columns, then ts, request_id, row_id, version, variant,
    prediction and label (joined from `_labels` when a label arrived; else the logged value, usually null).

    `root` is a local folder or an `ArtifactStore`. Malformed lines are skipped and counted in `stats.rejected`
    by reason; pass a `ReadStats` to get the accounting.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise DataValidationError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
    stats = stats if stats is not None else ReadStats()
    base = f"{PAYLOAD_PREFIX}/{model}"
    wanted = _hours(start, end)
    keys = [k for k in _list_keys(root, base) if (m := _PARTITION.search(k)) and m.group(0) in wanted]
    frame = pd.DataFrame(list(_rows(root, keys, start, end, stats)))
    if frame.empty:
        frame = pd.DataFrame(columns=META_COLUMNS)
    labels = read_labels(root, model)
    if labels:
        joined = frame["row_id"].map(labels)
        stats.labels_joined = int(joined.notna().sum())
        frame["label"] = joined.where(joined.notna(), frame["label"])
    features = [c for c in frame.columns if c not in META_COLUMNS]
    frame = frame[features + [c for c in META_COLUMNS if c != "model"]]
    if stats.rejected:
        logger.warning(
            "payload logs of %s: %d line(s) rejected: %s", model, sum(stats.rejected.values()), stats.rejected
        )
    logger.info("read %d payload row(s) of %s from %d file(s) for [%s, %s)", stats.rows, model, stats.files, start, end)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True) if len(frame) else frame
