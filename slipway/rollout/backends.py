"""Rollout backends: the local traffic router, and a KServe InferenceService measured through Prometheus."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from slipway.errors import RolloutError
from slipway.rollout.analysis import VariantWindow
from slipway.rollout.router import Observation, TrafficRouter

logger = logging.getLogger(__name__)

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
KSERVE_PLURAL = "inferenceservices"

# (predictions, predictions that have a label, those labels) of one version in [start, end)
PredictionSource = Callable[[int, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def window_from_observations(observations: list[Observation], router: TrafficRouter) -> VariantWindow:
    """A `VariantWindow` from router observations; labels joined by `<request_id>:<row>` or `<request_id>`."""
    predictions: list[float] = []
    labelled: list[float] = []
    labels: list[float] = []
    for o in observations:
        for i, p in enumerate(o.predictions):
            predictions.append(p)
            label = router.recorder.label_of(f"{o.request_id}:{i}")
            if label is None and len(o.predictions) == 1:
                label = router.recorder.label_of(o.request_id)
            if label is not None:
                labelled.append(p)
                labels.append(label)
    return VariantWindow(
        requests=len(observations),
        errors=sum(1 for o in observations if o.status >= 500),
        latencies_s=np.array([o.latency_s for o in observations]),
        predictions=np.array(predictions),
        labelled_predictions=np.array(labelled),
        labels=np.array(labels),
    )


class LocalRouterBackend:
    """Drives a `TrafficRouter` holding a `primary` and a `canary` variant (the canary first, for stickiness)."""

    def __init__(self, router: TrafficRouter, primary: str = "primary", canary: str = "canary") -> None:
        missing = {primary, canary} - set(router.variants)
        if missing:
            raise RolloutError(f"router has no variant(s) {sorted(missing)}; it has {sorted(router.variants)}")
        self.router, self.primary, self.canary = router, primary, canary
        self._mark = 0

    def start(self, canary_version: int) -> None:
        self.router.variants[self.canary].version = canary_version
        self.set_canary_percent(0)

    def set_canary_percent(self, percent: int) -> None:
        self.router.set_weights({self.canary: percent, self.primary: 100 - percent})

    def begin_window(self) -> None:
        self._mark = self.router.recorder.last_seq

    def observe(self) -> tuple[VariantWindow, VariantWindow]:
        obs = self.router.recorder.since(self._mark)
        return (
            window_from_observations([o for o in obs if o.variant == self.primary], self.router),
            window_from_observations([o for o in obs if o.variant == self.canary], self.router),
        )

    def promote(self) -> None:
        self.set_canary_percent(100)

    def rollback(self) -> None:
        self.set_canary_percent(0)


class PrometheusMetrics:
    """Per-version request, error and p99 figures from the Prometheus HTTP API (`/api/v1/query`).

    Uses the serving metrics `slipway_requests_total{model,version,status}` and
    `slipway_request_latency_seconds_bucket{model,version,le}`; predictions and labels come from an optional
    `prediction_source` (e.g. `payload_log_predictions`).
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout_s: float = 5.0,
        bearer_token: str | None = None,
        prediction_source: PredictionSource | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.prediction_source = prediction_source

    def query(self, promql: str, at: float) -> float | None:
        """One instant query; None when the result is empty or NaN."""
        try:
            r = httpx.get(
                f"{self.url}/api/v1/query",
                params={"query": promql, "time": f"{at:.3f}"},
                headers=self._headers,
                timeout=self.timeout_s,
            )
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise RolloutError(f"Prometheus at {self.url} did not answer {promql!r}: {e}; check the URL") from e
        if r.status_code != 200 or body.get("status") != "success":
            raise RolloutError(f"Prometheus rejected {promql!r}: HTTP {r.status_code} {body.get('error', '')}")
        result = body.get("data", {}).get("result", [])
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if np.isnan(value) else value

    def window(self, version: int, start: float, end: float) -> VariantWindow:
        rng = f"{max(1, round(end - start))}s"
        sel = f'model="{self.model}",version="{version}"'
        requests = self.query(f"sum(increase(slipway_requests_total{{{sel}}}[{rng}]))", end) or 0.0
        errors = self.query(f'sum(increase(slipway_requests_total{{{sel},status=~"5.."}}[{rng}]))', end) or 0.0
        p99 = self.query(
            f"histogram_quantile(0.99, sum by (le) (rate(slipway_request_latency_seconds_bucket{{{sel}}}[{rng}])))",
            end,
        )
        window = VariantWindow(requests=round(requests), errors=round(errors), p99_latency_s=p99)
        if self.prediction_source is not None:
            preds, labelled, labels = self.prediction_source(version, start, end)
            window.predictions, window.labelled_predictions, window.labels = preds, labelled, labels
        return window


