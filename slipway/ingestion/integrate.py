"""Merge several sources on keys (e.g. customers from PostgreSQL + billing from REST + usage from files).

Each output value comes from one source, chosen by the conflict policy, and a lineage column `<col>__source`
records which. Policies: `priority` (the first source in the list with a value wins) or `latest` (the value with
the newest timestamp wins; ties go to the higher-priority source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from slipway.errors import DataValidationError

LINEAGE_SUFFIX = "__source"


@dataclass
class SourceFrame:
    name: str
    frame: pd.DataFrame
    timestamp: str | None = None  # column holding each row's last-update time (needed by "latest")


def merge_sources(
    sources: list[SourceFrame], keys: list[str], policy: Literal["priority", "latest"] = "priority"
) -> pd.DataFrame:
    """One row per key with every column any source has; `<col>__source` names the source of each value."""
    if not sources:
        raise DataValidationError("merge_sources needs at least one source")
    long_parts = []
    dtypes: dict[str, object] = {}
    for rank, src in enumerate(sources):
        missing = [k for k in keys if k not in src.frame.columns]
        if missing:
            raise DataValidationError(f"source {src.name!r} lacks key columns {missing}")
        if policy == "latest" and (src.timestamp is None or src.timestamp not in src.frame.columns):
            raise DataValidationError(f"policy 'latest' needs a timestamp column on source {src.name!r}")
        value_cols = [c for c in src.frame.columns if c not in keys and c != src.timestamp]
        for c in value_cols:
            dtypes.setdefault(c, src.frame[c].dtype)
        frame = src.frame.copy()
        frame["__ts"] = pd.to_datetime(frame[src.timestamp], utc=True) if src.timestamp else pd.NaT
        frame["__row"] = range(len(frame))
        melted = frame.melt(id_vars=[*keys, "__ts", "__row"], value_vars=value_cols, var_name="__col",
                            value_name="__value")  # fmt: skip
        melted = melted[melted["__value"].notna()]
        melted["__source"] = src.name
        melted["__rank"] = rank
        long_parts.append(melted)
    long = pd.concat(long_parts, ignore_index=True)
    if policy == "latest":
        order = ["__ts", "__rank", "__row"]
        ascending = [False, True, False]
    else:
        # Within one source, its latest row for a key wins (by timestamp if given, else by position).
        order = ["__rank", "__ts", "__row"]
        ascending = [True, False, False]
    long = long.sort_values(order, ascending=ascending, na_position="last", kind="stable")
    chosen = long.drop_duplicates([*keys, "__col"], keep="first")
    values = chosen.pivot(index=keys, columns="__col", values="__value")
    lineage = chosen.pivot(index=keys, columns="__col", values="__source").add_suffix(LINEAGE_SUFFIX)
    merged = values.join(lineage).reset_index()
    for col, dtype in dtypes.items():
        if col in merged.columns:
            try:
                merged[col] = merged[col].astype(dtype)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                merged[col] = merged[col].infer_objects()
    ordered = [*keys]
    for col in dtypes:
        if col in merged.columns:
            ordered += [col, col + LINEAGE_SUFFIX]
    return merged[ordered].sort_values(keys, kind="stable").reset_index(drop=True)
