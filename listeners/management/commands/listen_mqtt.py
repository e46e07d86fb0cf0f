"""python manage.py listen_mqtt — the long-lived MQTT listener (HA statestream and eventstream,
device JSON such as Zigbee2MQTT, plain values)."""

from __future__ import annotations

import dataclasses
import signal

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from events.contract import SOURCE_MQTT
from ingestor_project.logging import register_secrets
from listeners.filters import EntityFilter
from listeners.mqtt.formats import JsonOptions, parse_subscriptions
from listeners.mqtt.listener import (
    MqttConfig,
    MqttListener,
    broker_from_url,
    make_client,
)
from listeners.process import ListenerServices, report_stop, settings_batcher

log = structlog.get_logger(__name__)


def _subscriptions() -> tuple:
    try:
        return tuple(parse_subscriptions(",".join(settings.MQTT_SUBSCRIPTIONS)))
    except ValueError as exc:
        raise ImproperlyConfigured(f"MQTT_SUBSCRIPTIONS: {exc}") from None


def _broker():
    try:
        broker = broker_from_url(settings.MQTT_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"MQTT_URL {exc}") from None
    username, password = settings.MQTT_USERNAME, settings.MQTT_PASSWORD
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
    """The MQTT settings (validated by settings.py) as the listener's configuration; what only
    makes sense together (URL, credentials, subscriptions) is checked here."""
    broker = _broker()
    register_secrets([broker.password])
    return MqttConfig(
        subscriptions=_subscriptions(),
        broker=broker,
        client_id=settings.MQTT_CLIENT_ID,
        protocol=settings.MQTT_PROTOCOL,
        keepalive=settings.MQTT_KEEPALIVE,
        session_expiry=settings.MQTT_SESSION_EXPIRY,
        ca_file=settings.MQTT_CA_FILE,
        cert_file=settings.MQTT_CERT_FILE,
        key_file=settings.MQTT_KEY_FILE,
        max_unacked=settings.MQTT_MAX_UNACKED,
        max_payload_bytes=settings.MQTT_MAX_PAYLOAD_BYTES,
        retained=settings.MQTT_RETAINED,
        statestream_settle=settings.MQTT_STATESTREAM_SETTLE,
        json=JsonOptions(
            separator=settings.MQTT_JSON_SEPARATOR,
            state_key=settings.MQTT_JSON_STATE_KEY,
            time_keys=tuple(settings.MQTT_JSON_TIME_KEYS),
        ),
    )


class Command(BaseCommand):
    help = "Stream MQTT messages (HA statestream/eventstream, device JSON, values) into the queue."

    def handle(self, *args, **options) -> None:
        try:
            config = config_from_settings()
            client = make_client(config)
        except (ImproperlyConfigured, OSError, ValueError) as exc:
            # A start-up failure exits non-zero so the process manager restarts (and shows) it.
            raise CommandError(f"MQTT listener not started: {exc}") from None
        batcher = settings_batcher(SOURCE_MQTT)
        listener = MqttListener(
            client, batcher, config, entity_filter=EntityFilter(**settings.ENTITY_FILTER)
        )
        services = ListenerServices(SOURCE_MQTT, batcher, listener.status)
        services.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: listener.request_stop())
        self._log_start(config)
        try:
            listener.run()
        finally:
            drained = listener.close(settings.INGEST_SHUTDOWN_TIMEOUT)
            services.stop()
        report_stop(batcher, listener.stats, drained)

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
