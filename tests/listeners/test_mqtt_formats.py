"""The MQTT format parsers and the statestream assembler: pure functions, driven directly."""

from __future__ import annotations

import json
import math
import re

import pytest

from listeners.mqtt.formats import (
    JSON_NO_STATE,
    JsonOptions,
    PayloadError,
    StatestreamAssembler,
    Subscription,
    flatten,
    parse_eventstream,
    parse_json,
    parse_statestream,
    parse_subscriptions,
    parse_value,
    time_to_ns,
)

RECEIVED_NS = 1_800_000_000_123_456_789
STAMP = "2026-01-02T03:04:05.123456+00:00"
STAMP_NS = 1_767_323_045_123_456_000
Z2M = Subscription("zigbee2mqtt/+", "json")
VALUES = Subscription("sensors/#", "value")


# --- subscriptions ----------------------------------------------------------------------------
def test_subscriptions_are_read_as_filter_equals_format_pairs():
    subscriptions = parse_subscriptions("homeassistant/#=statestream, hass/events=eventstream")
    assert subscriptions == [
        Subscription("homeassistant/#", "statestream"),
        Subscription("hass/events", "eventstream"),
    ]


@pytest.mark.parametrize(
    "text",
    ["sensors/#", "sensors/#=xml", "a/#/b=json", "a/b+=json", "=json", "a=json,a=value", ""],
)
def test_a_malformed_subscription_list_is_refused(text):
    with pytest.raises(ValueError):
        parse_subscriptions(text)


def test_the_device_name_follows_the_filters_fixed_prefix():
    assert Subscription("zigbee2mqtt/+", "json").prefix_levels == 1
    assert Subscription("site/+/sensors/#", "value").prefix_levels == 1
    assert Subscription("hass/events", "eventstream").prefix_levels == 2


# --- statestream ------------------------------------------------------------------------------
def test_a_statestream_state_topic_names_the_entity_and_keeps_the_text():
    part = parse_statestream("homeassistant/statestream/sensor/kitchen/state", b"21.5")
    assert (part.entity_id, part.leaf, part.value) == ("sensor.kitchen", "state", "21.5")


def test_statestream_attributes_are_json_decoded_and_bare_text_is_kept():
    assert parse_statestream("ha/sensor/k/unit_of_measurement", b'"\xc2\xb0C"').value == "°C"
    assert parse_statestream("ha/light/k/rgb_color", b"[255, 0, 0]").value == [255, 0, 0]
    assert parse_statestream("ha/light/k/effect", b"rainbow").value == "rainbow"


def test_statestream_timestamps_become_nanoseconds():
    assert parse_statestream("ha/sensor/k/last_updated", STAMP.encode()).value == STAMP_NS


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("ha/state", b"on"),  # too shallow
        ("ha/Sensor/k/state", b"on"),  # not an HA domain
        ("ha/sensor/k k/state", b"on"),
        ("ha/sensor/k/last_updated", b"yesterday"),
        ("ha/sensor/k/state", b"\xff\xfe"),
    ],
)
def test_statestream_messages_of_the_wrong_shape_are_refused(topic, payload):
    with pytest.raises(PayloadError):
        parse_statestream(topic, payload)


def assemble(assembler, messages, now=0.0):
    finished = []
    for n, (topic, payload) in enumerate(messages):
        part = parse_statestream(topic, payload.encode())
        finished += assembler.add(part, token=n, now=now, received_ns=RECEIVED_NS)
    return finished


def ha_change(state: str, stamp: str, **attributes) -> list[tuple[str, str]]:
    """The messages HA's mqtt_statestream publishes for one change, in its order."""
    base = "ha/sensor/power/"
    messages = [(base + "state", state), (base + "last_updated", stamp)]
    messages.append((base + "last_changed", stamp))
    messages += [(base + k, json.dumps(v)) for k, v in attributes.items()]
    return messages


def test_one_ha_change_is_assembled_once_the_settle_window_has_passed():
    assembler = StatestreamAssembler(settle=0.5)
    assert assemble(assembler, ha_change("42", STAMP, unit_of_measurement="W")) == []
    assert assembler.due(now=0.4) == []
    [done] = assembler.due(now=0.5)
    assert done.event == {
        "source": "mqtt",
        "event_type": "state_changed",
        "time": STAMP_NS,
        "entity_id": "sensor.power",
        "state": "42",
        "attributes": {"unit_of_measurement": "W"},
    }
    assert done.tokens == [0, 1, 2, 3]


def test_the_next_state_message_finishes_the_previous_change_at_once():
    assembler = StatestreamAssembler(settle=60)
    later = "2026-01-02T03:04:06+00:00"
    finished = assemble(assembler, ha_change("1", STAMP, x=1) + ha_change("2", later, x=2))
    assert [(d.event["state"], d.event["time"], d.event["attributes"]) for d in finished] == [
        ("1", STAMP_NS, {"x": 1})
    ]
    [second] = assembler.flush()
    assert (second.event["state"], second.event["attributes"]) == ("2", {"x": 2})


