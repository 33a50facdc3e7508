"""Data drift between a reference frame (training data) and a current frame (live traffic), with Evidently 0.7."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from slipway.errors import DataValidationError

HTML_FILE = "drift_report.html"
JSON_FILE = "drift_report.json"
_VALUE_DRIFT = re.compile(r"^ValueDrift\(")


@dataclass
class DriftSummary:
    """What drifted. `columns[col]` = {"drifted", "score", "method"}; score is a p-value or a distance per method."""

    dataset_drift: bool
    drift_share: float
    drifted_columns: list[str]
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    html_path: str = ""
    json_path: str = ""
    drift_share_threshold: float = 0.5
    prediction_drift: dict[str, Any] | None = None
    n_reference: int = 0
    n_current: int = 0
    engine: str = "evidently"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_drifted(method: str, score: float, threshold: float) -> bool:
    # Statistical tests report p-values (drift when small); distances (Wasserstein, Jensen-Shannon, PSI...) drift
    # when large. Evidently's own rule.
    if "p_value" in method or "p-value" in method:
        return score < threshold
    return score >= threshold


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: str | Path,
    columns: list[str] | None = None,
    drift_share: float = 0.5,
) -> DriftSummary:
    """Run Evidently's DataDriftPreset, save `drift_report.html` and `drift_report.json` under `out_dir`.

    `columns` limits the comparison (default: the columns both frames share). The dataset counts as drifted when
    the share of drifted columns reaches `drift_share`.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    if columns is None:
        columns = [c for c in reference.columns if c in set(current.columns)]
    missing = {
        "reference": [c for c in columns if c not in reference],
        "current": [c for c in columns if c not in current],
    }
    if missing["reference"] or missing["current"]:
        raise DataValidationError(f"drift columns missing from the frames: {missing}")
    if not columns:
        raise DataValidationError("reference and current frames share no columns to compare")
    if reference.empty or current.empty:
        raise DataValidationError(
            f"cannot compute drift on an empty frame (reference {len(reference)} rows, current {len(current)} rows)"
        )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report([DataDriftPreset(drift_share=drift_share)])
    snapshot = report.run(
        current_data=current[columns].reset_index(drop=True), reference_data=reference[columns].reset_index(drop=True)
    )
    html_path, json_path = out / HTML_FILE, out / JSON_FILE
    snapshot.save_html(str(html_path))
    snapshot.save_json(str(json_path))

    per_column: dict[str, dict[str, Any]] = {}
    share = 0.0
    for metric in snapshot.dict().get("metrics", []):
        config = metric.get("config", {})
        name = str(metric.get("metric_name", ""))
        if _VALUE_DRIFT.match(name) and "column" in config:
            method = str(config.get("method", ""))
            score = float(metric["value"])
            threshold = float(config.get("threshold", 0.05))
            per_column[str(config["column"])] = {
                "drifted": _is_drifted(method, score, threshold),
                "score": score,
                "method": method,
            }
        elif name.startswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    drifted = [c for c in columns if per_column.get(c, {}).get("drifted")]
    if per_column and not share:
        share = len(drifted) / len(per_column)
    return DriftSummary(
        dataset_drift=share >= drift_share,
        drift_share=share,
        drifted_columns=drifted,
        columns=per_column,
        html_path=str(html_path),
        json_path=str(json_path),
        drift_share_threshold=drift_share,
        n_reference=len(reference),
        n_current=len(current),
    )


CLASSIFICATION_HTML_FILE = "classification_report.html"


def run_classification_report(
    current: pd.DataFrame,
    out_dir: str | Path,
    reference: pd.DataFrame | None = None,
    target: str = "target",
    prediction: str = "prediction",
) -> dict[str, float]:
    """Evidently's ClassificationPreset on rows whose delayed label arrived: HTML under `out_dir`, metrics back.

    `prediction` holds positive-class probabilities, `target` 0/1 labels. With a reference (training rows scored
    by the model) the report shows both side by side.
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    for name, frame in (("current", current), ("reference", reference)):
        if frame is not None and not {target, prediction} <= set(frame.columns):
            raise DataValidationError(f"{name} frame needs columns {target!r} and {prediction!r}")
    if current.empty or current[target].nunique() < 2:
        raise DataValidationError("a classification report needs labelled rows of both classes")
    definition = DataDefinition(
        classification=[BinaryClassification(target=target, prediction_probas=prediction)],
        numerical_columns=[prediction],
    )

    def dataset(frame: pd.DataFrame) -> Any:
        data = frame[[target, prediction]].reset_index(drop=True).astype({target: int, prediction: float})
        return Dataset.from_pandas(data, data_definition=definition)

    snapshot = Report([ClassificationPreset()]).run(
        dataset(current), dataset(reference) if reference is not None else None
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out / CLASSIFICATION_HTML_FILE))
    wanted = {
        "Accuracy": "accuracy",
        "Precision": "precision",
        "Recall": "recall",
        "F1Score": "f1",
        "RocAuc": "roc_auc",
    }
    metrics: dict[str, float] = {}
    for metric in snapshot.dict().get("metrics", []):
        head = str(metric.get("metric_name", "")).split("(")[0]
        if head in wanted and isinstance(metric.get("value"), (int, float)):
            metrics.setdefault(wanted[head], float(metric["value"]))
    metrics["rows"] = float(len(current))
    return metrics
