"""One drift check of a served model, end to end: read the window's payload logs, compare them with the reference
profile stored with the production version, write reports, export metrics, alert, and trigger retraining.

`check_drift` is what the `drift-monitoring` pipeline, the CronJob (`python -m slipway.cli monitor drift`) and
the closed-loop test all run.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from slipway.errors import ArtifactNotFoundError, DataValidationError, MonitoringError
from slipway.monitoring.alerts import WebhookAlertSink, build_drift_alert
from slipway.monitoring.drift import DriftSummary, run_classification_report, run_drift_report
from slipway.monitoring.fast_drift import fast_drift, report_columns
from slipway.monitoring.metrics import drift_registry, export_drift_metrics
from slipway.monitoring.payloads import ReadStats, Root, read_payload_logs
from slipway.monitoring.profile import (
    PREDICTION_COLUMN,
    PROFILE_FILE,
    SAMPLE_FILE,
    ReferenceProfile,
    stratified_sample,
)
from slipway.monitoring.retrain import RetrainResult, RetrainTrigger
from slipway.registry import ModelRegistry
from slipway.storage import ArtifactStore

logger = logging.getLogger(__name__)

CHECK_FILE = "drift_check.json"
MIN_LABELLED_ROWS = 50
_WINDOW = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

Status = Literal["drift", "no-drift", "insufficient-data"]


def parse_window(text: str) -> timedelta:
    """`30m`, `1h`, `7d` -> timedelta."""
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise DataValidationError(f"invalid window {text!r}: use a positive number and s, m, h or d, e.g. 1h")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class DriftCheckResult:
    """The outcome of one check, with every piece of evidence a reader or a test needs."""

    model: str
    version: int
    start: datetime
    end: datetime
    status: Status
    rows: int
    read_stats: dict[str, Any]
    summary: DriftSummary | None = None
    prediction_drift: bool = False
    classification: dict[str, float] | None = None
    reports: dict[str, str] = field(default_factory=dict)
    alert_attempts: int = 0
    retrain: RetrainResult | None = None

    @property
    def detected(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["retrain"] = self.retrain.model_dump(mode="json") if self.retrain else None
        return out


def load_reference(
    registry: ModelRegistry, model: str, version: int, work_dir: Path
) -> tuple[ReferenceProfile, pd.DataFrame | None]:
    """The version's reference profile and sample, downloaded with their sha256 verified."""
    meta = registry.get(model, version)
    if PROFILE_FILE not in meta.extra_files:
        raise MonitoringError(
            f"{model} v{version} has no {PROFILE_FILE}: register it with the reference files "
            "(slipway.monitoring.profile.write_reference_files) so drift can be checked"
        )
    folder = registry.download(model, version, work_dir / f"v{version}")
    profile = ReferenceProfile.load(folder / PROFILE_FILE)
    sample = pd.read_parquet(folder / SAMPLE_FILE) if SAMPLE_FILE in meta.extra_files else None
    return profile, sample


def _served_version(registry: ModelRegistry, model: str, version: int | None) -> int:
    if version:
        return version
    production = registry.production(model)
    if production is not None:
        return production.version
    try:
        return registry.get(model).version
    except ArtifactNotFoundError as e:
        raise MonitoringError(f"no version of {model!r} is registered: nothing to check drift against") from e


def _store_reports(store: ArtifactStore | None, prefix: str, folder: Path) -> dict[str, str]:
    uris: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file():
            uris[path.name] = store.put_file(f"{prefix}/{path.name}", path) if store is not None else str(path)
    return uris


