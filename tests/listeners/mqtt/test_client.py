"""The listener's paho client: how it is set up, and the version its shortcut was written for."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from ingestor_project.mqtt_broker import MqttBroker
from listeners.mqtt.client import PAHO_VERSION, SHORTCUTS, make_client
from tests.helpers import ROOT
from tests.listeners.mqtt.factories import mqtt_config


def test_the_client_shortcuts_are_written_for_the_pinned_paho():
    pinned = (ROOT / "requirements" / "base.txt").read_text()
    assert f"paho-mqtt=={PAHO_VERSION}\n" in pinned, (
        "paho-mqtt was upgraded: read listeners/mqtt/client.py against the new version's "
        "Client._handle_publish, then update PAHO_VERSION"
    )
    assert SHORTCUTS


def test_the_client_keeps_its_session_and_acknowledges_by_hand():
    broker = MqttBroker("broker.lan", 1884, tls=False, username="ingest", password="s3cret!")
    client = make_client(mqtt_config(broker=broker, client_id="listener-1", max_unacked=300))
    assert (client._client_id, client._protocol, client._manual_ack) == (
        b"listener-1",
        mqtt.MQTTv5,
        True,
    )
    assert (client._host, client._port) == ("broker.lan", 1884)
    assert (client._username, client._password) == (b"ingest", b"s3cret!")
    assert client._connect_properties.ReceiveMaximum == 300


def test_with_mqtt_3_1_1_the_session_is_kept_by_clean_session_off():
    client = make_client(mqtt_config(protocol="3.1.1"))
    assert (client._protocol, client._clean_session) == (mqtt.MQTTv311, False)
