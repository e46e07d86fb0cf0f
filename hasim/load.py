"""The generated load: a seeded sequence of HA events, as the JSON subscribers get and as dicts.

The JSON is assembled from pre-serialised pieces instead of dumping a dict per event, so one core
writes tens of thousands of events a second.
"""

from __future__ import annotations

import bisect
import random
from typing import Any

from hasim.codec import IsoStamps, Ulids, dumps, now_us, quote
from hasim.entities import Entity, make_entities
from hasim.poison import KINDS, PoisonMaker

# (event type, event dict or None when nothing is recorded, event JSON)
Generated = tuple[str, dict[str, Any] | None, str]


class EventSource:
    """A home of `entities` entities changing state, plus service calls and automation runs.

    Separate random streams, so which entity comes next never depends on how the events were
    split into time slices: the same seed gives the same sequence of changes.
    """

    def __init__(
        self,
        entities: int,
        seed: int,
        other_events_ratio: float,
        record: bool,
        poison_ratio: float = 0.0,
        poison_kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.other_events_ratio = other_events_ratio
        # Poison records come from random streams of their own: with the ratio at 0 the
        # sequence of ordinary events is exactly what it was without them.
        self.poison_ratio = poison_ratio
        self._poison_rng = random.Random(f"{seed}:poison-pick")
        self._poison = PoisonMaker(seed, poison_kinds)
        # Building the event dicts (and the garbage collector tracking them) is half the cost
        # of an event, so it is skipped when nothing is recorded.
        self.record = record
        self._pick_rng = random.Random(f"{seed}:pick")
        self._kind_rng = random.Random(f"{seed}:kind")
        self._value_rng = random.Random(f"{seed}:value")
        self._stamp = IsoStamps()
        self._ulid = Ulids(random.Random(f"{seed}:ulid"))
        self.entities = make_entities(entities, self._value_rng)
        switchable = [e for e in self.entities if e.domain in ("switch", "light")]
        self._switchable = switchable or self.entities
        weights, total = [], 0.0
        for entity in self.entities:
            total += entity.weight
            weights.append(total)
        self._cum_weights = weights
        self._user_id = self._value_rng.randbytes(16).hex()
        self.started_us = now_us()
        self.initial = {e.entity_id: self._initial_state(e, self.started_us) for e in self.entities}
        self._slice_us = self._last_us = self.started_us

    def _initial_state(self, entity: Entity, us: int) -> dict[str, Any]:
        stamp = self._stamp(us)
        context = {"id": self._ulid(us), "parent_id": None, "user_id": None}
        entity.last_changed = stamp
        entity.state = {
            "entity_id": entity.entity_id,
            "state": entity.text,
            "attributes": entity.attributes,
            "last_changed": stamp,
            "last_reported": stamp,
            "last_updated": stamp,
            "context": context,
        }
        entity.state_json = dumps(entity.state)
        return entity.state

    def restart_slices(self) -> None:
        """The next events are spread from now: a wait before generating is not filled in."""
        self._slice_us = now_us()

    def spread(self, count: int) -> list[int]:
        """Timestamps for `count` events between the last slice and now, strictly increasing
        (bumped by 1 µs where the clock has not moved), so each entity's are too."""
        now = now_us()
        start, last = self._slice_us, self._last_us
        span = max(now - start, 0)
        stamps = []
        for k in range(1, count + 1):
            us = start + span * k // count
            if us <= last:
                us = last + 1
            stamps.append(us)
            last = us
        self._last_us, self._slice_us = last, max(now, last)
        return stamps

    def next_event(self, us: int) -> Generated:
        if self.poison_ratio and self._poison_rng.random() < self.poison_ratio:
            cid = self._ulid(us)
            context_json = f'{{"id":"{cid}","parent_id":null,"user_id":null}}'
            record, text = self._poison.make(self._stamp(us), us, context_json)
            return "state_changed", record, text
        if self.other_events_ratio and self._kind_rng.random() < self.other_events_ratio:
            event = self._other_event(us)
            return event["event_type"], event, dumps(event)
        index = bisect.bisect_right(
            self._cum_weights, self._pick_rng.random() * self._cum_weights[-1]
        )
        return self._state_changed(self.entities[min(index, len(self.entities) - 1)], us)

    def _state_changed(self, entity: Entity, us: int) -> Generated:
        stamp = self._stamp(us)
        text, attributes, attributes_json = entity.next_state(self._value_rng)
        last_changed = stamp if text != entity.text else entity.last_changed
        cid = self._ulid(us)
        context_json = f'{{"id":"{cid}","parent_id":null,"user_id":null}}'
        eid = entity.entity_id
        new_json = (
            f'{{"entity_id":"{eid}","state":{quote(text)},"attributes":{attributes_json},'
            f'"last_changed":"{last_changed}","last_reported":"{stamp}",'
            f'"last_updated":"{stamp}","context":{context_json}}}'
        )
        event_json = (
            f'{{"event_type":"state_changed","data":{{"entity_id":"{eid}",'
            f'"old_state":{entity.state_json},"new_state":{new_json}}},"origin":"LOCAL",'
            f'"time_fired":"{stamp}","context":{context_json}}}'
        )
        event = None
        new_state = None
        if self.record:
            # The same objects, as dicts, for the record.
            context = {"id": cid, "parent_id": None, "user_id": None}
            new_state = {
                "entity_id": eid,
                "state": text,
                "attributes": attributes,
                "last_changed": last_changed,
                "last_reported": stamp,
                "last_updated": stamp,
                "context": context,
            }
            event = {
                "event_type": "state_changed",
                "data": {"entity_id": eid, "old_state": entity.state, "new_state": new_state},
                "origin": "LOCAL",
                "time_fired": stamp,
                "context": context,
            }
        entity.text, entity.last_changed = text, last_changed
        entity.state, entity.state_json = new_state, new_json
        return "state_changed", event, event_json

    def _other_event(self, us: int) -> dict[str, Any]:
        rng = self._kind_rng
        if rng.random() < 0.6:
            data, parent, user = self._service_call(rng), None, self._user_id
        else:
            data, parent, user = self._automation_run(rng)
        return {
            "event_type": "call_service" if "service" in data else "automation_triggered",
            "data": data,
            "origin": "LOCAL",
            "time_fired": self._stamp(us),
            "context": {"id": self._ulid(us), "parent_id": parent, "user_id": user},
        }

    def _service_call(self, rng: random.Random) -> dict[str, Any]:
        entity = rng.choice(self._switchable)
        service = rng.choice(("turn_on", "turn_off", "toggle"))
        service_data: dict[str, Any] = {"entity_id": entity.entity_id}
        if entity.domain == "light" and service == "turn_on":
            service_data["brightness_pct"] = rng.randrange(1, 101)
        return {"domain": entity.domain, "service": service, "service_data": service_data}

    def _automation_run(self, rng: random.Random) -> tuple[dict[str, Any], str, None]:
        # An automation's run context has the triggering state's context as its parent.
        trigger = rng.choice(self.entities)
        object_id = trigger.entity_id.split(".", 1)[1]
        data = {
            "name": f"React to {trigger.attributes.get('friendly_name') or object_id}",
            "entity_id": f"automation.react_to_{object_id}",
            "source": f"state of {trigger.entity_id}",
        }
        return data, trigger.state["context"]["id"], None
