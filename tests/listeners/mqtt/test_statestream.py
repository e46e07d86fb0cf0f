"""HA's statestream messages and the assembler that pairs them into state changes."""

from __future__ import annotations

import json

import pytest

from listeners.mqtt.formats import PayloadError
from listeners.mqtt.statestream import StatestreamAssembler, StatestreamPart, parse_statestream

RECEIVED_NS = 1_800_000_000_123_456_789
STAMP = "2026-01-02T03:04:05.123456+00:00"
STAMP_NS = 1_767_323_045_123_456_000


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


def test_a_stall_past_the_settle_window_costs_one_point_not_every_later_pairing():
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