def test_retained_copies_in_topic_order_still_make_one_event():
    assembler = StatestreamAssembler(settle=0.5)
    shuffled = list(reversed(ha_change("on", STAMP, friendly_name="Power")))
    assert assemble(assembler, shuffled) == []
    [done] = assembler.flush()
    assert (done.event["state"], done.event["time"]) == ("on", STAMP_NS)
    assert done.event["attributes"] == {"friendly_name": "Power"}


def test_without_published_timestamps_the_receive_time_is_used():
    assembler = StatestreamAssembler(settle=0.5)
    assemble(assembler, [("ha/sensor/power/state", "7")])
    [done] = assembler.flush()
    assert done.event["time"] == RECEIVED_NS


def test_attributes_alone_update_the_entity_without_an_event():
    assembler = StatestreamAssembler(settle=0.5)
    assemble(assembler, ha_change("1", STAMP, x=1))
    assembler.flush()
    assemble(assembler, [("ha/sensor/power/x", "5")])
    [attributes_only] = assembler.flush()
    assert attributes_only.event is None and attributes_only.tokens == [0]
    assemble(assembler, [("ha/sensor/power/state", "2")])
    [done] = assembler.flush()
    assert done.event["attributes"] == {"x": 5}


def test_a_change_without_any_known_state_yields_no_event():
    assembler = StatestreamAssembler(settle=0.5)
    assemble(assembler, [("ha/sensor/power/last_updated", STAMP)])
    [done] = assembler.flush()
    assert done.event is None


# --- eventstream ------------------------------------------------------------------------------
def eventstream(event_type: str, data: dict, **extra) -> bytes:
    return json.dumps({"event_type": event_type, "event_data": data, **extra}).encode()


def test_an_eventstream_state_change_takes_its_time_from_last_updated():
    new_state = {
        "entity_id": "light.desk",
        "state": "on",
        "attributes": {"brightness": 200},
        "last_updated": STAMP,
        "context": {"id": "ctx1"},
    }
    data = {"entity_id": "light.desk", "new_state": new_state}
    event = parse_eventstream(eventstream("state_changed", data), RECEIVED_NS)
    assert (event["source"], event["entity_id"], event["state"]) == ("mqtt", "light.desk", "on")
    assert (event["time"], event["context_id"]) == (STAMP_NS, "ctx1")


def test_other_events_use_time_fired_when_present_else_the_receive_time():
    data = {"domain": "light", "service": "turn_on"}
    fired = parse_eventstream(eventstream("call_service", data, time_fired=STAMP), RECEIVED_NS)
    assert (fired["event_type"], fired["data"], fired["time"]) == ("call_service", data, STAMP_NS)
    plain = parse_eventstream(eventstream("call_service", data), RECEIVED_NS)
    assert plain["time"] == RECEIVED_NS // 1000 * 1000  # microseconds, as HA's own stamps


def test_a_state_change_without_last_updated_takes_the_receive_time():
    new_state = {"entity_id": "light.desk", "state": "on", "attributes": {}}
    data = {"entity_id": "light.desk", "new_state": new_state}
    event = parse_eventstream(eventstream("state_changed", data), RECEIVED_NS)
    assert event["time"] == RECEIVED_NS // 1000 * 1000


def test_what_orjson_refuses_is_still_read_as_the_json_module_reads_it():
    # HA's encoder writes non-finite floats as NaN/Infinity; the schema drops them later.
    payload = (
        b'{"event_type": "state_changed", "event_data": {"new_state": {"entity_id": "sensor.t",'
        b' "state": "1", "attributes": {"low": NaN, "high": Infinity, "odd": "\\ud800"},'
        b' "last_updated": "2026-01-02T03:04:05.123456+00:00"}}}'
    )
    attributes = parse_eventstream(payload, RECEIVED_NS)["attributes"]
    assert math.isnan(attributes["low"]) and attributes["high"] == math.inf
    assert attributes["odd"] == "\ud800"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\xff{}", "payload is not UTF-8 text (binary?)"),
        (b"{", "payload is not JSON: Expecting property name enclosed in double quotes"),
        (b"[" * 100_000, "payload JSON is nested too deeply"),
    ],
)
def test_bad_json_is_refused_with_the_json_module_s_reason(payload, error):
    with pytest.raises(PayloadError, match=re.escape(error)):
        parse_eventstream(payload, RECEIVED_NS)


