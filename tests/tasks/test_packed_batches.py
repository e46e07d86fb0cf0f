"""A batch travels as one JSON text (events.codec.pack_events); the task
unpacks it, or keeps what cannot be unpacked as a dead letter."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from events.codec import pack_events, unpack_events
from tasks import celery_tasks
from tasks.models import Category, FailedWrite

EVENTS = [
    {"event_type": "state_changed", "entity_id": "sensor.a", "state": "21.5 °C", "time": 1},
    {"event_type": "call_service", "data": {"domain": "light", "n": [1, 2.5, None]}, "time": 2},
]


@pytest.mark.parametrize("exact_orjson", [True, False])
def test_a_packed_batch_unpacks_to_the_same_events(exact_orjson):
    packed = pack_events(EVENTS, exact_orjson=exact_orjson)
    assert isinstance(packed, str)
    assert unpack_events(packed) == EVENTS


def test_values_orjson_cannot_write_fall_back_to_the_json_module():
    events = [{"attributes": {"big": 10**30, "nan": math.nan}}]
    unpacked = unpack_events(pack_events(events, exact_orjson=True))
    assert unpacked[0]["attributes"]["big"] == 10**30
    assert math.isnan(unpacked[0]["attributes"]["nan"])


def test_non_finite_numbers_survive_the_json_module_path():
    events = [{"attributes": {"x": math.inf, "y": -math.inf, "z": math.nan}}]
    attributes = unpack_events(pack_events(events, exact_orjson=False))[0]["attributes"]
    assert attributes["x"] == math.inf and attributes["y"] == -math.inf
    assert math.isnan(attributes["z"])


def test_a_plain_list_is_taken_as_it_is():
    assert unpack_events(EVENTS) is EVENTS


@pytest.mark.django_db
def test_a_batch_that_does_not_unpack_is_kept_as_a_dead_letter():
    task = SimpleNamespace(request=SimpleNamespace(retries=0), max_retries=5)
    assert celery_tasks._write(task, '[{"event_type": "state_changed", ', "batch-7", {}) == 0
    letter = FailedWrite.objects.get()
    assert letter.category == Category.UNPARSEABLE
    assert letter.payload.startswith('[{"event_type"')
    assert "packed batch is not JSON" in letter.error
