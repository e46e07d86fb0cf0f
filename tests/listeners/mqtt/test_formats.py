"""The MQTT payload formats (eventstream, json, value): pure functions, driven directly."""

from __future__ import annotations

import json
import math
import re

import pytest

from listeners.mqtt.formats import (
    JSON_NO_STATE,
    JsonOptions,
    PayloadError,
    flatten,
    parse_eventstream,
    parse_json,
    parse_value,
    time_to_ns,
)
from listeners.mqtt.subscriptions import Subscription

RECEIVED_NS = 1_800_000_000_123_456_789
STAMP = "2026-01-02T03:04:05.123456+00:00"
STAMP_NS = 1_767_323_045_123_456_000
Z2M = Subscription("zigbee2mqtt/+", "json")
VALUES = Subscription("sensors/#", "value")


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
