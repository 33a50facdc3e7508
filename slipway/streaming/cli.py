"""`slipway stream ...`: local broker, simulator, processor, live insights and the NAB score."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from slipway.errors import SlipwayError
from slipway.settings import Settings

stream_app = typer.Typer(help="Real-time IoT pipeline: broker, simulator, processor, insights.", no_args_is_help=True)


def _settings() -> Settings:
    from slipway.logging_config import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _redis(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.stream_redis_url or settings.redis_url)


def kafka_options(settings: Settings) -> dict[str, Any]:
    from slipway.streaming.broker import client_options

    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return client_options(
        settings.kafka_security_protocol,
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        password,
        settings.kafka_ssl_ca_location,
    )


def processor_from_settings(settings: Settings) -> Any:
    """A StreamProcessor wired to the configured broker, Redis, artifact store and (optionally) Feast."""
    from slipway.storage import store_from_settings
    from slipway.streaming.detector import DetectorConfig
    from slipway.streaming.processor import ProcessorConfig, StreamProcessor
    from slipway.streaming.sinks import FeastSensorPusher, RawLanding, RedisSink

    config = ProcessorConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.stream_topic,
        late_topic=settings.stream_late_topic,
        dlq_topic=settings.stream_dlq_topic,
        group=settings.stream_group,
        partitions=settings.stream_partitions,
        batch_size=settings.stream_batch_size,
        poll_timeout_s=settings.stream_poll_timeout_s,
        checkpoint_interval_s=settings.stream_checkpoint_interval_s,
        allowed_lateness_ms=settings.stream_allowed_lateness_ms,
        detector=DetectorConfig(
            window=settings.stream_detector_window,
            threshold=settings.stream_detector_threshold,
            cooldown=settings.stream_detector_cooldown,
        ),
        client_options=kafka_options(settings),
        heartbeat_file=settings.stream_heartbeat_file,
    )
    sink = RedisSink(
        _redis(settings), settings.stream_redis_prefix, settings.stream_group, settings.stream_window_ttl_s
    )
    raw = RawLanding(store_from_settings(settings)) if settings.stream_raw_landing else None
    feast = None
    if settings.stream_feast_push:
        feast = FeastSensorPusher.open(
            settings.feast_repo, online_store=settings.online_store, redis_url=settings.redis_url
        )
    return StreamProcessor(config, sink, raw=raw, feast=feast)


@stream_app.command()
def broker(
    port: int = typer.Option(9092, help="Port of the local tansu broker (memory only)."),
    create_topics: bool = typer.Option(True, help="Create the stream topics with explicit retention configs."),
) -> None:
    """Run a local Kafka-API broker (tansu) on 127.0.0.1 until Ctrl-C."""
    settings = _settings()
    from slipway.streaming.broker import ensure_topics, start_tansu
    from slipway.streaming.processor import ProcessorConfig

    bootstrap = f"127.0.0.1:{port}"
    with start_tansu(port):
        if create_topics:
            cfg = ProcessorConfig(
                bootstrap=bootstrap,
                topic=settings.stream_topic,
                late_topic=settings.stream_late_topic,
                dlq_topic=settings.stream_dlq_topic,
                partitions=settings.stream_partitions,
            )
            ensure_topics(bootstrap, cfg.topics())
        typer.echo(f"tansu broker on {bootstrap} (memory only); Ctrl-C stops it")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            typer.echo("stopping broker")


@stream_app.command()
def simulate(
    sensors: int = typer.Option(10, help="Number of sensors."),
    events_per_sensor: int = typer.Option(600, help="Readings per sensor."),
    rate: float = typer.Option(1000.0, help="Events per second sent; 0 means as fast as possible."),
    interval_ms: int = typer.Option(1000, help="Event-time spacing of one sensor's readings."),
    anomaly_rate: float = typer.Option(0.002),
    out_of_order_rate: float = typer.Option(0.05),
    late_rate: float = typer.Option(0.005),
    duplicate_rate: float = typer.Option(0.01),
    live: bool = typer.Option(False, help="Stamp events with the wall clock at send time."),
    replay: Path | None = typer.Option(None, help="CSV (timestamp,value) to play as one sensor instead."),
    sensor_id: str = typer.Option("machine-temperature", help="Sensor id used with --replay."),
) -> None:
    """Send simulated (or replayed) sensor readings to the stream topic."""
    settings = _settings()
    from confluent_kafka import Producer

    from slipway.streaming.broker import ensure_topics
    from slipway.streaming.processor import ProcessorConfig
    from slipway.streaming.simulator import SimulatorConfig, produce_events, replay_csv
    from slipway.streaming.simulator import simulate as simulate_events

    cfg = ProcessorConfig(
        bootstrap=settings.kafka_bootstrap, topic=settings.stream_topic, partitions=settings.stream_partitions
    )
    ensure_topics(settings.kafka_bootstrap, cfg.topics()[:1], options=kafka_options(settings))
    if replay is not None:
        events = replay_csv(replay, sensor_id)
    else:
        sim = SimulatorConfig(
            sensors=sensors,
            interval_ms=interval_ms,
            seed=settings.seed,
            anomaly_rate=anomaly_rate,
            out_of_order_rate=out_of_order_rate,
            late_rate=late_rate,
            duplicate_rate=duplicate_rate,
        )
        events = simulate_events(sim, events_per_sensor)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5, **kafka_options(settings)})
    started = time.monotonic()
    sent = produce_events(producer, settings.stream_topic, events, rate=rate or None, live=live)
    typer.echo(json.dumps({"sent": sent, "seconds": round(time.monotonic() - started, 2)}))


@stream_app.command()
def process(
    max_seconds: float | None = typer.Option(None, help="Stop after this long (default: until SIGTERM)."),
    until_caught_up: bool = typer.Option(False, help="Stop once the backlog is processed."),
) -> None:
    """Run the stream processor: windows, anomalies, Redis/S3/Feast sinks, checkpoints."""
    settings = _settings()
    try:
        totals = processor_from_settings(settings).run(max_seconds=max_seconds, stop_when_caught_up=until_caught_up)
    except SlipwayError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(json.dumps(totals))


@stream_app.command()
def insights(
    port: int | None = typer.Option(None, help="HTTP port (default SLIPWAY_STREAM_INSIGHTS_PORT)."),
    host: str = typer.Option("127.0.0.1", help="Bind address; 0.0.0.0 in a container."),
) -> None:
    """Serve the live insights page and API over the processor's Redis sinks."""
    settings = _settings()
    import uvicorn

    from slipway.streaming.insights import create_app

    token = settings.stream_insights_token.get_secret_value() if settings.stream_insights_token else None
    app = create_app(_redis(settings), settings.stream_redis_prefix, token)
    uvicorn.run(app, host=host, port=port or settings.stream_insights_port, log_level="warning")


