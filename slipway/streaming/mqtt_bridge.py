"""Optional MQTT ingress: forward sensor readings from an MQTT broker (e.g. Mosquitto) to the Kafka topic.

Devices publish to `<prefix>/<sensor_id>/readings` (QoS 1). The bridge produces each payload verbatim to Kafka,
keyed by the sensor id taken from the MQTT topic, and acknowledges the MQTT message only once Kafka has confirmed
the write (paho's manual ack), so a bridge crash makes the device's broker redeliver rather than lose a reading.
Payloads are not parsed here: poison messages reach the processor, which dead-letters them with a reason.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["MqttBridge"]


class MqttBridge:
    def __init__(
        self,
        mqtt_host: str,
        mqtt_port: int,
        bootstrap: str,
        topic: str,
        mqtt_prefix: str = "slipway/sensors",
        client_options: dict[str, Any] | None = None,
        mqtt_username: str | None = None,
        mqtt_password: str | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt
        from confluent_kafka import Producer

        self.topic = topic
        self.prefix = mqtt_prefix.rstrip("/")
        self.forwarded = 0
        self.failed = 0
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **(client_options or {})})
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, manual_ack=True)
        if mqtt_username:
            self.client.username_pw_set(mqtt_username, mqtt_password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        client.subscribe(f"{self.prefix}/+/readings", qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        sensor = parts[-2] if len(parts) >= 2 else ""
        mid, qos = msg.mid, msg.qos

        def delivered(err: Any, _m: Any) -> None:
            if err is not None:
                self.failed += 1  # not acknowledged: the MQTT broker redelivers it
                logger.warning("kafka rejected a reading from %s: %s", msg.topic, err)
                return
            self.forwarded += 1
            if qos > 0:
                client.ack(mid, qos)

        while True:
            try:
                self.producer.produce(self.topic, key=sensor.encode(), value=msg.payload, on_delivery=delivered)
                return
            except BufferError:
                self.producer.poll(0.05)

    def stop(self) -> None:
        self._stop.set()

    def run(self, max_seconds: float | None = None, ready: threading.Event | None = None) -> int:
        """Bridge until `stop()` (or `max_seconds`); returns the number of readings forwarded."""
        self.client.connect(self.mqtt_host, self.mqtt_port, keepalive=30)
        self.client.loop_start()
        started = time.monotonic()
        try:
            if not self._subscribed.wait(10):
                raise ConnectionError(f"no MQTT subscription on {self.mqtt_host}:{self.mqtt_port} within 10 s")
            if ready is not None:
                ready.set()
            while not self._stop.is_set():
                self.producer.poll(0.05)  # serves the delivery callbacks that acknowledge MQTT messages
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
            self.producer.flush(10)
        finally:
            self.client.loop_stop()
            self.client.disconnect()
        return self.forwarded
