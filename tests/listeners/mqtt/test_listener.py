"""The MQTT listener's loop steps, driven directly against a fake paho client."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
from paho.mqtt.client import ConnectFlags
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from listeners.batching import Batcher, PublisherThread
from listeners.filters import EntityFilter
from listeners.mqtt.listener import MqttListener
from tests.listeners.mqtt.factories import mqtt_config

STAMP = "2026-01-02T03:04:05.000001+00:00"


class FakeClient:
    """The few paho calls the listener makes, recorded. ``incoming`` messages are handed to
    ``on_message`` one per ``loop``/``loop_read`` call, as paho does."""

    def __init__(self) -> None:
        self.acks: list[int] = []
        self.subscribed: list[list] = []
        self.reconnect_error: OSError | None = None
        self.disconnected = False
        self.incoming: list[mqtt.MQTTMessage] = []
        self.reads = 0
        self.on_message = None
        self.on_read = lambda: None

    def ack(self, mid: int, qos: int) -> MQTTErrorCode:
        self.acks.append(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def subscribe(self, topics):
        self.subscribed.append(topics)
        return MQTTErrorCode.MQTT_ERR_SUCCESS, len(self.subscribed)

    def reconnect(self) -> MQTTErrorCode:
        if self.reconnect_error:
            raise self.reconnect_error
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop(self, timeout: float) -> MQTTErrorCode:
        return self.loop_read()

    def loop_read(self) -> MQTTErrorCode:
        self.reads += 1
        self.on_read()
        if self.incoming:
            self.on_message(self, None, self.incoming.pop(0))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def disconnect(self) -> MQTTErrorCode:
        self.disconnected = True
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(topic: str, payload: bytes | str, mid: int, *, retain=False, dup=False, qos=1):
    msg = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    msg.payload = payload.encode() if isinstance(payload, str) else payload
    msg.qos, msg.retain, msg.dup = qos, retain, dup
    return msg


def make_listener(entity_filter=None, **overrides):
    batcher = Batcher(lambda batch: None, size=10_000, interval=60, max_pending=10, source="mqtt")
    client, clock = FakeClient(), Clock()
    listener = MqttListener(
        client,
        batcher,
        mqtt_config(**overrides),
        entity_filter=entity_filter,
        clock=clock,
        wall_ns=lambda: 1_800_000_000_000_000_000,
        sleep=lambda seconds: None,
    )
    connect(listener)
    return listener, client, clock


def connect(listener: MqttListener) -> None:
    listener.link_up = True
    success = ReasonCode(PacketTypes.CONNACK, identifier=0)
    listener.on_connect(listener.client, None, ConnectFlags(session_present=False), success, None)


def confirm_everything(listener: MqttListener) -> None:
    """Seal and 'publish' every held event, as the broker confirming them would."""
    listener.batcher.seal()
    while listener.batcher.publish_next():
        pass


def json_message(mid: int, device: str = "lamp") -> mqtt.MQTTMessage:
    return message(
        f"t/z/{device}", json.dumps({"state": "ON", "last_seen": 1_767_323_045_000}), mid
    )


def test_a_message_is_acknowledged_only_once_its_batch_is_confirmed():
    listener, client, _ = make_listener()
    assert listener.handle_message(json_message(7)) == 1
    listener.housekeeping()
    assert client.acks == []
    listener.batcher.seal()
    listener.housekeeping()
    assert client.acks == [], "sealed is not confirmed"
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [7]
    assert listener.tracker.unacked == 0


def test_the_subscriptions_are_made_at_qos_1_on_every_connection():
    listener, client, _ = make_listener()
    connect(listener)
    assert len(client.subscribed) == 2
    filters = [topic for topic, _ in client.subscribed[1]]
    assert filters == ["t/ss/#", "t/ev", "t/z/+", "t/v/#"]
    assert all(options.QoS == 1 for _, options in client.subscribed[1])


def test_a_statestream_message_is_acknowledged_once_its_assembled_change_is_confirmed():
    listener, client, clock = make_listener()
    listener.handle_message(message("t/ss/sensor/power/state", "42", 1))
    listener.handle_message(message("t/ss/sensor/power/last_updated", STAMP, 2))
    confirm_everything(listener)
    listener.housekeeping()
    assert (client.acks, listener.batcher.published_events) == ([], 0), "change still open"
    clock.now += 0.5
    listener.housekeeping()
    [event] = listener.batcher.buffer
    assert (event["entity_id"], event["state"]) == ("sensor.power", "42")
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [1, 2]


def test_acknowledgements_keep_the_receive_order():
    listener, client, clock = make_listener()
    listener.handle_message(message("t/ss/sensor/power/state", "42", 1))  # held by its change
    listener.handle_message(json_message(2))
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [], "message 2 must wait for message 1"
    clock.now += 0.5
    listener.housekeeping()
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [1, 2]


def test_a_poison_payload_becomes_a_dead_letter_marker_acknowledged_with_its_batch():
    listener, client, _ = make_listener()
    assert listener.handle_message(message("t/z/lamp", b"\xff not json", 3)) == 0
    assert listener.handle_message(json_message(4)) == 1
    marker, good = listener.batcher.buffer
    assert (marker["event_type"], marker["source"], marker["context"]) == (
        "__unparseable__",
        "mqtt",
        "t/z/lamp",
    )
    assert good["entity_id"] == "mqtt.lamp"
    assert listener.stats["unparseable"] == 1
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [3, 4]


def test_a_redelivered_message_is_marked_so_its_dead_letter_is_found_not_copied():
    listener, _, _ = make_listener()
    listener.handle_message(message("t/z/lamp", b"not json", 1, dup=True))
    deep = '{"x": ' + "[" * 1000 + "]" * 1000 + "}"  # decodes, but no batch can carry it
    listener.handle_message(message("t/z/lamp", deep, 2, dup=True))
    listener.handle_message(message("t/z/lamp", b"not json", 3))
    first, deep_event, fresh = listener.batcher.buffer
    assert first["redelivered"] is True and deep_event["redelivered"] is True
    assert "redelivered" not in fresh


def test_a_dead_letter_payload_escapes_nul_and_invalid_utf8():
    listener, _, _ = make_listener()
    listener.handle_message(message("t/z/lamp", b"\xff\x00{", 1))
    [marker] = listener.batcher.buffer
    # PostgreSQL text cannot hold NUL: the dead-letter insert would fail with the whole batch.
    assert marker["payload"] == "\\xff\\x00{"


def test_an_oversized_payload_is_unparseable():
    listener, _, _ = make_listener(max_payload_bytes=100)
    listener.handle_message(message("t/z/lamp", json.dumps({"pad": "x" * 200}), 1))
    [marker] = listener.batcher.buffer
    assert "MQTT_MAX_PAYLOAD_BYTES" in marker["error"]


def test_a_retained_copy_already_taken_is_skipped_but_acknowledged():
    listener, client, _ = make_listener()
    listener.handle_message(message("t/v/garage", "18.5", 1, retain=True))
    listener.handle_message(message("t/v/garage", "18.5", 2, retain=True))  # after a reconnect
    listener.handle_message(message("t/v/garage", "19.0", 3, retain=True))  # changed meanwhile
    listener.handle_message(message("t/v/garage", "19.0", 4))  # live: always taken
    assert [e["state"] for e in listener.batcher.buffer] == ["18.5", "19.0", "19.0"]
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [1, 2, 3, 4]


def test_retained_copies_can_be_ignored_or_always_taken():
    ignoring, _, _ = make_listener(retained="ignore")
    always, _, _ = make_listener(retained="always")
    for listener in (ignoring, always):
        for mid in (1, 2):
            listener.handle_message(message("t/v/garage", "18.5", mid, retain=True))
    assert (len(ignoring.batcher.buffer), len(always.batcher.buffer)) == (0, 2)


def test_filtered_entities_are_acknowledged_without_events():
    listener, client, _ = make_listener(entity_filter=EntityFilter(exclude_domains=["mqtt"]))
    assert listener.handle_message(json_message(1)) == 0
    listener.housekeeping()
    assert (client.acks, listener.stats["filtered"]) == ([1], 1)


def test_messages_of_an_earlier_connection_are_not_acknowledged():
    listener, client, _ = make_listener()
    listener.handle_message(json_message(1))
    connect(listener)  # a new connection: packet id 1 may now name another message
    listener.handle_message(json_message(1, device="other"))
    confirm_everything(listener)
    listener.housekeeping()
    assert client.acks == [1]
    assert listener.tracker.unacked == 0


def test_messages_read_after_a_stop_request_are_never_taken():
    listener, client, _ = make_listener()
    listener.request_stop()
    assert listener.handle_message(json_message(1)) == 0
    assert (listener.batcher.buffer, listener.tracker.unacked) == ([], 0)


def test_a_turn_reads_on_while_messages_keep_coming():
    listener, client, _ = make_listener()
    client.incoming = [json_message(mid) for mid in range(1, 6)]
    listener.housekeeping()
    listener.step()
    assert (listener.received, listener.stats["events"]) == (5, 5)
    assert client.reads == 6, "one loop, then loop_read until a read brings no message"


def test_a_turn_stops_reading_when_housekeeping_is_due():
    listener, client, clock = make_listener()
    client.incoming = [json_message(mid) for mid in range(1, 6)]
    client.on_read = lambda: setattr(clock, "now", clock.now + 0.008)
    listener.housekeeping()
    listener.step()
    assert listener.received == 3, "0.024 s after the last housekeeping: its turn"
    assert listener.tracker.unacked == 3


def test_a_turn_stops_reading_when_the_batcher_is_full():
    listener, client, _ = make_listener()
    listener.batcher.max_pending = 1
    listener.batcher.size = 2
    client.incoming = [json_message(mid) for mid in range(1, 6)]
    listener.housekeeping()
    listener.step()
    assert listener.received == 2, "a sealed batch waits: no room for more"


def test_half_the_window_unacknowledged_seals_the_batch_early():
    listener, _, _ = make_listener(max_unacked=4)
    listener.handle_message(json_message(1))
    listener.housekeeping()
    assert listener.batcher.buffer and not listener.batcher.pending
    listener.handle_message(json_message(2))
    listener.housekeeping()
    assert not listener.batcher.buffer and len(listener.batcher.pending) == 1


def test_a_refused_connection_is_retried_after_a_backoff():
    listener, client, clock = make_listener()
    listener._link_down("test")
    client.reconnect_error = ConnectionRefusedError(111, "Connection refused")
    listener.step()
    assert listener.backoff.failures == 1, "no attempt before the backoff delay"
    clock.now = listener.next_attempt
    listener.step()
    assert (listener.link_up, listener.backoff.failures) == (False, 2)
    retry_at = listener.next_attempt
    assert retry_at > clock.now
    client.reconnect_error = None
    listener.step()
    assert not listener.link_up, "no attempt before the backoff delay"
    clock.now = retry_at
    listener.step()
    assert listener.link_up


def test_close_acknowledges_what_the_broker_confirmed_and_disconnects():
    listener, client, _ = make_listener()
    listener.handle_message(json_message(5))
    listener.handle_message(message("t/ss/sensor/power/state", "1", 6))  # an open change
    publisher = PublisherThread(listener.batcher)
    publisher.start()
    try:
        assert listener.close(timeout=5) is True
    finally:
        publisher.stop()
    assert client.acks == [5, 6]
    assert client.disconnected
    assert listener.batcher.published_events == 2
