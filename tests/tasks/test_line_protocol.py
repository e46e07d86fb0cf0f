from tasks.line_protocol import escape_key, escape_measurement, field_set, format_field, series_key
from tasks.schema import SchemaOptions, convert


def test_a_point_has_sorted_tags_fields_and_integer_time():
    event = {
        "event_type": "state_changed",
        "time": 17,
        "entity_id": "sensor.kitchen",
        "state": "21.5",
        "attributes": {"unit_of_measurement": "°C"},
    }
    line = convert(event, SchemaOptions()).line
    assert line == "°C,domain=sensor,entity_id=kitchen value=21.5 17"


def test_tags_are_sent_sorted():
    assert series_key("m", {"entity_id": "kitchen", "domain": "sensor"}, []) == (
        "m,domain=sensor,entity_id=kitchen"
    )


def test_special_characters_are_escaped_where_line_protocol_needs_it():
    assert escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert escape_key("a b,c=d") == "a\\ b\\,c\\=d"
    assert format_field('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'


def test_field_types_are_written_as_influxdb_expects():
    assert format_field(True) == "true"
    assert format_field(3) == "3i"
    assert format_field(1.0) == "1.0"
    assert format_field(float("nan")) is None
    assert format_field(float("inf")) is None


def test_a_point_without_storable_fields_is_dropped():
    assert field_set({"value": float("nan")}, []) == []
    event = {"event_type": "state_changed", "time": 1, "entity_id": "sensor.x", "state": "nan"}
    assert convert(event, SchemaOptions()).line is None


def test_empty_tag_values_are_left_out():
    assert series_key("m", {"a": "", "b": "x"}, []) == "m,b=x"
