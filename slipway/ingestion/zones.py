"""Raw / curated / quarantine zones on an artifact store, with immutable, content-addressed dataset versions.

Layout under the store (local folder or S3 bucket):

    raw/<dataset>/<yyyy-mm-dd>/<sha256[:16]>/<file>            landed bytes, exactly as received
    curated/<dataset>/data/date=<yyyy-mm-dd>/part-<sha256[:32]>.parquet
    curated/<dataset>/_versions/v<000001>.json                  manifest: files, stats, inputs, parent
    quarantine/<dataset>/<run_id>/rows.jsonl                     rejected rows with reasons and positions
    quarantine/<dataset>/<run_id>/files/<file> + .reason.json    unreadable files, whole
    state/<dataset>/<name>.json                                  connector state (watermarks, offsets)

A version's manifest lists every file of the dataset at that version, so reading version N (time travel)
needs only that manifest; a file never changes once written because its name is its content hash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from slipway.errors import ArtifactNotFoundError, SlipwayError
from slipway.storage import ArtifactStore, LocalArtifactStore, S3ArtifactStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    dataset: str
    version: int
    created_at: str
    rows: int
    files: int
    partitions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _stats(path: Path) -> dict[str, dict[str, Any]]:
    """Per-column min/max/null count from the Parquet footer (what readers use to prune files)."""
    meta = pq.ParquetFile(path).metadata
    out: dict[str, dict[str, Any]] = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            entry = out.setdefault(name, {"min": None, "max": None, "nulls": 0})
            st = chunk.statistics
            if st is None or not st.has_min_max:
                continue
            lo, hi = st.min, st.max
            if isinstance(lo, bytes):
                continue
            lo, hi = (str(lo), str(hi)) if isinstance(lo, (dt.date, dt.datetime)) else (lo, hi)
            entry["min"] = lo if entry["min"] is None else min(entry["min"], lo)
            entry["max"] = hi if entry["max"] is None else max(entry["max"], hi)
            entry["nulls"] += int(st.null_count or 0)
    return out


class DatasetZones:
    """The zones and versions of every dataset in one artifact store."""

    def __init__(self, store: ArtifactStore, *, server_side_encryption: bool = False) -> None:
        self.store = store
        self.sse = server_side_encryption

    # ------------------------------------------------------------------------------------------ writes

    def _put_file(self, key: str, path: Path) -> str:
        if self.sse and isinstance(self.store, S3ArtifactStore):
            from minio.sse import SseS3

            self.store.client.fput_object(self.store.bucket, self.store._object(key), str(path), sse=SseS3())
            return self.store.uri(key)
        return self.store.put_file(key, path)

    def _put_bytes(self, key: str, data: bytes) -> str:
        if self.sse and isinstance(self.store, S3ArtifactStore):
            with tempfile.NamedTemporaryFile() as tmp:
                tmp.write(data)
                tmp.flush()
                return self._put_file(key, Path(tmp.name))
        return self.store.put_bytes(key, data)

    def _put_staged(self, key: str, path: Path) -> None:
        """Store a staging file the caller gives up: a local store renames it into place, S3 uploads it."""
        if isinstance(self.store, LocalArtifactStore):
            self.store.adopt_file(key, path)
        else:
            self._put_file(key, path)

    def land_raw(self, dataset: str, path: Path, sha256: str, name: str, day: str) -> str:
        """Copy the received bytes into the raw zone once (same content -> same key)."""
        key = f"raw/{dataset}/{day}/{sha256[:16]}/{_safe_name(name)}"
        if not self.store.exists(key):
            self._put_file(key, path)
        return key

    def quarantine_rows(self, dataset: str, run_id: str, path: Path) -> str:
        key = f"quarantine/{dataset}/{run_id}/rows.jsonl"
        self._put_file(key, path)
        return key

    def quarantine_file(self, dataset: str, run_id: str, path: Path, name: str, reason: dict[str, Any]) -> str:
        key = f"quarantine/{dataset}/{run_id}/files/{_safe_name(name)}"
        self._put_file(key, path)
        self._put_bytes(key + ".reason.json", json.dumps(reason, indent=2, default=str).encode())
        return key

    def put_report(self, dataset: str, run_id: str, name: str, path: Path) -> str:
        key = f"reports/{dataset}/{run_id}/{name}"
        self._put_file(key, path)
        return key

    def commit(
        self,
        dataset: str,
        parts: list[tuple[Path, str, int, str]],
        inputs: list[dict[str, Any]],
        run_id: str,
        keys: list[str] | None = None,
    ) -> tuple[int, bool]:
        """Commit a new version with `parts` (file, partition, rows, sha256) added; returns (version, created).
        `keys` (the dataset's key columns) are recorded so reads can keep the latest row per key.

        No version is created when every input fingerprint was already committed or no file is new: re-running
        the same input is a no-op.
        """
        current = self.manifest(dataset) if self.latest_version(dataset) else None
        files: list[dict[str, Any]] = list(current["files"]) if current else []
        seen_inputs = {i["sha256"] for i in (current or {}).get("inputs", [])}
        known = {f["sha256"] for f in files}
        if current and inputs and all(i["sha256"] in seen_inputs for i in inputs):
            logger.info("%s: input already committed in v%d; no new version", dataset, current["version"])
            return int(current["version"]), False
        fresh = list({part[3]: part for part in parts if part[3] not in known}.values())  # one per content hash
        version = (int(current["version"]) if current else 0) + 1

        def upload(part: tuple[Path, str, int, str]) -> dict[str, Any]:
            path, partition, rows, digest = part
            key = f"curated/{dataset}/data/date={partition}/part-{digest[:32]}.parquet"
            entry = {
                "key": key, "sha256": digest, "partition": partition, "rows": rows, "bytes": path.stat().st_size,
                "stats": _stats(path), "version": version,
            }  # fmt: skip
            if not self.store.exists(key):
                self._put_staged(key, path)
            return entry

        # Files are independent: they are checked and uploaded in parallel (I/O and hashing release the GIL).
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="slipway-commit") as pool:
            files += list(pool.map(upload, fresh))
        added = len(fresh)
        if current and not added:
            return int(current["version"]), False
        manifest = {
            "dataset": dataset,
            "version": version,
            "parent": current["version"] if current else None,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "rows": sum(int(f["rows"]) for f in files),
            "files": files,
            "inputs": [*(current or {}).get("inputs", []), *inputs],
            "keys": list(keys) if keys else (current or {}).get("keys", []),
        }
        key = f"curated/{dataset}/_versions/v{version:06d}.json"
        if self.store.exists(key):
            raise SlipwayError(f"{dataset}: version {version} already exists (concurrent ingestion?); re-run")
        self._put_bytes(key, json.dumps(manifest, indent=1, default=str).encode())
        logger.info("%s: committed version %d (%d new files, %d rows)", dataset, version, added, manifest["rows"])
        return version, True

    # ------------------------------------------------------------------------------------------ reads

    def version_numbers(self, dataset: str) -> list[int]:
        keys = self.store.list(f"curated/{dataset}/_versions")
        return sorted(int(Path(k).stem[1:]) for k in keys if k.endswith(".json") and Path(k).stem.startswith("v"))

    def latest_version(self, dataset: str) -> int | None:
        numbers = self.version_numbers(dataset)
        return numbers[-1] if numbers else None

    def manifest(self, dataset: str, version: int | None = None) -> dict[str, Any]:
        version = version or self.latest_version(dataset)
        if version is None:
            raise ArtifactNotFoundError(f"dataset {dataset!r} has no versions yet; ingest something first")
        data: dict[str, Any] = json.loads(self.store.get_bytes(f"curated/{dataset}/_versions/v{version:06d}.json"))
        return data

    def versions(self, dataset: str) -> list[VersionInfo]:
        out = []
        for number in self.version_numbers(dataset):
            m = self.manifest(dataset, number)
            out.append(
                VersionInfo(
                    dataset,
                    number,
                    m["created_at"],
                    int(m["rows"]),
                    len(m["files"]),
                    sorted({f["partition"] for f in m["files"]}),
                )
            )
        return out

    def read(
        self,
        dataset: str,
        version: int | None = None,
        *,
        partitions: tuple[str | None, str | None] | None = None,
        columns: list[str] | None = None,
        filter: Any = None,
        latest: bool = False,
    ) -> pa.Table:
        """Read a version (default latest). `partitions=(from, to)` prunes date partitions (inclusive) before any
        file is opened; `filter` (a pyarrow.compute expression) also prunes by the row-group statistics.

        Versions append: an incremental source that sends a changed record again adds a row with the same key.
        `latest=True` keeps one row per key (the dataset's keys, recorded at commit), the one from the newest
        version."""
        m = self.manifest(dataset, version)
        files = m["files"]
        keys = list(m.get("keys") or [])
        if latest and not keys:
            raise SlipwayError(f"dataset {dataset!r} has no key columns, so it has no latest row per key")
        if partitions is not None:
            lo, hi = partitions
            files = [f for f in files if (lo is None or f["partition"] >= lo) and (hi is None or f["partition"] <= hi)]
        logger.info("%s v%s: reading %d of %d files", dataset, m["version"], len(files), len(m["files"]))
        if not files:
            return pa.table({})
        wanted = columns if not latest or columns is None else [*columns, *(k for k in keys if k not in columns)]
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for f in files:
                if isinstance(self.store, LocalArtifactStore):
                    paths.append(str(self.store.root / f["key"]))
                else:
                    local = Path(tmp) / f["key"]
                    self.store.get_file(f["key"], local)
                    paths.append(str(local))
            if not latest:
                table = pads.dataset(paths, format="parquet").to_table(columns=columns, filter=filter)
                return table.combine_chunks()
            parts = []
            for order, (f, path) in enumerate(zip(files, paths, strict=True)):
                part = pads.dataset(path, format="parquet").to_table(columns=wanted, filter=filter)
                rank = (int(f.get("version", 0)), order)  # manifests before versions were recorded: file order
                parts.append(part.append_column(_RANK, pa.array([rank[0] * 1_000_000 + rank[1]] * part.num_rows)))
        return _latest_per_key(pa.concat_tables(parts, promote_options="permissive"), keys, columns)

    def files_read(self, dataset: str, version: int | None, partitions: tuple[str | None, str | None]) -> int:
        """How many files a partition-pruned read opens (for tests and logs)."""
        lo, hi = partitions
        return sum(
            1
            for f in self.manifest(dataset, version)["files"]
            if (lo is None or f["partition"] >= lo) and (hi is None or f["partition"] <= hi)
        )

    # ------------------------------------------------------------------------------------------ state

    def load_state(self, dataset: str, name: str) -> dict[str, Any]:
        key = f"state/{dataset}/{_safe_name(name)}.json"
        if not self.store.exists(key):
            return {}
        data: dict[str, Any] = json.loads(self.store.get_bytes(key))
        return data

    def save_state(self, dataset: str, name: str, state: dict[str, Any]) -> None:
        self._put_bytes(f"state/{dataset}/{_safe_name(name)}.json", json.dumps(state, default=str).encode())


_RANK = "__slipway_rank"


def _latest_per_key(table: pa.Table, keys: list[str], columns: list[str] | None) -> pa.Table:
    """The row of each key with the highest rank (newest version; within one version keys are unique). Rows
    without a key are all kept, as ingestion never treats them as duplicates."""
    if len(keys) == 1:
        key = table[keys[0]].cast(pa.string())
    else:
        key = pc.binary_join_element_wise(*[pc.fill_null(table[k].cast(pa.string()), "") for k in keys], "\x1f")
    rank = np.asarray(table[_RANK].to_numpy(), dtype=np.int64)
    order = np.argsort(-rank, kind="stable")  # newest first; file order kept within a version
    ordered = pc.take(key, pa.array(order))
    if isinstance(ordered, pa.ChunkedArray):
        ordered = ordered.combine_chunks()
    codes = np.asarray(pc.fill_null(pc.dictionary_encode(ordered).indices, -1).to_numpy(zero_copy_only=False))
    _, first = np.unique(codes, return_index=True)
    keep = np.union1d(order[first], order[codes == -1])  # sorted: the rows keep their read order
    out = table.take(pa.array(keep)).drop_columns([_RANK])
    return out.select(columns) if columns is not None else out


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return cleaned[:120] or "input"
