"""The basics of HA's influxdb integration schema (issue 3 widens this to full parity)."""

from __future__ import annotations

from tasks.schema import SchemaOptions, convert

T = 1767323045123456000
OPTIONS = SchemaOptions()


def state(entity_id, value, **attributes):
    return {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": T,
        "entity_id": entity_id,
        "state": value,
        "attributes": attributes,
    }


def test_a_sensor_with_a_unit_is_measured_in_that_unit():
    text = convert(state("sensor.kitchen", "21.5", unit_of_measurement="°C"), OPTIONS).line
    assert text == f"°C,domain=sensor,entity_id=kitchen value=21.5 {T}"


def test_without_a_unit_the_measurement_is_the_entity_id():
    text = convert(state("sensor.status", "Running"), OPTIONS).line
    assert text == f'sensor.status,domain=sensor,entity_id=status state="Running" {T}'


def test_on_off_states_get_a_state_string_and_a_numeric_value():
    text = convert(state("switch.kettle", "on"), OPTIONS).line
    assert text == f'switch.kettle,domain=switch,entity_id=kettle state="on",value=1.0 {T}'


def test_unknown_and_unavailable_are_skipped():
    assert convert(state("sensor.x", "unknown"), OPTIONS).line is None
    assert convert(state("sensor.x", "unavailable"), OPTIONS).line is None
    assert convert(state("sensor.x", ""), OPTIONS).line is None


def test_attributes_become_float_fields_or_str_fields():
    text = convert(
        state(
            "climate.hall",
            "heat",
            current_temperature=20.5,
            hvac_action="heating",
            hvac_modes=["off", "heat"],
            friendly_name="Hall 2",
        ),
        OPTIONS,
    ).line
    assert text == (
        "climate.hall,domain=climate,entity_id=hall "
        'state="heat",current_temperature=20.5,hvac_action_str="heating",'
        'hvac_modes_str="[\\"off\\",\\"heat\\"]",friendly_name_str="Hall 2" '
        f"{T}"
    )


def test_non_finite_attributes_are_dropped():
    text = convert(state("sensor.x", "1", unit_of_measurement="W", peak=float("inf")), OPTIONS).line
    assert text == f"W,domain=sensor,entity_id=x value=1.0 {T}"


def test_other_events_go_to_their_own_measurement_with_the_context_as_fields():
    event = {
        "source": "homeassistant",
        "event_type": "call_service",
        "time": T,
        "data": {"domain": "light", "service": "turn_on"},
        "context_id": "ctx1",
    }
    assert convert(event, OPTIONS).line == (
        "ha_events,domain=light,event_type=call_service,service=turn_on "
        'data="{\\"domain\\": \\"light\\", \\"service\\": \\"turn_on\\"}",context_id="ctx1" '
        f"{T}"
    )
