"""A preloaded past: answered by history in time order, before the start-up states."""

from __future__ import annotations

import pytest

from hasim.preload import preload_history
from hasim.server import HomeAssistantSimulator


def test_history_answers_the_preloaded_past_in_time_order():
    sim = HomeAssistantSimulator(entities=12, rate=0, seed=2)
    assert preload_history(sim, 5000, days=1) == 5000
    started = sim.recorder.started_us
    ids = [e.entity_id for e in sim.entities]
    rows = sim.recorder.history(started - 86_400 * 10**6 - 1, started + 1, ids, False, False)
    assert sum(len(found) for found in rows.values()) == 5000 + len(ids)  # + start-up states
    for found in rows.values():
        stamps = [row["lu"] for row in found]
        assert stamps == sorted(stamps) and stamps[-1] == started / 1e6


def test_a_bounded_run_keeps_its_live_events_and_a_late_preload_is_refused():
    sim = HomeAssistantSimulator(entities=5, rate=0, events=100)
    preload_history(sim, 50)
    assert sim.events == 150
    with pytest.raises(RuntimeError):
        preload_history(sim, 10)
    with pytest.raises(ValueError):
        preload_history(HomeAssistantSimulator(entities=5, rate=0, max_recorded=10), 50)
