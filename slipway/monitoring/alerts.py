"""Alert sink: a JSON webhook (Slack-compatible `text` field plus structured details), retried with backoff."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryError, retry, retry_if_exception, stop_after_attempt, wait_exponential

from slipway.errors import AlertDeliveryError

logger = logging.getLogger(__name__)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def build_drift_alert(model: str, version: int | None, check: dict[str, Any]) -> dict[str, Any]:
    """The alert body: a one-line `text` for chat tools and the check's evidence under `details`."""
    drifted = check.get("drifted_columns", [])
    prediction = check.get("prediction_drift") or {}
    text = (
        f"slipway: drift on {model} v{version}: {len(drifted)} feature(s) drifted "
        f"(share {check.get('drift_share', 0):.2f}): {', '.join(drifted) or '-'}"
        + (
            f"; prediction drift {prediction.get('method')}={prediction.get('score'):.3f}"
            if prediction.get("drifted")
            else ""
        )
    )
    return {
        "text": text,
        "kind": "drift",
        "model": model,
        "version": version,
        "at": datetime.now(UTC).isoformat(),
        "details": check,
    }


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if exc is not None else "unknown error"


class WebhookAlertSink:
    """POST alerts as JSON to `url`; transport errors, 429 and 5xx are retried, other 4xx fail at once."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        attempts: int = 4,
        backoff: float = 0.2,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.headers = headers or {}
        self.transport = transport
        # Webhook URLs often carry a token in the path: only scheme, host and port ever reach a log or an error.
        parsed = httpx.URL(url)
        self._where = f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")

    def send(self, alert: dict[str, Any]) -> int:
        """Deliver one alert; returns the number of attempts it took."""
        attempts = 0

        @retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=5),
        )
        def _post(client: httpx.Client) -> None:
            nonlocal attempts
            attempts += 1
            response = client.post(self.url, json=alert, headers=self.headers)
            response.raise_for_status()

        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                _post(client)
        except RetryError as e:
            cause = e.last_attempt.exception()
            raise AlertDeliveryError(
                f"alert webhook at {self._where} failed after {attempts} attempt(s) ({_describe(cause)}); check the "
                "receiver and SLIPWAY_MONITORING_ALERT_WEBHOOK_URL"
            ) from None
        except httpx.HTTPError as e:
            raise AlertDeliveryError(f"alert webhook at {self._where} rejected the alert ({_describe(e)})") from None
        logger.info("alert delivered to webhook after %d attempt(s): %s", attempts, alert.get("text", ""))
        return attempts
