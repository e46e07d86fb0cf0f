"""python manage.py listen_mqtt — the long-lived MQTT listener (HA statestream and eventstream,
device JSON such as Zigbee2MQTT, plain values)."""

from __future__ import annotations

import signal

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from events.contract import SOURCE_MQTT
from listeners.filters import EntityFilter
from listeners.mqtt.client import make_client
from listeners.mqtt.listener import MqttListener
from listeners.mqtt.settings import MqttConfig, config_from_settings
from listeners.process import ListenerServices, report_stop, settings_batcher

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Stream MQTT messages (HA statestream/eventstream, device JSON, values) into the queue."

    def handle(self, *args, **options) -> None:
        try:
            config = config_from_settings(settings)
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
