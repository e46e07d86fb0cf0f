"""The MQTT listener's paho client: set up for at-least-once (:func:`make_client`), with one
shortcut on the hot path.

paho builds and parses an MQTT 5 ``Properties`` object for every PUBLISH, also for one without
properties (all of HA's), and has no option to skip it; profiles put it among the listener's
largest costs (docs/benchmarks.md, "Notes from profiling: MQTT"). Here a PUBLISH whose property
length is zero gets one shared, empty ``Properties`` instead; any other PUBLISH (properties
present, QoS 2, MQTT 3.1.1, paho logging on) goes through paho's own code. PUBACKs stay paho's
own, one write per message: a batched version lost acknowledgements on a quick disconnect.

It replaces a private part of paho, read in the pinned version (requirements/base.txt). With any
other version :data:`SHORTCUTS` is False and the client is exactly paho's (a test fails too, so
whoever upgrades paho reads it again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingestor_project.tls import client_context

if TYPE_CHECKING:
    from listeners.mqtt.settings import MqttConfig

PAHO_VERSION = "2.1.0"
SHORTCUTS = paho.mqtt.__version__ == PAHO_VERSION

# What every PUBLISH without properties gets as ``message.properties``: shared, so never to be
# written to (the listener does not read it at all).
NO_PROPERTIES = Properties(PacketTypes.PUBLISH)


class IngestClient(mqtt.Client):
    def _handle_publish(self) -> MQTTErrorCode:
        """paho's ``_handle_publish`` for an MQTT 5 PUBLISH at QoS 0 or 1 without properties;
        paho's own for everything else."""
        message = None
        if SHORTCUTS and self._protocol == mqtt.MQTTv5 and not self._logging():
            message = _without_properties(self._in_packet["command"], self._in_packet["packet"])
        if message is None:
            return super()._handle_publish()
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if message.qos and not self._manual_ack:
            return self._send_puback(message.mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _logging(self) -> bool:
        # paho logs every PUBLISH (with its properties) when logging is on: keep its path then.
        return self._logger is not None or self.on_log is not None


def _without_properties(header: int, packet: bytearray) -> mqtt.MQTTMessage | None:
    """The message of an MQTT 5 PUBLISH packet (after the fixed header) at QoS 0 or 1 whose
    property length is zero; None for any other (QoS 2, properties present, no topic, which
    needs a topic alias, or a packet too short: paho's code decides)."""
    qos = (header & 0x06) >> 1
    if qos == 2 or len(packet) < 2:
        return None
    topic_end = 2 + (packet[0] << 8 | packet[1])
    properties_at = topic_end + (2 if qos else 0)
    if topic_end == 2 or len(packet) <= properties_at or packet[properties_at]:
        return None
    message = mqtt.MQTTMessage()
    message.dup = (header & 0x08) != 0
    message.qos = qos
    message.retain = (header & 0x01) != 0
    message.topic = bytes(packet[2:topic_end])  # bytes, as paho gives them
    if qos:
        message.mid = packet[topic_end] << 8 | packet[topic_end + 1]
    message.properties = NO_PROPERTIES
    message.payload = bytes(packet[properties_at + 1 :])
    return message


def make_client(config: MqttConfig) -> IngestClient:
    """A client set up for at-least-once: manual acks, persistent session. No I/O yet."""
    client = IngestClient(
        CallbackAPIVersion.VERSION2,
        client_id=config.client_id,
        clean_session=None if config.v5 else False,
        protocol=mqtt.MQTTv5 if config.v5 else mqtt.MQTTv311,
        manual_ack=True,
    )
    if config.broker.username:
        client.username_pw_set(config.broker.username, config.broker.password)
    if config.broker.tls:
        client.tls_set_context(client_context(config.tls))
    kwargs: dict[str, Any] = {}
    if config.v5:
        properties = Properties(PacketTypes.CONNECT)
        # Without a session expiry an MQTT 5 session ends with the connection: nothing queued.
        properties.SessionExpiryInterval = config.session_expiry
        properties.ReceiveMaximum = config.max_unacked
        kwargs = {"clean_start": False, "properties": properties}
    client.connect_async(config.broker.host, config.broker.port, config.keepalive, **kwargs)
    return client
