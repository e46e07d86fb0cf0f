"""A recorder history from before the simulator started: a large synthetic past to import.

The past is generated on a copy of the home's entities (the same ids, its own random stream),
so the live generator's sequence of changes is the same with or without a preloaded past.
"""

from __future__ import annotations

import random
from typing import Any

from hasim.codec import IsoStamps, Ulids
from hasim.entities import make_entities
from hasim.server import HomeAssistantSimulator

DAY_US = 86_400 * 1_000_000


def preload_history(
    sim: HomeAssistantSimulator, states: int, days: float = 30.0, seed: int = 0
) -> int:
    """Record ``states`` state changes spread over the ``days`` before the simulator started.

    Call it before anything is generated (before the first subscriber, or with ``rate=0``).
    The events count as generated but never delivered: history answers them, live never did.
    ``sim.events``, when it bounds the run, is raised by ``states`` so the live run is unchanged.
    Returns the number of state changes recorded.
    """
    recorder = sim.recorder
    if recorder.count:
        raise RuntimeError("preload_history must run before the simulator generates events")
    if recorder.max_recorded is not None and recorder.max_recorded < states:
        raise ValueError("max_recorded is smaller than the history to preload")
    rng = random.Random(f"{seed}:preload")
    entities = make_entities(len(sim.entities), random.Random(f"{seed}:preload-values"))
    stamp, ulid = IsoStamps(), Ulids(random.Random(f"{seed}:preload-ulid"))
    start_us = recorder.started_us - int(days * DAY_US)
    span = recorder.started_us - start_us
    last_changed: dict[str, str] = {}
    for k in range(states):
        # Strictly increasing and before the start-up states, one microsecond apart at least.
        us = start_us + span * k // states
        entity = entities[rng.randrange(len(entities))]
        text, attributes, _ = entity.next_state(rng)
        moment = stamp(us)
        if text != entity.text or entity.entity_id not in last_changed:
            last_changed[entity.entity_id] = moment
        entity.text = text
        event = _state_changed(entity.entity_id, text, attributes, moment, last_changed, ulid(us))
        recorder.record(event, us)
    if sim.events is not None:
        sim.events += states
    return states


def _state_changed(
    entity_id: str,
    text: str,
    attributes: dict[str, Any],
    moment: str,
    last_changed: dict[str, str],
    context_id: str,
) -> dict[str, Any]:
    context = {"id": context_id, "parent_id": None, "user_id": None}
    new_state = {
        "entity_id": entity_id,
        "state": text,
        "attributes": attributes,
        "last_changed": last_changed[entity_id],
        "last_reported": moment,
        "last_updated": moment,
        "context": context,
    }
    return {
        "event_type": "state_changed",
        # old_state is left out: history never answers it, and 100k copies cost memory.
        "data": {"entity_id": entity_id, "old_state": None, "new_state": new_state},
        "origin": "LOCAL",
        "time_fired": moment,
        "context": context,
    }
