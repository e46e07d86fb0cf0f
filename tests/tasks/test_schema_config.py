"""SchemaOptions assembled from the settings' plain INFLUX_* values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tasks.cardinality import OVERFLOW_VALUE, TagCardinalityGuard
from tasks.schema_config import schema_options

SCHEMA_SETTINGS = (
    "INFLUX_MEASUREMENT_ATTR",
    "INFLUX_DEFAULT_MEASUREMENT",
    "INFLUX_OVERRIDE_MEASUREMENT",
    "INFLUX_TAGS",
    "INFLUX_TAGS_ATTRIBUTES",
    "INFLUX_IGNORE_ATTRIBUTES",
    "INFLUX_COMPONENT_CONFIG",
    "INFLUX_COMPONENT_CONFIG_DOMAIN",
    "INFLUX_COMPONENT_CONFIG_GLOB",
    "INFLUX_PRECISION",
    "INFLUX_JSON_ATTRIBUTES",
    "INFLUX_WRITE_UNAVAILABLE",
    "INFLUX_EVENTS_MEASUREMENT",
    "INFLUX_EVENT_TAG_KEYS",
)


def values(**changed: object) -> SimpleNamespace:
    """The test process's settings (the defaults) with some values changed."""
    return SimpleNamespace(
        **{**{name: getattr(settings, name) for name in SCHEMA_SETTINGS}, **changed}
    )


def test_defaults_are_has_defaults():
    options = schema_options(values())
    assert options.measurement_attr == "unit_of_measurement"
    assert options.precision == "ns"
    assert options.default_measurement is None and options.override_measurement is None
    assert options.json_attributes is True and options.write_unavailable is False
    assert options.event_tag_keys == ("domain", "service")


def test_the_process_schema_is_built_at_start_up():
    schema = settings.INGEST_SCHEMA
    assert (schema.measurement_attr, schema.precision) == ("unit_of_measurement", "ns")
    assert schema.events_measurement == settings.INFLUX_EVENTS_MEASUREMENT


def test_every_option_comes_from_its_setting():
    options = schema_options(
        values(
            INFLUX_MEASUREMENT_ATTR="entity_id",
            INFLUX_DEFAULT_MEASUREMENT="state",
            INFLUX_OVERRIDE_MEASUREMENT="all",
            INFLUX_TAGS={"site": "home", "floor": "1"},
            INFLUX_TAGS_ATTRIBUTES=["area"],
            INFLUX_IGNORE_ATTRIBUTES=["icon", "friendly_name"],
            INFLUX_COMPONENT_CONFIG={"sensor.a": {"ignore_attributes": ["x"]}},
            INFLUX_COMPONENT_CONFIG_DOMAIN={"sensor": {"override_measurement": "s"}},
            INFLUX_COMPONENT_CONFIG_GLOB={"sensor.*": {"override_measurement": "g"}},
            INFLUX_PRECISION="ms",
            INFLUX_JSON_ATTRIBUTES=False,
            INFLUX_WRITE_UNAVAILABLE=True,
            INFLUX_EVENTS_MEASUREMENT="events",
            INFLUX_EVENT_TAG_KEYS=["domain"],
        )
    )
    assert (options.measurement_attr, options.default_measurement) == ("entity_id", "state")
    assert options.override_measurement == "all"
    assert options.tags == {"site": "home", "floor": "1"}
    assert options.tags_attributes == {"area"}
    assert options.ignore_attributes == {"icon", "friendly_name"}
    assert options.overrides.get("sensor.a") == {
        "override_measurement": "g",
        "ignore_attributes": ["x"],
    }
    assert (options.precision, options.events_measurement) == ("ms", "events")
    assert options.json_attributes is False and options.write_unavailable is True
    assert options.event_tag_keys == ("domain",)


def test_the_later_glob_wins():
    options = schema_options(
        values(
            INFLUX_COMPONENT_CONFIG_GLOB={
                "sensor.*": {"override_measurement": "first"},
                "sensor.k*": {"override_measurement": "second"},
            }
        )
    )
    assert options.overrides.get("sensor.kitchen") == {"override_measurement": "second"}


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"INFLUX_MEASUREMENT_ATTR": "friendly_name"}, "INFLUX_MEASUREMENT_ATTR='friendly_name'"),
        ({"INFLUX_PRECISION": "h"}, "INFLUX_PRECISION='h' is not one of"),
    ],
)
def test_a_choice_the_schema_does_not_know_names_the_setting(changed, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        schema_options(values(**changed))


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
