"""MQTT ingress: readings published to Mosquitto reach the Kafka topic keyed by sensor, payloads untouched."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from slipway.streaming.broker import TopicSpec, ensure_topics
from slipway.streaming.events import make_event
from slipway.streaming.mqtt_bridge import MqttBridge
from tests.conftest import port_open, require
from tests.integration.test_streaming_processor import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_mqtt_readings_are_forwarded_to_kafka(kafka_broker: str) -> None:
    require(port_open("127.0.0.1", 1883), "Mosquitto is not listening on 127.0.0.1:1883")
    import paho.mqtt.client as mqtt

    tag = uuid.uuid4().hex[:8]
    topic, prefix = f"mqtt-readings-{tag}", f"slipway-test/{tag}"
    ensure_topics(kafka_broker, [TopicSpec(topic, 2)])
    bridge = MqttBridge("127.0.0.1", 1883, kafka_broker, topic, mqtt_prefix=prefix)
    ready = threading.Event()
    thread = threading.Thread(target=bridge.run, kwargs={"max_seconds": 40, "ready": ready})
    thread.start()
    try:
        assert ready.wait(15)
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", 1883)
        publisher.loop_start()
        sent = [make_event(f"e{i}", f"s{i % 2}", 1_764_000_000_000 + i, float(i)) for i in range(5)]
        infos = [publisher.publish(f"{prefix}/s{i % 2}/readings", payload, qos=1) for i, payload in enumerate(sent)]
        infos.append(publisher.publish(f"{prefix}/s9/readings", b"{broken", qos=1))
        infos.append(publisher.publish(f"{prefix}/s9/other", b"ignored", qos=1))
        for info in infos:
            info.wait_for_publish(5)
        got = read_topic(kafka_broker, topic, 6)
        publisher.loop_stop()
        publisher.disconnect()
        deadline = time.monotonic() + 10
        while bridge.forwarded < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        bridge.stop()
        thread.join(15)
    by_value = {m.value(): m.key() for m in got}  # type: ignore[attr-defined]
    assert len(got) == 6 and bridge.forwarded == 6 and bridge.failed == 0
    assert all(by_value[p] == f"s{i % 2}".encode() for i, p in enumerate(sent))
    assert by_value[b"{broken"] == b"s9"  # forwarded as is: the processor dead-letters it
