from __future__ import annotations

import pytest

from listeners.homeassistant.normalise import NormaliseError, iso_to_ns, normalise_event


def state_changed(state="21.5", attributes=None, **new_state_extra):
    new_state = {
        "entity_id": "sensor.kitchen_temperature",
        "state": state,
        "attributes": attributes if attributes is not None else {"unit_of_measurement": "°C"},
        "last_changed": "2026-01-02T03:04:05.123456+00:00",
        "last_reported": "2026-01-02T03:04:05.123456+00:00",
        "last_updated": "2026-01-02T03:04:05.123456+00:00",
        "context": {"id": "01JGZ8ZT1E0000000000000000", "parent_id": None, "user_id": "u1"},
        **new_state_extra,
    }
    return {
        "event_type": "state_changed",
        "data": {
            "entity_id": "sensor.kitchen_temperature",
            "old_state": None,
            "new_state": new_state,
        },
        "origin": "LOCAL",
        "time_fired": "2026-01-02T03:04:05.123456+00:00",
        "context": {"id": "01JGZ8ZT1E0000000000000000", "parent_id": None, "user_id": "u1"},
    }


def test_iso_to_ns_keeps_every_microsecond():
    assert iso_to_ns("2026-01-02T03:04:05.123456+00:00") == 1767323045123456000
    assert iso_to_ns("2026-01-02T04:04:05.123456+01:00") == 1767323045123456000
    assert iso_to_ns("1970-01-01T00:00:00+00:00") == 0


@pytest.mark.parametrize("bad", [None, 5, "yesterday", "2026-13-01T00:00:00"])
def test_iso_to_ns_rejects_what_is_not_a_timestamp(bad):
    with pytest.raises(NormaliseError):
        iso_to_ns(bad)


def test_a_state_change_keeps_entity_state_attributes_time_and_context():
    event = normalise_event(state_changed())
    assert event == {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": 1767323045123456000,
        "entity_id": "sensor.kitchen_temperature",
        "state": "21.5",
        "attributes": {"unit_of_measurement": "°C"},
        "context_id": "01JGZ8ZT1E0000000000000000",
        "context_user_id": "u1",
    }


def test_the_time_is_the_new_states_last_updated():
    raw = state_changed(last_updated="2026-01-02T03:04:06.000001+00:00")
    assert normalise_event(raw)["time"] == 1767323046000001000


def test_a_removed_entity_gives_nothing_to_store():
    raw = state_changed()
    raw["data"]["new_state"] = None
    assert normalise_event(raw) is None


def test_other_events_keep_their_data_and_time_fired():
    raw = {
        "event_type": "call_service",
        "time_fired": "2026-01-02T03:04:05+00:00",
        "data": {"domain": "light", "service": "turn_on"},
        "origin": "LOCAL",
        "context": {"id": "c1", "parent_id": "p1", "user_id": None},
    }
    assert normalise_event(raw) == {
        "source": "homeassistant",
        "event_type": "call_service",
        "time": 1767323045000000000,
        "data": {"domain": "light", "service": "turn_on"},
        "context_id": "c1",
        "context_parent_id": "p1",
    }


@pytest.mark.parametrize(
    "broken",
    [
        [],
        {"data": {}},
        {"event_type": "state_changed"},
        {"event_type": "state_changed", "data": {"new_state": "on"}},
        {
            "event_type": "state_changed",
            "data": {"new_state": {"entity_id": "nodot", "state": "1"}},
        },
        {
            "event_type": "state_changed",
            "data": {"new_state": {"entity_id": "a.b", "state": 1, "last_updated": "x"}},
        },
    ],
)
def test_events_without_has_shape_are_rejected_with_a_reason(broken):
    with pytest.raises(NormaliseError):
        normalise_event(broken)