def test_an_eventstream_removal_is_nothing_to_store():
    data = {"entity_id": "light.desk", "new_state": None}
    assert parse_eventstream(eventstream("state_changed", data), RECEIVED_NS) is None


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'{"event_data": {}}', b'{"event_type": "x", "event_data": 5}'],
)
def test_eventstream_payloads_of_the_wrong_shape_are_refused(payload):
    with pytest.raises(PayloadError):
        parse_eventstream(payload, RECEIVED_NS)


# --- json -------------------------------------------------------------------------------------
def test_nested_objects_are_flattened_with_the_separator_and_nulls_left_out():
    assert flatten({"color": {"x": 0.3, "y": {"z": 1}}, "gone": None, "l": [1]}, "_") == {
        "color_x": 0.3,
        "color_y_z": 1,
        "l": [1],
    }


def test_a_zigbee2mqtt_report_becomes_one_event_of_its_device():
    payload = json.dumps(
        {
            "state": "ON",
            "brightness": 254,
            "color": {"x": 0.3, "y": 0.4},
            "last_seen": 1_767_323_045_123,
        }
    ).encode()
    options = JsonOptions(time_keys=("last_seen",))
    event = parse_json(Z2M, "zigbee2mqtt/Living Room Lamp", payload, RECEIVED_NS, options)
    assert event == {
        "source": "mqtt",
        "event_type": "state_changed",
        "time": 1_767_323_045_123_000_000,
        "entity_id": "mqtt.living_room_lamp",
        "state": "on",
        "attributes": {"brightness": 254, "color_x": 0.3, "color_y": 0.4},
    }


def test_a_report_without_a_state_key_still_has_a_state_the_schema_writes():
    event = parse_json(Z2M, "zigbee2mqtt/th1", b'{"temperature": 21.5}', RECEIVED_NS, JsonOptions())
    assert (event["state"], event["time"]) == (JSON_NO_STATE, RECEIVED_NS)
    assert event["attributes"] == {"temperature": 21.5}


def test_a_boolean_state_reads_as_on_or_off():
    event = parse_json(Z2M, "zigbee2mqtt/plug", b'{"state": true}', RECEIVED_NS, JsonOptions())
    assert event["state"] == "on"


@pytest.mark.parametrize(
    "payload", [b"not json", b"[1]", b"42", b"\x00\xff", b'{"time": "soon"}', b'{"time": true}']
)
def test_json_payloads_of_the_wrong_shape_are_refused(payload):
    with pytest.raises(PayloadError):
        parse_json(Z2M, "zigbee2mqtt/x", payload, RECEIVED_NS, JsonOptions(time_keys=("time",)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_767_323_045, 1_767_323_045_000_000_000),
        (1_767_323_045_123, 1_767_323_045_123_000_000),
        (1_767_323_045_123_456, 1_767_323_045_123_456_000),
        (1_767_323_045_123_456_789, 1_767_323_045_123_456_789),
        (1_767_323_045.5, 1_767_323_045_500_000_000),
        ("2026-01-02T03:04:05Z", 1_767_323_045_000_000_000),
    ],
)
def test_epoch_times_are_told_apart_by_magnitude(value, expected):
    assert time_to_ns(value) == expected


# --- value ------------------------------------------------------------------------------------
def test_a_plain_value_is_the_state_of_the_topics_entity():
    event = parse_value(VALUES, "sensors/garage/temperature", b" 18.25\n", RECEIVED_NS)
    assert (event["entity_id"], event["state"]) == ("mqtt.garage_temperature", "18.25")
    assert (event["time"], event["attributes"]) == (RECEIVED_NS, {})


def test_an_empty_value_clears_a_retained_topic_and_stores_nothing():
    assert parse_value(VALUES, "sensors/garage/temperature", b"", RECEIVED_NS) is None


@pytest.mark.parametrize("payload", [b'{"a": 1}', b"\xff\xfe\x00", b"x" * 300])
def test_values_of_the_wrong_shape_are_refused(payload):
    with pytest.raises(PayloadError):
        parse_value(VALUES, "sensors/x", payload, RECEIVED_NS)


def test_a_stall_past_the_settle_window_costs_one_point_not_every_later_pairing():
    from listeners.mqtt.formats import StatestreamAssembler, StatestreamPart

    assembler = StatestreamAssembler(settle=0.5)
    events = []

    def add(leaf, value, now):
        finished = assembler.add(StatestreamPart("sensor.p", leaf, value), None, now, 7, live=True)
        events.extend(a.event for a in finished if a.event)

    add("state", "23", 0.0)
    events.extend(a.event for a in assembler.due(1.0) if a.event)  # the listener stalled 1 s
    add("last_updated", 100, 1.0)
    add("state", "53", 1.01)
    add("last_updated", 200, 1.02)
    add("state", "83", 1.03)
    assert [(e["state"], e["time"]) for e in events] == [("23", 7), ("23", 100), ("53", 200)]
