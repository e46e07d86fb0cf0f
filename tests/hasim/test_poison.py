"""Poison records: what a hostile or broken Home Assistant sends, exactly as written on the wire,
and nothing of it unless asked for."""

from __future__ import annotations

import json

from hasim.load import EventSource
from hasim.poison import DEEP_LEVELS, KINDS, PoisonMaker


def generate(source: EventSource, count: int) -> list:
    return [source.next_event(us) for us in source.spread(count)]


def changes(events: list) -> list[tuple[str, str]]:
    found = []
    for kind, record, _text in events:
        if kind == "state_changed" and "poison" not in record:
            found.append((record["data"]["entity_id"], record["data"]["new_state"]["state"]))
    return found


def test_poison_never_changes_the_sequence_of_ordinary_events():
    plain = generate(EventSource(20, 5, 0.0, record=True), 400)
    mixed = generate(EventSource(20, 5, 0.0, record=True, poison_ratio=0.3), 400)
    assert all("poison" not in text for _, _, text in plain)
    ordinary = changes(mixed)
    assert len(ordinary) < 400
    assert ordinary == changes(plain)[: len(ordinary)]


def test_every_kind_is_written_as_promised():
    maker = PoisonMaker(1, KINDS)
    context = '{"id":"X","parent_id":null,"user_id":null}'
    seen = {}
    for n in range(200):
        record, text = maker.make("2026-01-01T00:00:00.000001+00:00", 1_000_000 + n, context)
        seen.setdefault(record["poison"], (record, text))
    assert set(seen) == set(KINDS)
    assert '"nested":' + "[" * DEEP_LEVELS in seen["deep"][1]
    assert "\\ud800" in seen["surrogate"][1]
    assert len(seen["huge"][1]) > 1_000_000
    assert '"reading":NaN' in seen["nan"][1]
    assert '"last_updated":"2200-01-01T' in seen["future"][1]
    assert '"last_updated":"9999-12-31T' in seen["far_future"][1]
    assert seen["far_future"][0]["time_ns"] is None
    # The ones a lenient decoder reads are HA events naming their own entity.
    event = json.loads(seen["nan"][1])
    assert event["data"]["new_state"]["entity_id"] == seen["nan"][0]["data"]["entity_id"]
    assert event["data"]["entity_id"].startswith("sensor.poison_nan_")


def test_a_poison_ratio_mixes_poison_into_the_load_with_entities_of_their_own():
    source = EventSource(20, 5, 0.0, record=True, poison_ratio=0.2)
    events = generate(source, 500)
    poison = [record for _, record, _ in events if "poison" in record]
    assert 50 < len(poison) < 150
    ordinary = {e.entity_id for e in source.entities}
    assert not {p["data"]["entity_id"] for p in poison} & ordinary
