"""Objects the MQTT tests build often."""

from __future__ import annotations

from ingestor_project.mqtt_broker import MqttBroker
from ingestor_project.tls import TlsFiles
from listeners.mqtt.formats import JsonOptions
from listeners.mqtt.settings import MqttConfig
from listeners.mqtt.subscriptions import parse_subscriptions

# One subscription of each format, under t/.
SUBSCRIPTIONS = ["t/ss/#=statestream", "t/ev=eventstream", "t/z/+=json", "t/v/#=value"]


def mqtt_config(**overrides) -> MqttConfig:
    """A complete configuration for tests: the listener's, with these fields changed."""
    values = {
        "subscriptions": parse_subscriptions(SUBSCRIPTIONS),
        "broker": MqttBroker("localhost", 1883, tls=False),
        "client_id": "test",
        "protocol": "5",
        "keepalive": 60,
        "session_expiry": 3600,
        "tls": TlsFiles(),
        "max_unacked": 5000,
        "max_payload_bytes": 256 * 1024,
        "retained": "ingest_once",
        "statestream_settle": 0.5,
        "json": JsonOptions(),
    }
    return MqttConfig(**{**values, **overrides})