@stream_app.command("mqtt-bridge")
def mqtt_bridge(max_seconds: float | None = typer.Option(None, help="Stop after this long.")) -> None:
    """Forward MQTT readings (<prefix>/<sensor>/readings) to the Kafka stream topic, keyed by sensor."""
    settings = _settings()
    from slipway.streaming.mqtt_bridge import MqttBridge

    password = settings.stream_mqtt_password.get_secret_value() if settings.stream_mqtt_password else None
    bridge = MqttBridge(
        settings.stream_mqtt_host,
        settings.stream_mqtt_port,
        settings.kafka_bootstrap,
        settings.stream_topic,
        mqtt_prefix=settings.stream_mqtt_prefix,
        client_options=kafka_options(settings),
        mqtt_username=settings.stream_mqtt_username,
        mqtt_password=password,
    )
    import signal

    signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
    try:
        forwarded = bridge.run(max_seconds=max_seconds)
    except KeyboardInterrupt:
        forwarded = bridge.forwarded
    typer.echo(json.dumps({"forwarded": forwarded, "failed": bridge.failed}))


@stream_app.command("nab-score")
def nab_score(
    csv: Path = typer.Option(
        Path("../shared/datasets/nab-iot/machine_temperature_system_failure.csv"), help="NAB series (timestamp,value)."
    ),
    windows: Path = typer.Option(Path("../shared/datasets/nab-iot/anomaly_windows.json"), help="NAB label windows."),
) -> None:
    """Score the streaming detector on a labelled NAB series (standard profile); prints JSON."""
    settings = _settings()
    from slipway.streaming.detector import DetectorConfig
    from slipway.streaming.nab import score_detector_on_nab

    config = DetectorConfig(
        window=settings.stream_detector_window,
        threshold=settings.stream_detector_threshold,
        cooldown=settings.stream_detector_cooldown,
    )
    result = score_detector_on_nab(csv, windows, config)
    typer.echo(json.dumps(result.to_dict()))
