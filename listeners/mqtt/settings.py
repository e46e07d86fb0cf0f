"""The MQTT listener's configuration: one frozen object built once from Django settings.

settings.py reads and validates every variable (MQTT_URL into ``settings.MQTT_BROKER``); what is
left here is turning MQTT_SUBSCRIPTIONS into subscriptions, which needs the format names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ingestor_project.mqtt_broker import MqttBroker
from ingestor_project.tls import TlsFiles
from listeners.mqtt.formats import JsonOptions
from listeners.mqtt.subscriptions import Subscription, parse_subscriptions


@dataclass(frozen=True)
class MqttConfig:
    subscriptions: tuple[Subscription, ...]
    broker: MqttBroker
    client_id: str
    protocol: str  # "5" or "3.1.1"
    keepalive: int
    session_expiry: int
    tls: TlsFiles  # used when the broker URL is mqtts://
    max_unacked: int
    max_payload_bytes: int
    retained: str  # "ingest_once", "ignore" or "always"
    statestream_settle: float
    json: JsonOptions

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


def subscriptions_from_setting(items: list[str]) -> tuple[Subscription, ...]:
    try:
        return parse_subscriptions(items)
    except ValueError as exc:
        raise ImproperlyConfigured(f"MQTT_SUBSCRIPTIONS: {exc}") from None


def config_from_settings(settings: Any) -> MqttConfig:
    """The MQTT_* settings as the listener's configuration."""
    return MqttConfig(
        subscriptions=subscriptions_from_setting(settings.MQTT_SUBSCRIPTIONS),
        broker=settings.MQTT_BROKER,
        client_id=settings.MQTT_CLIENT_ID,
        protocol=settings.MQTT_PROTOCOL,
        keepalive=settings.MQTT_KEEPALIVE,
        session_expiry=settings.MQTT_SESSION_EXPIRY,
        tls=settings.MQTT_TLS,
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
