"""Traffic for drift demos, benchmarks and tests: typed churn frames, controlled shifts, payload-log files.

`write_payload_log` writes exactly the layout and row format the serving payload logger writes, so a check can be
exercised without a server.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from slipway.data.churn_schema import FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET_COLUMN
from slipway.monitoring.payloads import LABELS_DIR, PAYLOAD_PREFIX


def typed_churn_frame(n_rows: int, seed: int, *, with_target: bool = False) -> pd.DataFrame:
    """Synthetic churn rows with model-ready types (ints, floats, strings), as the server receives them."""
    from slipway.data.churn import generate_synthetic_churn

    raw = generate_synthetic_churn(n_rows=n_rows, seed=seed)
    frame = raw[[*FEATURE_COLUMNS, TARGET_COLUMN] if with_target else FEATURE_COLUMNS].copy()
    for name, (kind, _lo, _hi) in NUMERIC_FEATURES.items():
        values = pd.to_numeric(frame[name], errors="coerce").fillna(0.0)
        frame[name] = values.astype(int) if kind == "integer" else values.astype(float)
    return frame.reset_index(drop=True)


def shift_churn(
    frame: pd.DataFrame, seed: int = 0, *, charges: float = 1.25, month_to_month: float = 0.5
) -> pd.DataFrame:
    """A covariate shift on two columns: MonthlyCharges scaled by `charges`, and a share of contracts moved to
    Month-to-month. Every other column is untouched."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["MonthlyCharges"] = np.clip(out["MonthlyCharges"] * charges, 0.0, 500.0).round(2)
    move = rng.random(len(out)) < month_to_month
    out.loc[move, "Contract"] = "Month-to-month"
    return out


def write_payload_log(
    root: str | Path,
    model: str,
    version: int,
    features: pd.DataFrame,
    predictions: np.ndarray,
    at: datetime,
    *,
    variant: str | None = None,
    batch: int = 50,
    spacing: timedelta = timedelta(milliseconds=10),
    writer_id: str | None = None,
) -> list[str]:
    """Append rows as payload-log lines (one request per `batch` rows) under `root`; returns the row ids."""
    writer = writer_id or uuid.uuid4().hex[:8]
    records = features.to_dict(orient="records")
    row_ids: list[str] = []
    files: dict[Path, list[str]] = {}
    for start in range(0, len(records), batch):
        request_id = uuid.uuid4().hex
        for i, row in enumerate(records[start : start + batch]):
            ts = at + spacing * (start + i)
            row_id = f"{request_id}:{i}"
            row_ids.append(row_id)
            path = Path(root) / PAYLOAD_PREFIX / model / f"dt={ts:%Y-%m-%d}" / f"hour={ts:%H}" / f"{writer}.jsonl"
            line = {
                "ts": ts.isoformat(),
                "request_id": request_id,
                "row_id": row_id,
                "model": model,
                "version": version,
                "variant": variant,
                "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()},
                "prediction": float(predictions[start + i]),
                "label": None,
            }
            files.setdefault(path, []).append(json.dumps(line))
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return row_ids


def write_labels(root: str | Path, model: str, row_ids: list[str], labels: np.ndarray, at: datetime) -> Path:
    """Delayed labels for logged rows, in `payload-logs/<model>/_labels/`."""
    path = Path(root) / PAYLOAD_PREFIX / model / LABELS_DIR / f"labels-{uuid.uuid4().hex[:8]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row_id, label in zip(row_ids, labels, strict=True):
            fh.write(json.dumps({"row_id": row_id, "label": int(label), "ts": at.isoformat()}) + "\n")
    return path
