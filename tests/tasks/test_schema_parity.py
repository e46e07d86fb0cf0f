"""Points for representative Home Assistant states, pinned row by row.

Each row cites the behaviour of HA's influxdb integration it pins (docs/ha-influxdb-parity.md,
section numbers in brackets) or names the improvement it pins ("ours").
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.attributes import has_digit_tail
from tasks.schema import EntityOverrides, SchemaOptions, convert, state_point

T = 1767323045123456000
DEFAULT = SchemaOptions()
HA_REPR = SchemaOptions(json_attributes=False)
BY_DC = SchemaOptions(measurement_attr="domain__device_class")
BY_ID = SchemaOptions(measurement_attr="entity_id")

ROWS = [
    # id, entity_id, state, attributes, options, expected (measurement, tags, fields) or None
    (
        "1.3 unit is the measurement and not a field",
        "sensor.kitchen_temp",
        "21.5",
        {"unit_of_measurement": "°C", "friendly_name": "Kitchen"},
        DEFAULT,
        (
            "°C",
            {"domain": "sensor", "entity_id": "kitchen_temp"},
            {"value": 21.5, "friendly_name_str": "Kitchen"},
        ),
    ),
    (
        "1.2 integer state is a float value",
        "sensor.humidity",
        "45",
        {"unit_of_measurement": "%"},
        DEFAULT,
        ("%", {"domain": "sensor", "entity_id": "humidity"}, {"value": 45.0}),
    ),
    (
        "1.2 negative and exponent states parse as floats",
        "sensor.flow",
        "-1.5e3",
        {"unit_of_measurement": "L/h"},
        DEFAULT,
        ("L/h", {"domain": "sensor", "entity_id": "flow"}, {"value": -1500.0}),
    ),
    (
        "1.2 whitespace around a number is accepted by float()",
        "sensor.p",
        " 7 ",
        {"unit_of_measurement": "W"},
        DEFAULT,
        ("W", {"domain": "sensor", "entity_id": "p"}, {"value": 7.0}),
    ),
    (
        "1.2 on -> state and value 1",
        "binary_sensor.door",
        "on",
        {"device_class": "door", "friendly_name": "Door"},
        DEFAULT,
        (
            "binary_sensor.door",
            {"domain": "binary_sensor", "entity_id": "door"},
            {"state": "on", "value": 1.0, "device_class_str": "door", "friendly_name_str": "Door"},
        ),
    ),
    (
        "1.2 off -> value 0",
        "switch.kettle",
        "off",
        {},
        DEFAULT,
        (
            "switch.kettle",
            {"domain": "switch", "entity_id": "kettle"},
            {"state": "off", "value": 0.0},
        ),
    ),
    (
        "1.2 locked/unlocked map to 1/0",
        "lock.front",
        "unlocked",
        {},
        DEFAULT,
        (
            "lock.front",
            {"domain": "lock", "entity_id": "front"},
            {"state": "unlocked", "value": 0.0},
        ),
    ),
    (
        "1.2 home/not_home map to 1/0",
        "device_tracker.phone",
        "not_home",
        {"latitude": 52.37, "longitude": 4.89, "gps_accuracy": 12, "source_type": "gps"},
        DEFAULT,
        (
            "device_tracker.phone",
            {"domain": "device_tracker", "entity_id": "phone"},
            {
                "state": "not_home",
                "value": 0.0,
                "latitude": 52.37,
                "longitude": 4.89,
                "gps_accuracy": 12.0,
                "source_type_str": "gps",
            },
        ),
    ),
    (
        "1.2 above_horizon maps to 1",
        "sun.sun",
        "above_horizon",
        {"elevation": 31.2},
        DEFAULT,
        (
            "sun.sun",
            {"domain": "sun", "entity_id": "sun"},
            {"state": "above_horizon", "value": 1.0, "elevation": 31.2},
        ),
    ),
    (
        "1.2 open/closed map to 1/0",
        "cover.garage",
        "closed",
        {"current_position": 0},
        DEFAULT,
        (
            "cover.garage",
            {"domain": "cover", "entity_id": "garage"},
            {"state": "closed", "value": 0.0, "current_position": 0.0},
        ),
    ),
    (
        "1.2 mapping is case-sensitive: On is text only",
        "switch.odd",
        "On",
        {},
        DEFAULT,
        ("switch.odd", {"domain": "switch", "entity_id": "odd"}, {"state": "On"}),
    ),
    (
        "1.2 other text is a state field only",
        "media_player.tv",
        "playing",
        {"volume_level": 0.3, "is_volume_muted": False, "media_title": "News"},
        DEFAULT,
        (
            "media_player.tv",
            {"domain": "media_player", "entity_id": "tv"},
            {
                "state": "playing",
                "volume_level": 0.3,
                "is_volume_muted": 0.0,
                "media_title_str": "News",
            },
        ),
    ),
    ("1.1 unknown is skipped", "sensor.x", "unknown", {"unit_of_measurement": "W"}, DEFAULT, None),
    ("1.1 unavailable is skipped", "sensor.x", "unavailable", {}, DEFAULT, None),
    ("1.1 empty state is skipped", "sensor.x", "", {}, DEFAULT, None),
    (
        "1.1 skip is case-sensitive: Unknown is written",
        "sensor.x",
        "Unknown",
        {},
        DEFAULT,
        ("sensor.x", {"domain": "sensor", "entity_id": "x"}, {"state": "Unknown"}),
    ),
    (
        "ours: unavailable kept as a state string when asked",
        "sensor.x",
        "unavailable",
        {"unit_of_measurement": "W"},
        SchemaOptions(write_unavailable=True),
        ("sensor.x", {"domain": "sensor", "entity_id": "x"}, {"state": "unavailable"}),
    ),
    (
        "1.5 bool attributes become 1.0/0.0",
        "light.desk",
        "on",
        {"supported_color_modes": ["hs"], "dimmable": True},
        DEFAULT,
        (
            "light.desk",
            {"domain": "light", "entity_id": "desk"},
            {"state": "on", "value": 1.0, "supported_color_modes_str": '["hs"]', "dimmable": 1.0},
        ),
    ),
    (
        "ours: colour lists as JSON; 1.5 digits in them also give a number",
        "light.lamp",
        "on",
        {"rgb_color": [255, 120, 0], "brightness": 180},
        DEFAULT,
        (
            "light.lamp",
            {"domain": "light", "entity_id": "lamp"},
            {
                "state": "on",
                "value": 1.0,
                "rgb_color_str": "[255,120,0]",
                "rgb_color": 2551200.0,
                "brightness": 180.0,
            },
        ),
    ),
    (
        "1.5 HA's repr of lists when JSON attributes are off",
        "light.lamp",
        "on",
        {"rgb_color": [255, 120, 0]},
        HA_REPR,
        (
            "light.lamp",
            {"domain": "light", "entity_id": "lamp"},
            {"state": "on", "value": 1.0, "rgb_color_str": "[255, 120, 0]", "rgb_color": 2551200.0},
        ),
    ),
    (
        "1.5 climate: numbers, text and list attributes",
        "climate.hall",
        "heat",
        {
            "current_temperature": 20.5,
            "temperature": 21,
            "hvac_action": "heating",
            "hvac_modes": ["off", "heat"],
            "preset_mode": None,
        },
        DEFAULT,
        (
            "climate.hall",
            {"domain": "climate", "entity_id": "hall"},
            {
                "state": "heat",
                "current_temperature": 20.5,
                "temperature": 21.0,
                "hvac_action_str": "heating",
                "hvac_modes_str": '["off","heat"]',
                "preset_mode_str": "None",
            },
        ),
    ),
    (
        "1.5 a number in text yields _str and a float",
        "sensor.fw",
        "ok",
        {"version": "v1.2", "power": "12 W", "single": "5 W"},
        DEFAULT,
        (
            "sensor.fw",
            {"domain": "sensor", "entity_id": "fw"},
            {
                "state": "ok",
                "version_str": "v1.2",
                "version": 1.2,
                "power_str": "12 W",
                "power": 12.0,
                "single_str": "5 W",
            },
        ),
    ),
    (
        "1.5 numeric strings are floats without _str",
        "sensor.s",
        "1",
        {"limit": "80"},
        DEFAULT,
        ("sensor.s", {"domain": "sensor", "entity_id": "s"}, {"value": 1.0, "limit": 80.0}),
    ),
    (
        "1.6 non-finite attributes are dropped entirely",
        "sensor.s",
        "1",
        {"peak": float("inf"), "avg": "nan", "ok": 2},
        DEFAULT,
        ("sensor.s", {"domain": "sensor", "entity_id": "s"}, {"value": 1.0, "ok": 2.0}),
    ),
    (
        "ours: a NaN state drops value instead of poisoning the batch",
        "sensor.s",
        "nan",
        {"unit_of_measurement": "W"},
        DEFAULT,
        ("W", {"domain": "sensor", "entity_id": "s"}, {"value": float("nan")}),
    ),
    (
        "1.5 collision: attribute named like a field gets _",
        "sensor.s",
        "abc",
        {"state": "z"},
        DEFAULT,
        ("sensor.s", {"domain": "sensor", "entity_id": "s"}, {"state": "abc", "state__str": "z"}),
    ),
    (
        "ours: state/value attribute names always renamed (stable types)",
        "sensor.s",
        "3",
        {"state": 4},
        DEFAULT,
        ("sensor.s", {"domain": "sensor", "entity_id": "s"}, {"value": 3.0, "state_": 4.0}),
    ),
    (
        "ours: time attribute renamed (InfluxDB refuses the key)",
        "sensor.s",
        "3",
        {"time": "10:00"},
        DEFAULT,
        (
            "sensor.s",
            {"domain": "sensor", "entity_id": "s"},
            {"value": 3.0, "time__str": "10:00", "time_": 1000.0},
        ),
    ),
    (
        "1.3 domain__device_class measurement drops device_class",
        "sensor.t",
        "20",
        {"device_class": "temperature", "unit_of_measurement": "°C"},
        BY_DC,
        (
            "sensor__temperature",
            {"domain": "sensor", "entity_id": "t"},
            {"value": 20.0, "unit_of_measurement_str": "°C"},
        ),
    ),
    (
        "1.3 domain__device_class without a class is the domain",
        "switch.k",
        "on",
        {},
        BY_DC,
        ("switch", {"domain": "switch", "entity_id": "k"}, {"state": "on", "value": 1.0}),
    ),
    (
        "1.3 entity_id measurement keeps the unit as a field",
        "sensor.t",
        "20",
        {"unit_of_measurement": "°C"},
        BY_ID,
        (
            "sensor.t",
            {"domain": "sensor", "entity_id": "t"},
            {"value": 20.0, "unit_of_measurement_str": "°C"},
        ),
    ),
    (
        "1.3 default_measurement for unitless entities",
        "sensor.status",
        "idle",
        {},
        SchemaOptions(default_measurement="state"),
        ("state", {"domain": "sensor", "entity_id": "status"}, {"state": "idle"}),
    ),
    (
        "1.3 override_measurement beats the unit, which stays a field",
        "sensor.t",
        "20",
        {"unit_of_measurement": "°C"},
        SchemaOptions(override_measurement="ha"),
        (
            "ha",
            {"domain": "sensor", "entity_id": "t"},
            {"value": 20.0, "unit_of_measurement_str": "°C"},
        ),
    ),
    (
        "1.5 tags_attributes become tags and win over ignore",
        "sensor.t",
        "20",
        {"unit_of_measurement": "°C", "area": "kitchen"},
        SchemaOptions(tags_attributes=frozenset({"area"}), ignore_attributes=frozenset({"area"})),
        ("°C", {"domain": "sensor", "entity_id": "t", "area": "kitchen"}, {"value": 20.0}),
    ),
    (
        "1.5 global tags applied last overwrite base tags",
        "sensor.t",
        "20",
        {"unit_of_measurement": "°C"},
        SchemaOptions(tags={"domain": "x", "site": "home"}),
        ("°C", {"domain": "x", "entity_id": "t", "site": "home"}, {"value": 20.0}),
    ),
    (
        "1.5 ignore_attributes leaves attributes out",
        "sensor.t",
        "20",
        {"unit_of_measurement": "°C", "friendly_name": "T", "icon": "mdi:x"},
        SchemaOptions(ignore_attributes=frozenset({"friendly_name", "icon"})),
        ("°C", {"domain": "sensor", "entity_id": "t"}, {"value": 20.0}),
    ),
    (
        "2 component_config: entity beats glob beats domain, merged per key",
        "sensor.power_1",
        "5",
        {"unit_of_measurement": "W", "friendly_name": "P", "icon": "i"},
        SchemaOptions(
            overrides=EntityOverrides(
                domains={"sensor": {"override_measurement": "dom", "ignore_attributes": ["icon"]}},
                globs=(("sensor.power_*", {"override_measurement": "glob"}),),
                entities={"sensor.power_1": {"ignore_attributes": ["friendly_name"]}},
            )
        ),
        (
            "glob",
            {"domain": "sensor", "entity_id": "power_1"},
            {"value": 5.0, "unit_of_measurement_str": "W", "icon_str": "i"},
        ),
    ),
    (
        "2 per-entity override_measurement beats the global override",
        "sensor.a",
        "5",
        {},
        SchemaOptions(
            override_measurement="global",
            overrides=EntityOverrides(entities={"sensor.a": {"override_measurement": "mine"}}),
        ),
        ("mine", {"domain": "sensor", "entity_id": "a"}, {"value": 5.0}),
    ),
    (
        "1.5 dict attributes as JSON text; one digit is no number",
        "sensor.weather",
        "sunny",
        {"forecast": {"temp": 3, "cond": "rain"}},
        DEFAULT,
        (
            "sensor.weather",
            {"domain": "sensor", "entity_id": "weather"},
            {"state": "sunny", "forecast_str": '{"cond":"rain","temp":3}'},
        ),
    ),
    (
        "ours: a number under a name ending in _str keeps text-only _str fields",
        "sensor.s",
        "x",
        {"note_str": 5},
        DEFAULT,
        ("sensor.s", {"domain": "sensor", "entity_id": "s"}, {"state": "x", "note_str_num": 5.0}),
    ),
]


@pytest.mark.parametrize(
    ("entity_id", "state", "attributes", "options", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_ha_states_become_has_points(entity_id, state, attributes, options, expected):
    event = {
        "event_type": "state_changed",
        "time": T,
        "entity_id": entity_id,
        "state": state,
        "attributes": attributes,
    }
    got = state_point(event, options)
    if expected is None or got is None:
        assert got == expected
        return
    measurement, tags, fields = got
    assert (measurement, tags) == expected[:2]
    assert fields.keys() == expected[2].keys()
    for key, value in expected[2].items():
        assert fields[key] == value or (value != value and fields[key] != fields[key]), key


def test_there_are_at_least_30_rows():
    assert len(ROWS) >= 30


def test_a_nan_state_writes_no_value_field_at_all():
    event = {
        "event_type": "state_changed",
        "time": T,
        "entity_id": "sensor.s",
        "state": "nan",
        "attributes": {"unit_of_measurement": "W", "limit": 3},
    }
    assert convert(event, DEFAULT).line == f"W,domain=sensor,entity_id=s limit=3.0 {T}"


@pytest.mark.parametrize(
    ("precision", "time"), [("ns", T), ("us", T // 1000), ("ms", T // 10**6), ("s", T // 10**9)]
)
def test_precision_scales_the_timestamp(precision, time):
    event = {
        "event_type": "state_changed",
        "time": T,
        "entity_id": "sensor.s",
        "state": "1",
        "attributes": {},
    }
    line = convert(event, SchemaOptions(precision=precision)).line
    assert line == f"sensor.s,domain=sensor,entity_id=s value=1.0 {time}"


def test_a_measurement_influxdb_cannot_store_falls_back_to_the_entity_id():
    event = {
        "event_type": "state_changed",
        "time": T,
        "entity_id": "sensor.s",
        "state": "1",
        "attributes": {"unit_of_measurement": "#/min"},
    }
    result = convert(event, DEFAULT)
    assert result.line == f"sensor.s,domain=sensor,entity_id=s value=1.0 {T}"
    assert "starts with '#'" in result.problems[0]


def test_an_attribute_name_influxdb_cannot_store_is_left_out_and_reported():
    event = {
        "event_type": "state_changed",
        "time": T,
        "entity_id": "sensor.s",
        "state": "1",
        "attributes": {"bad\nname": 1, "trailing\\": 2, "ok": 3},
    }
    result = convert(event, DEFAULT)
    assert result.line == f"sensor.s,domain=sensor,entity_id=s value=1.0,ok=3.0 {T}"
    assert len(result.problems) == 2


@given(st.text(alphabet="0123456789.ab-²\n ", max_size=30))
def test_the_linear_digit_check_agrees_with_has_regex(text):
    # HA's own test; it backtracks catastrophically on long digit runs, ours does not.
    has_regex = re.compile(r"^[^\.]*\d+\.?\d+[^\.]*$")
    assert has_digit_tail(text) == bool(has_regex.match(text))


def test_the_digit_check_is_linear_on_long_digit_runs():
    assert has_digit_tail("1" * 100_000 + "..") is False
