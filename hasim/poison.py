"""Poison records: state changes no sane Home Assistant sends, for the chaos run.

Each one has an entity of its own (``sensor.poison_<kind>_<n>``, never in ``get_states`` or the
history), so whatever becomes of it — a point, a dead letter — can be traced back to it by name.
The JSON is written by hand: a NaN literal or a lone surrogate cannot come out of an encoder.
"""

from __future__ import annotations

import random
from typing import Any

# Deeper than any JSON encoder writes (orjson stops at 255 levels), shallower than orjson's
# decoder limit of 1024 once the frame, message and event levels are added.
DEEP_LEVELS = 1000
# What the issue measured: 140 such events made a batch RabbitMQ refused.
HUGE_BYTES = 1024 * 1024

KINDS = ("deep", "surrogate", "huge", "future", "far_future", "nan")


def poison_entity(kind: str, number: int) -> str:
    return f"sensor.poison_{kind}_{number:06d}"


class PoisonMaker:
    """One poison state change at a time, kinds drawn from its own seeded stream."""

    def __init__(self, seed: int | str, kinds: tuple[str, ...] = KINDS) -> None:
        self._rng = random.Random(f"{seed}:poison")
        self.kinds = kinds
        self.count = 0

    def make(self, stamp: str, us: int, context_json: str) -> tuple[dict[str, Any], str]:
        """(the record kept for reconciliation, the event JSON as sent)."""
        kind = self._rng.choice(self.kinds)
        self.count += 1
        eid = poison_entity(kind, self.count)
        state, attributes, updated = '"1.5"', '{"friendly_name":"poison"}', stamp
        time_ns: int | None = us * 1000
        if kind == "deep":
            attributes = '{"nested":' + "[" * DEEP_LEVELS + "]" * DEEP_LEVELS + "}"
        elif kind == "surrogate":
            state = '"bad \\ud800 text"'
        elif kind == "huge":
            attributes = '{"blob":"' + "x" * HUGE_BYTES + '"}'
        elif kind == "nan":
            attributes = '{"reading":NaN,"friendly_name":"poison"}'
        elif kind == "future":
            # Unique per record, so two of them are never one point.
            updated = f"2200-01-01T00:00:00.{self.count % 1_000_000:06d}+00:00"
            time_ns = (7_258_118_400 * 1_000_000 + self.count % 1_000_000) * 1000
        elif kind == "far_future":
            updated = f"9999-12-31T23:59:59.{self.count % 1_000_000:06d}+00:00"
            time_ns = None  # beyond what a 64-bit nanosecond timestamp holds
        new_json = (
            f'{{"entity_id":"{eid}","state":{state},"attributes":{attributes},'
            f'"last_changed":"{updated}","last_reported":"{updated}",'
            f'"last_updated":"{updated}","context":{context_json}}}'
        )
        event_json = (
            f'{{"event_type":"state_changed","data":{{"entity_id":"{eid}",'
            f'"old_state":null,"new_state":{new_json}}},"origin":"LOCAL",'
            f'"time_fired":"{stamp}","context":{context_json}}}'
        )
        record = {
            "event_type": "state_changed",
            "data": {"entity_id": eid, "new_state": None},
            "time_fired": stamp,
            "poison": kind,
            "time_ns": time_ns,
        }
        return record, event_json
