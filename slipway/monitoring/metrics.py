"""Prometheus metrics of a drift check: a fresh registry per run, written to a textfile and/or pushed.

A drift job is a batch job, so its gauges go to the node-exporter textfile collector or a Pushgateway rather
than to a scrape endpoint that would vanish with the pod.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from slipway.monitoring.drift import DriftSummary

logger = logging.getLogger(__name__)

DRIFT_SHARE = "slipway_drift_share"
FEATURE_DRIFT_SCORE = "slipway_feature_drift_score"
DRIFT_DETECTED = "slipway_drift_detected"
PREDICTION_DRIFT_SCORE = "slipway_prediction_drift_score"
WINDOW_ROWS = "slipway_drift_window_rows"
LAST_RUN = "slipway_drift_last_run_timestamp_seconds"


def drift_registry(model: str, summary: DriftSummary, *, detected: bool | None = None) -> CollectorRegistry:
    """A registry holding the drift gauges of one check of `model`.

    `detected` overrides the dataset-level verdict (e.g. when prediction drift alone raises the alarm).
    """
    registry = CollectorRegistry()
    Gauge(DRIFT_SHARE, "Share of features whose drift test fired", ["model"], registry=registry).labels(
        model=model
    ).set(summary.drift_share)
    Gauge(DRIFT_DETECTED, "1 when the last drift check raised an alarm, else 0", ["model"], registry=registry).labels(
        model=model
    ).set(1.0 if (summary.dataset_drift if detected is None else detected) else 0.0)
    scores = Gauge(
        FEATURE_DRIFT_SCORE,
        "Per-feature drift score (a distance or a p-value; see the method label)",
        ["model", "feature", "method"],
        registry=registry,
    )
    for feature, col in summary.columns.items():
        scores.labels(model=model, feature=feature, method=str(col.get("method", ""))).set(float(col["score"]))
    if summary.prediction_drift is not None:
        Gauge(
            PREDICTION_DRIFT_SCORE, "Drift score of the model's predictions", ["model", "method"], registry=registry
        ).labels(model=model, method=str(summary.prediction_drift.get("method", ""))).set(
            float(summary.prediction_drift["score"])
        )
    Gauge(WINDOW_ROWS, "Rows in the checked window", ["model"], registry=registry).labels(model=model).set(
        summary.n_current
    )
    Gauge(LAST_RUN, "Unix time of the last drift check", ["model"], registry=registry).labels(
        model=model
    ).set_to_current_time()
    return registry


def export_drift_metrics(
    registry: CollectorRegistry,
    *,
    textfile: str | Path | None = None,
    pushgateway_url: str | None = None,
    job: str = "slipway-drift",
    grouping_key: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Write the registry to a textfile (atomically, as the textfile collector needs) and/or push it."""
    if textfile:
        path = Path(textfile)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
        logger.info("drift metrics written to %s", path)
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=job, registry=registry, grouping_key=grouping_key or {}, timeout=timeout)
        logger.info("drift metrics pushed to %s (job %s)", pushgateway_url, job)
