"""Turn a Home Assistant bus event into the one normalised, JSON-serialisable event shape that
every source produces and the write task consumes.

A normalised event is a plain dict (it travels through the broker as JSON):

    source       "homeassistant" | "mqtt"
    event_type   "state_changed", "call_service", ...
    time         int, nanoseconds since the epoch: the new state's ``last_updated`` for state
                 changes (HA sets it equal to ``time_fired``, and history rows carry it, so a live
                 and a backfilled copy of one change are the same point), else ``time_fired``
    entity_id    "sensor.kitchen_temperature" (state changes; absent for other events)
    state        the new state string (state changes)
    attributes   the new state's attributes (state changes)
    data         the event data (other events)
    context_id, context_parent_id, context_user_id   HA's context, when present
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

SOURCE_HOMEASSISTANT = "homeassistant"
STATE_CHANGED = "state_changed"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class NormaliseError(ValueError):
    """The source message does not have the shape of a Home Assistant event."""


def iso_to_ns(value: Any) -> int:
    """HA's ISO 8601 timestamps (microsecond resolution) to integer nanoseconds, exactly."""
    if not isinstance(value, str):
        raise NormaliseError(f"timestamp is not a string: {value!r:.80}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise NormaliseError(f"timestamp is not ISO 8601: {value!r:.80}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float timestamp would round away the microseconds.
    return ((moment - _EPOCH) // _MICROSECOND) * 1000


def _context(event: dict[str, Any], target: dict[str, Any]) -> None:
    context = event.get("context")
    if not isinstance(context, dict):
        return
    for key in ("id", "parent_id", "user_id"):
        value = context.get(key)
        if value:
            target[f"context_{key}"] = value


def normalise_event(event: Any, source: str = SOURCE_HOMEASSISTANT) -> dict[str, Any] | None:
    """Normalise one HA event; ``None`` when there is nothing to store (an entity removed).

    Raises NormaliseError when the event does not have HA's shape.
    """
    if not isinstance(event, dict):
        raise NormaliseError(f"event is not an object: {type(event).__name__}")
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise NormaliseError("event has no event_type")
    data = event.get("data")
    if not isinstance(data, dict):
        raise NormaliseError(f"{event_type} event has no data object")
    if event_type == STATE_CHANGED:
        return _normalise_state_changed(event, data, source)
    normalised = {
        "source": source,
        "event_type": event_type,
        "time": iso_to_ns(event.get("time_fired")),
        "data": data,
    }
    _context(event, normalised)
    return normalised


def _normalise_state_changed(
    event: dict[str, Any], data: dict[str, Any], source: str
) -> dict[str, Any] | None:
    new_state = data.get("new_state")
    if new_state is None:
        return None  # the entity was removed: HA's influxdb integration writes nothing either
    if not isinstance(new_state, dict):
        raise NormaliseError("state_changed new_state is not an object")
    entity_id = new_state.get("entity_id") or data.get("entity_id")
    if not isinstance(entity_id, str) or "." not in entity_id:
        raise NormaliseError(f"state_changed has no valid entity_id: {entity_id!r:.80}")
    state = new_state.get("state")
    attributes = new_state.get("attributes") or {}
    if not isinstance(state, str) or not isinstance(attributes, dict):
        raise NormaliseError(f"{entity_id}: state is not a string or attributes not an object")
    stamp = new_state.get("last_updated") or event.get("time_fired")
    normalised = {
        "source": source,
        "event_type": STATE_CHANGED,
        "time": iso_to_ns(stamp),
        "entity_id": entity_id,
        "state": state,
        "attributes": attributes,
    }
    _context(new_state if "context" in new_state else event, normalised)
    return normalised


UNPARSEABLE = "__unparseable__"
# A bad message is kept for the operator, but not a huge one in full.
MAX_KEPT_PAYLOAD = 64 * 1024


def unparseable_event(source: str, payload: str | bytes, error: str, context: str = "") -> dict:
    """A marker that travels with the batch so the worker records the message as a dead letter
    (category ``unparseable``): the same durable path as good data, and no database in the
    listener."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="backslashreplace")
    return {
        "source": source,
        "event_type": UNPARSEABLE,
        "payload": payload[:MAX_KEPT_PAYLOAD],
        "error": error,
        "context": context,
    }
