from tasks.line_protocol import escape_key, escape_measurement, format_field, line


def test_a_point_has_sorted_tags_fields_and_integer_time():
    text = line("°C", {"entity_id": "kitchen", "domain": "sensor"}, {"value": 21.5}, 17)
    assert text == "°C,domain=sensor,entity_id=kitchen value=21.5 17"


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
    assert line("m", {}, {"value": float("nan")}, 1) is None


def test_empty_tag_values_are_left_out():
    assert line("m", {"a": "", "b": "x"}, {"v": 1.0}, 1) == "m,b=x v=1.0 1"
