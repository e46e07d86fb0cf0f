"""HA's per-entity overrides (INFLUX_COMPONENT_CONFIG*) validated as the settings load them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from ingestor_project.component_config import component_config


def test_a_single_ignored_attribute_becomes_a_list():
    raw = {"sensor.a": {"ignore_attributes": "x", "override_measurement": "m"}}
    assert component_config("INFLUX_COMPONENT_CONFIG", raw) == {
        "sensor.a": {"ignore_attributes": ["x"], "override_measurement": "m"}
    }


def test_the_order_of_the_json_object_is_kept():
    raw = {"sensor.*": {}, "sensor.k*": {}, "*": {}}
    assert list(component_config("INFLUX_COMPONENT_CONFIG_GLOB", raw)) == list(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "INFLUX_COMPONENT_CONFIG must be a JSON object of objects"),
        ({"sensor.a": {"colour": 1}}, "only override_measurement"),
        ({"sensor.a": "power"}, "only override_measurement"),
        ({"*": {"ignore_attributes": [1]}}, r"\['\*'\].ignore_attributes must be strings"),
        ({"sensor.a": {"override_measurement": 3}}, "override_measurement must be a string"),
    ],
)
def test_a_malformed_override_names_the_variable_and_the_key(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        component_config("INFLUX_COMPONENT_CONFIG", raw)