def check_drift(
    *,
    registry: ModelRegistry,
    payload_root: Root,
    model: str,
    start: datetime,
    end: datetime,
    version: int | None = None,
    drift_share: float = 0.5,
    min_rows: int = 2000,
    sample_rows: int = 20_000,
    max_report_columns: int = 20,
    report_store: ArtifactStore | None = None,
    out_dir: str | Path | None = None,
    html: bool = True,
    alert_sink: WebhookAlertSink | None = None,
    metrics_textfile: str | Path | None = None,
    pushgateway_url: str | None = None,
    retrain_trigger: RetrainTrigger | None = None,
    retrain_arguments: dict[str, Any] | None = None,
    retrain_data_dir: str | Path | None = None,
) -> DriftCheckResult:
    """Check the window [start, end) of `model`'s traffic against the reference of `version` (default: the
    production version). Drift means dataset drift (share of drifted features >= `drift_share`) or prediction
    drift. The verdicts cover every feature; the Evidently HTML report shows the `max_report_columns` features
    that drifted or came closest, on a stratified sample of `sample_rows` rows. On drift: a `drift` event in the
    registry, an alert, and (with a trigger) a retrain whose labelled window is exported to `retrain_data_dir` and
    passed as `source_uri`.
    """
    served = _served_version(registry, model, version)
    stats = ReadStats()
    frame = read_payload_logs(payload_root, model, start, end, stats=stats)
    base = DriftCheckResult(model, served, start, end, "insufficient-data", len(frame), stats.to_dict())
    if len(frame) < min_rows:
        logger.warning("only %d row(s) of %s traffic in the window (need %d): no verdict", len(frame), model, min_rows)
        return base
    stamp = f"{end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        profile, sample = load_reference(registry, model, served, work)
        features = [c for c in profile.feature_names if c in frame.columns]
        absent = [c for c in profile.feature_names if c not in frame.columns]
        if absent:
            raise MonitoringError(f"payload logs of {model} lack profiled feature(s) {absent}: check the logger")
        own = frame[frame["version"] == served] if "version" in frame else frame
        current = frame[features].copy()
        # Prediction drift is about this version's outputs: other versions' (canary) rows are left out of it.
        current[PREDICTION_COLUMN] = own[PREDICTION_COLUMN].reindex(frame.index)
        summary = _fast(profile, current, features, drift_share, own)
        reports_dir = Path(out_dir) if out_dir is not None else work / "reports"
        reports_dir.mkdir(parents=True, exist_ok=True)
        if html and sample is not None:
            shown = report_columns(summary, max_report_columns)
            cols = [*shown, PREDICTION_COLUMN] if PREDICTION_COLUMN in sample.columns else shown
            cur_sample = stratified_sample(frame[[*features, PREDICTION_COLUMN]], sample_rows, PREDICTION_COLUMN)
            run_drift_report(sample[cols], cur_sample[cols], reports_dir, columns=cols, drift_share=drift_share)
        classification = _classification(frame, sample, reports_dir) if html else None
        prediction_drifted = bool(summary.prediction_drift and summary.prediction_drift["drifted"])
        detected = summary.dataset_drift or prediction_drifted
        result = DriftCheckResult(
            model,
            served,
            start,
            end,
            "drift" if detected else "no-drift",
            len(frame),
            stats.to_dict(),
            summary=summary,
            prediction_drift=prediction_drifted,
            classification=classification,
        )
        (reports_dir / CHECK_FILE).write_text(json.dumps(result.to_dict(), default=str, indent=2))
        result.reports = _store_reports(report_store, f"monitoring/{model}/drift/{stamp}", reports_dir)
    registry_metrics = drift_registry(model, summary, detected=detected)
    if metrics_textfile or pushgateway_url:
        export_drift_metrics(
            registry_metrics,
            textfile=metrics_textfile,
            pushgateway_url=pushgateway_url,
            grouping_key={"model": model},
        )
    logger.info(
        "%s v%d: %s (share %.2f, drifted %s, prediction drift %s) over %d rows",
        model,
        served,
        result.status,
        summary.drift_share,
        summary.drifted_columns,
        prediction_drifted,
        len(frame),
    )
    if not detected:
        return result
    evidence = {
        "window": [start.isoformat(), end.isoformat()],
        "rows": len(frame),
        "drift_share": summary.drift_share,
        "drifted_columns": summary.drifted_columns,
        "scores": {c: round(float(v["score"]), 6) for c, v in summary.columns.items()},
        "prediction_drift": summary.prediction_drift,
        "classification": classification,
        "reports": result.reports,
    }
    registry.record_event(
        model, "drift", version=served, message=f"drift in {len(summary.drifted_columns)} feature(s)", evidence=evidence
    )
    if alert_sink is not None:
        result.alert_attempts = alert_sink.send(build_drift_alert(model, served, evidence))
        registry.record_event(
            model, "alert", version=served, message="drift alert delivered", evidence={"sink": "webhook"}
        )
    if retrain_trigger is not None:
        args = dict(retrain_arguments or {})
        if retrain_data_dir is not None:
            from slipway.monitoring.retrain import export_labelled_window

            source = export_labelled_window(frame, features, Path(retrain_data_dir) / f"{model}-{stamp}.csv")
            args.setdefault("source_uri", str(source.resolve()))
        result.retrain = retrain_trigger.trigger(reason=f"drift on {model} v{served}", arguments=args)
        registry.record_event(
            model,
            "retrain",
            version=result.retrain.registered_version,
            message=f"retraining triggered by drift on v{served} ({result.retrain.mode})",
            evidence={**result.retrain.model_dump(mode="json"), "drift_version": served},
        )
    return result


def _fast(
    profile: ReferenceProfile, current: pd.DataFrame, features: list[str], drift_share: float, own: pd.DataFrame
) -> DriftSummary:
    if own.empty:  # no row of the checked version in the window: data drift only
        current = current.drop(columns=[PREDICTION_COLUMN])
    return fast_drift(profile, current, features, drift_share)


def _classification(frame: pd.DataFrame, sample: pd.DataFrame | None, out_dir: Path) -> dict[str, float] | None:
    labelled = frame[frame["label"].notna()]
    if len(labelled) < MIN_LABELLED_ROWS or labelled["label"].nunique() < 2:
        return None
    current = pd.DataFrame({"target": labelled["label"].astype(int), PREDICTION_COLUMN: labelled[PREDICTION_COLUMN]})
    reference = None
    if sample is not None and {"target", PREDICTION_COLUMN} <= set(sample.columns):
        reference = sample[["target", PREDICTION_COLUMN]]
    return run_classification_report(current, out_dir, reference)
