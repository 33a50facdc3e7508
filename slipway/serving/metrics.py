"""Prometheus metrics of the model servers (served on KServe's `/metrics` from the default registry).

- `slipway_requests_total{model,version,variant,protocol,status}`: inference requests by HTTP status;
- `slipway_request_latency_seconds{model,version,variant}`: end-to-end latency of inference requests;
- `slipway_model_info{model,version}`: 1 for the version being served;
- `slipway_predictions_total{model,version,variant}`: scored rows.

`InferenceMetricsMiddleware` observes requests at the ASGI layer, so requests refused before the model runs (bad
JSON, unknown model, missing token) are counted with their status too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "slipway_requests_total",
    "Inference requests by model, version, variant, protocol and HTTP status.",
    ["model", "version", "variant", "protocol", "status"],
)
LATENCY = Histogram(
    "slipway_request_latency_seconds",
    "End-to-end latency of inference requests.",
    ["model", "version", "variant"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
MODEL_INFO = Gauge("slipway_model_info", "1 for the model version being served.", ["model", "version"])
PREDICTIONS = Counter("slipway_predictions_total", "Rows scored by the model.", ["model", "version", "variant"])

UNKNOWN_MODEL = "unknown"


def set_model_info(model: str, version: str, previous: str | None = None) -> None:
    """Mark `version` as served (and drop the label set of the version it replaces)."""
    if previous is not None and previous != version:
        with contextlib.suppress(KeyError):
            MODEL_INFO.remove(model, previous)
    MODEL_INFO.labels(model=model, version=version).set(1)


def parse_inference_path(path: str) -> tuple[str, str] | None:
    """(protocol, model name) of a v1 `:predict` or v2 `/infer` path; None for any other route."""
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        return "v1", path[len("/v1/models/") : -len(":predict")]
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return "v2", path[len("/v2/models/") :].split("/", 1)[0]
    return None


class InferenceMetricsMiddleware:
    """Pure ASGI middleware counting and timing inference requests.

    `describe(name)` returns `(version, variant)` of a served model, or None for a name that is not served (those
    are labelled `model="unknown"` so clients cannot grow the label set).
    """

    def __init__(self, app: Any, describe: Callable[[str], tuple[str, str] | None]) -> None:
        self.app = app
        self.describe = describe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        parsed = parse_inference_path(scope.get("path", "")) if scope["type"] == "http" else None
        if parsed is None:
            await self.app(scope, receive, send)
            return
        protocol, name = parsed
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        # Labels are read when the request arrives: a reload during the request is attributed to the old version.
        described = self.describe(name)
        model, (version, variant) = (name, described) if described is not None else (UNKNOWN_MODEL, ("", ""))
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUESTS.labels(model, version, variant, protocol, str(status)).inc()
            LATENCY.labels(model, version, variant).observe(time.perf_counter() - start)
