"""python manage.py listen_mqtt — the long-lived MQTT listener (HA statestream and eventstream,
device JSON such as Zigbee2MQTT, plain values)."""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ingestor_project import env, metrics
from ingestor_project.celery import app as celery_app
from ingestor_project.logging import register_secrets
from listeners.batching import Batcher, PublisherThread
from listeners.filters import EntityFilter
from listeners.heartbeat import HeartbeatThread
from listeners.mqtt import (
    MAX_RECEIVE_MAXIMUM,
    PROTOCOLS,
    RETAINED_MODES,
    MqttConfig,
    MqttListener,
    broker_from_url,
    make_client,
)
from listeners.mqtt_formats import SOURCE_MQTT, JsonOptions, parse_subscriptions
from listeners.publish import CeleryPublisher

log = structlog.get_logger(__name__)

DEFAULT_SUBSCRIPTIONS = (
    "homeassistant/statestream/#=statestream,"
    "homeassistant/eventstream=eventstream,"
    "zigbee2mqtt/+=json"
)


def _setting(name: str, reader: Callable[..., Any], default: Any, **limits: Any) -> Any:
    """The Django setting when settings.py defines it, else the environment variable read with
    the same strict helper settings.py uses."""
    if hasattr(settings, name):
        return getattr(settings, name)
    return reader(name, default, **limits)


def _subscriptions() -> tuple:
    value = _setting("MQTT_SUBSCRIPTIONS", env.env_str, DEFAULT_SUBSCRIPTIONS)
    text = value if isinstance(value, str) else ",".join(value)
    try:
        return tuple(parse_subscriptions(text))
    except ValueError as exc:
        raise ImproperlyConfigured(f"MQTT_SUBSCRIPTIONS: {exc}") from None


def _broker():
    try:
        broker = broker_from_url(_setting("MQTT_URL", env.env_secret, "mqtt://localhost:1883"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"MQTT_URL {exc}") from None
    username = _setting("MQTT_USERNAME", env.env_str, None)
    password = _setting("MQTT_PASSWORD", env.env_secret, None)
    if (username or password) and broker.username:
        raise ImproperlyConfigured(
            "set the MQTT credentials either in MQTT_URL or in MQTT_USERNAME/MQTT_PASSWORD"
        )
    if password and not username:
        raise ImproperlyConfigured("MQTT_PASSWORD needs MQTT_USERNAME")
    if username:
        broker = dataclasses.replace(broker, username=username, password=password)
    return broker


def config_from_settings() -> MqttConfig:
    """Every MQTT setting, validated; ImproperlyConfigured names the variable at fault."""
    broker = _broker()
    register_secrets([broker.password])
    cert, key = (
        _setting("MQTT_CERT_FILE", env.env_str, None),
        _setting("MQTT_KEY_FILE", env.env_str, None),
    )
    if bool(cert) != bool(key):
        raise ImproperlyConfigured("MQTT_CERT_FILE and MQTT_KEY_FILE must be set together")
    return MqttConfig(
        subscriptions=_subscriptions(),
        broker=broker,
        client_id=_setting("MQTT_CLIENT_ID", env.env_str, "ha-ingestor"),
        protocol=_setting("MQTT_PROTOCOL", _choice(PROTOCOLS), "5"),
        keepalive=_setting("MQTT_KEEPALIVE", env.env_int, 60, minimum=5, maximum=65535),
        session_expiry=_setting(
            "MQTT_SESSION_EXPIRY", env.env_int, 7 * 24 * 3600, minimum=60, maximum=2**32 - 1
        ),
        ca_file=_setting("MQTT_CA_FILE", env.env_str, None),
        cert_file=cert,
        key_file=key,
        max_unacked=_setting(
            "MQTT_MAX_UNACKED", env.env_int, 5000, minimum=1, maximum=MAX_RECEIVE_MAXIMUM
        ),
        max_payload_bytes=_setting(
            "MQTT_MAX_PAYLOAD_BYTES", env.env_int, 256 * 1024, minimum=64, maximum=256 * 2**20
        ),
        retained=_setting("MQTT_RETAINED", _choice(RETAINED_MODES), "ingest_once"),
        statestream_settle=_setting(
            "MQTT_STATESTREAM_SETTLE", env.env_float, 2.0, minimum=0.01, maximum=60
        ),
        json=JsonOptions(
            separator=_setting("MQTT_JSON_SEPARATOR", env.env_str, "_"),
            state_key=_setting("MQTT_JSON_STATE_KEY", env.env_str, "state"),
            time_keys=tuple(
                _setting("MQTT_JSON_TIME_KEYS", env.env_list, ["last_seen", "time", "timestamp"])
            ),
        ),
    )


def _choice(choices: tuple[str, ...]) -> Callable[..., Any]:
    return lambda name, default: env.env_choice(name, choices, default)


class Command(BaseCommand):
    help = "Stream MQTT messages (HA statestream/eventstream, device JSON, values) into the queue."

    def handle(self, *args, **options) -> None:
        try:
            config = config_from_settings()
            client = make_client(config)
        except (ImproperlyConfigured, OSError, ValueError) as exc:
            # A start-up failure exits non-zero so the process manager restarts (and shows) it.
            raise CommandError(f"MQTT listener not started: {exc}") from None
        batcher = Batcher(
            CeleryPublisher(celery_app, settings.CELERY_INGEST_QUEUE),
            size=settings.INGEST_BATCH_SIZE,
            interval=settings.INGEST_FLUSH_INTERVAL,
            max_pending=settings.INGEST_MAX_PENDING_BATCHES,
            source=SOURCE_MQTT,
        )
        listener = MqttListener(
            client, batcher, config, entity_filter=EntityFilter(**settings.ENTITY_FILTER)
        )
        publisher = PublisherThread(batcher)
        publisher.start()
        heartbeat = HeartbeatThread(SOURCE_MQTT, listener.status)
        heartbeat.start()
        if settings.METRICS_PORT:
            metrics.serve_port(settings.METRICS_PORT)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: listener.request_stop())
        self._log_start(config)
        try:
            listener.run()
        finally:
            drained = listener.close(settings.INGEST_SHUTDOWN_TIMEOUT)
            publisher.stop()
            heartbeat.stop()
            heartbeat.beat_once()  # the last word: disconnected
            metrics.mark_process_dead()
        log.info("listener_stopped", published_events=batcher.published_events, **listener.stats)
        if not drained:
            log.error(
                "listener_stopped_with_unpublished_events",
                category="connection",
                events=batcher.pending_events,
            )
            sys.exit(1)

    @staticmethod
    def _log_start(config: MqttConfig) -> None:
        # Host and port only: the URL may hold a password.
        log.info(
            "mqtt_listener_starting",
            host=config.broker.host,
            port=config.broker.port,
            tls=config.broker.tls,
            client_id=config.client_id,
            protocol=config.protocol,
            subscriptions=[f"{s.topic_filter}={s.format}" for s in config.subscriptions],
            retained=config.retained,
            max_unacked=config.max_unacked,
        )
