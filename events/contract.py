"""The one event shape every source produces and the write task consumes.

An event is a plain dict (it travels through the broker as JSON):

    source       "homeassistant" | "mqtt"
    event_type   "state_changed", "call_service", ... (or UNPARSEABLE, see below)
    time         int, nanoseconds since the epoch: the new state's ``last_updated`` for state
                 changes (HA sets it equal to ``time_fired``, and history rows carry it, so a live
                 and a backfilled copy of one change are the same point), else ``time_fired``
    entity_id    "sensor.kitchen_temperature" (state changes; absent for other events)
    state        the new state string (state changes)
    attributes   the new state's attributes (state changes)
    data         the event data (other events)
    context_id, context_parent_id, context_user_id   HA's context, when present
    backfilled   True when the event came from HA's history rather than the live stream
    redelivered  True when the source's broker delivered the message again (MQTT DUP): a dead
                 letter it may have become already is found rather than recorded twice
"""

from __future__ import annotations

from typing import Any

SOURCE_HOMEASSISTANT = "homeassistant"
SOURCE_MQTT = "mqtt"
STATE_CHANGED = "state_changed"
# A source message a listener could not parse travels as a marker event of this type, so the
# worker keeps it as a dead letter: the same durable path as good data, no database in listeners.
UNPARSEABLE = "__unparseable__"
# A bad message is kept for the operator, but not a huge one in full.
MAX_KEPT_PAYLOAD = 64 * 1024


def state_event(
    source: str,
    entity_id: str,
    state: str,
    attributes: dict[str, Any],
    time_ns: int,
    *,
    backfilled: bool = False,
) -> dict[str, Any]:
    event = {
        "source": source,
        "event_type": STATE_CHANGED,
        "time": time_ns,
        "entity_id": entity_id,
        "state": state,
        "attributes": attributes,
    }
    if backfilled:
        event["backfilled"] = True
    return event


def bus_event(source: str, event_type: str, data: dict[str, Any], time_ns: int) -> dict[str, Any]:
    """Any event other than a state change: its data is stored as it came."""
    return {"source": source, "event_type": event_type, "time": time_ns, "data": data}


def unparseable_event(source: str, payload: str | bytes, error: str, context: str = "") -> dict:
    """A marker for a source message that could not be parsed (kept as a dead letter)."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="backslashreplace")
    return {
        "source": source,
        "event_type": UNPARSEABLE,
        "payload": payload[:MAX_KEPT_PAYLOAD],
        "error": error,
        "context": context,
    }
