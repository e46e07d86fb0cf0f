"""Turn a Home Assistant bus event into the event of the contract (``events.contract``)."""

from __future__ import annotations

from typing import Any

from events.contract import SOURCE_HOMEASSISTANT, STATE_CHANGED, bus_event, state_event
from events.times import InvalidTime
from events.times import iso_to_ns as _iso_to_ns


class NormaliseError(ValueError):
    """The source message does not have the shape of a Home Assistant event."""


def iso_to_ns(value: Any) -> int:
    try:
        return _iso_to_ns(value)
    except InvalidTime as exc:
        raise NormaliseError(str(exc)) from None


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
    normalised = bus_event(source, event_type, data, iso_to_ns(event.get("time_fired")))
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
    normalised = state_event(source, entity_id, state, attributes, iso_to_ns(stamp))
    _context(new_state if "context" in new_state else event, normalised)
    return normalised