def payload_log_predictions(root: str | Path | Any, model: str) -> PredictionSource:
    """A `PredictionSource` over the serving payload logs (predictions, with delayed labels where joined)."""

    def source(version: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from slipway.monitoring.payloads import read_payload_logs

        frame = read_payload_logs(root, model, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        rows = frame[frame["version"].astype("Int64") == version] if len(frame) else frame
        preds = rows["prediction"].astype(float).to_numpy() if len(rows) else np.array([])
        with_label = rows[rows["label"].notna()] if len(rows) else rows
        if not len(with_label):
            return preds, np.array([]), np.array([])
        return preds, with_label["prediction"].astype(float).to_numpy(), with_label["label"].astype(float).to_numpy()

    return source


class KServeBackend:
    """Patches `spec.predictor.canaryTrafficPercent` of an InferenceService through the Kubernetes API.

    KServe sends `canaryTrafficPercent` of the traffic to the latest revision and the rest to the previous
    rolled-out one. `start` points the predictor at the canary's storage URI (when `storage_uri_prefix` is given;
    otherwise the pipeline already applied it), `promote` removes the field (100 % to the latest revision) and
    `rollback` sets it to 0.
    """

    def __init__(
        self,
        api: Any,
        name: str,
        metrics: PrometheusMetrics,
        *,
        namespace: str = "slipway",
        primary_version: int,
        storage_uri_prefix: str | None = None,
        model_name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api  # kubernetes.client.CustomObjectsApi
        self.name = name
        self.namespace = namespace
        self.metrics = metrics
        self.primary_version = primary_version
        self.storage_uri_prefix = storage_uri_prefix.rstrip("/") if storage_uri_prefix else None
        self.model_name = model_name or name
        self._clock = clock
        self.canary_version: int | None = None
        self._window_start = 0.0

    def _patch(self, predictor: dict[str, Any]) -> None:
        body = {"spec": {"predictor": predictor}}
        try:
            self.api.patch_namespaced_custom_object(
                KSERVE_GROUP, KSERVE_VERSION, self.namespace, KSERVE_PLURAL, self.name, body
            )
        except Exception as e:  # kubernetes.client.ApiException and transport errors
            raise RolloutError(
                f"cannot patch InferenceService {self.namespace}/{self.name}: {e}; check it exists and that the "
                "service account may patch inferenceservices"
            ) from e
        logger.info("patched %s/%s predictor %s", self.namespace, self.name, sorted(predictor))

    def start(self, canary_version: int) -> None:
        self.canary_version = canary_version
        if self.storage_uri_prefix is None:
            return
        uri = f"{self.storage_uri_prefix}/{self.model_name}/v{canary_version}"
        try:
            isvc = self.api.get_namespaced_custom_object(
                KSERVE_GROUP, KSERVE_VERSION, self.namespace, KSERVE_PLURAL, self.name
            )
        except Exception as e:
            raise RolloutError(f"cannot read InferenceService {self.namespace}/{self.name}: {e}") from e
        predictor = isvc.get("spec", {}).get("predictor", {})
        if "model" in predictor:
            self._patch({"canaryTrafficPercent": 0, "model": {"storageUri": uri}})
            return
        containers = copy.deepcopy(predictor.get("containers") or [])
        if not containers:
            raise RolloutError(f"InferenceService {self.name} has neither predictor.model nor containers to update")
        env = containers[0].setdefault("env", [])
        for var in env:
            if var.get("name") == "STORAGE_URI":
                var["value"] = uri
                break
        else:
            env.append({"name": "STORAGE_URI", "value": uri})
        # a merge patch replaces lists whole: send every container back, changed only in STORAGE_URI
        self._patch({"canaryTrafficPercent": 0, "containers": containers})

    def set_canary_percent(self, percent: int) -> None:
        self._patch({"canaryTrafficPercent": int(percent)})

    def begin_window(self) -> None:
        self._window_start = self._clock()

    def observe(self) -> tuple[VariantWindow, VariantWindow]:
        if self.canary_version is None:
            raise RolloutError("observe() before start(): no canary version")
        end = self._clock()
        return (
            self.metrics.window(self.primary_version, self._window_start, end),
            self.metrics.window(self.canary_version, self._window_start, end),
        )

    def promote(self) -> None:
        self._patch({"canaryTrafficPercent": None})  # JSON merge patch: null removes the field

    def rollback(self) -> None:
        self._patch({"canaryTrafficPercent": 0})
