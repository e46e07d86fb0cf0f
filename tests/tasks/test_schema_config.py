from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tasks.cardinality import OVERFLOW_VALUE, TagCardinalityGuard
from tasks.schema_config import schema_options_from_env


def test_defaults_are_has_defaults():
    options = schema_options_from_env({})
    assert options.measurement_attr == "unit_of_measurement"
    assert options.precision == "ns"
    assert options.default_measurement is None and options.override_measurement is None
    assert options.json_attributes is True and options.write_unavailable is False


def test_every_option_is_read_from_its_variable():
    options = schema_options_from_env(
        {
            "INFLUX_MEASUREMENT_ATTR": "entity_id",
            "INFLUX_DEFAULT_MEASUREMENT": "state",
            "INFLUX_OVERRIDE_MEASUREMENT": "all",
            "INFLUX_TAGS": "site=home, floor=1",
            "INFLUX_TAGS_ATTRIBUTES": "area",
            "INFLUX_IGNORE_ATTRIBUTES": "icon,friendly_name",
            "INFLUX_COMPONENT_CONFIG": '{"sensor.a": {"ignore_attributes": "x"}}',
            "INFLUX_COMPONENT_CONFIG_DOMAIN": '{"sensor": {"override_measurement": "s"}}',
            "INFLUX_COMPONENT_CONFIG_GLOB": '{"sensor.*": {"override_measurement": "g"}}',
            "INFLUX_PRECISION": "ms",
            "INFLUX_JSON_ATTRIBUTES": "false",
            "INFLUX_WRITE_UNAVAILABLE": "true",
            "INFLUX_EVENTS_MEASUREMENT": "events",
        }
    )
    assert options.tags == {"site": "home", "floor": "1"}
    assert options.ignore_attributes == {"icon", "friendly_name"}
    assert options.overrides.get("sensor.a") == {
        "override_measurement": "g",
        "ignore_attributes": ["x"],
    }
    assert (options.precision, options.events_measurement) == ("ms", "events")
    assert options.json_attributes is False and options.write_unavailable is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INFLUX_MEASUREMENT_ATTR": "friendly_name"}, "INFLUX_MEASUREMENT_ATTR"),
        ({"INFLUX_PRECISION": "h"}, "INFLUX_PRECISION='h' is not one of"),
        ({"INFLUX_TAGS": "site"}, "INFLUX_TAGS: 'site' is not key=value"),
        ({"INFLUX_COMPONENT_CONFIG": "{"}, "INFLUX_COMPONENT_CONFIG is not valid JSON"),
        ({"INFLUX_COMPONENT_CONFIG": '{"sensor.a": {"colour": 1}}'}, "only override_measurement"),
        ({"INFLUX_COMPONENT_CONFIG_GLOB": '{"*": {"ignore_attributes": [1]}}'}, "must be strings"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        schema_options_from_env(env)


def test_the_cardinality_guard_caps_new_values_per_key():
    guard = TagCardinalityGuard(max_values=2)
    assert [guard("area", v) for v in ("a", "b", "a", "c", "d")] == [
        "a",
        "b",
        "a",
        OVERFLOW_VALUE,
        OVERFLOW_VALUE,
    ]
    assert guard.overflowed == 2
    assert guard("entity_id", "anything") == "anything"


def test_the_guard_caps_tags_of_remembered_series_on_every_event():
    from tasks.schema import SchemaOptions, convert

    options = SchemaOptions(tags_attributes=frozenset({"area"}))
    guard = TagCardinalityGuard(max_values=2)

    def area_tag(area: str) -> str:
        event = {
            "event_type": "state_changed",
            "time": 1,
            "entity_id": "sensor.t",
            "state": "1",
            "attributes": {"area": area},
        }
        head = convert(event, options, guard).line.split(" ")[0]
        return dict(part.split("=") for part in head.split(",")[1:])["area"]

    # The third value is over the cap every time, also when its series is remembered.
    areas = [area_tag(a) for a in ("kitchen", "hall", "attic", "attic", "kitchen")]
    assert areas == ["kitchen", "hall", OVERFLOW_VALUE, OVERFLOW_VALUE, "kitchen"]
    assert guard.overflowed == 2
