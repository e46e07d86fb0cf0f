"""HA's ``mqtt_statestream``: one message per topic ``<base>/<domain>/<object_id>/<leaf>``, where
leaf is ``state`` (raw text), ``last_updated``/``last_changed`` (ISO 8601) or an attribute name
(JSON-encoded value). One state change arrives as several messages; :class:`StatestreamAssembler`
puts them back together into one state_changed event.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from listeners.mqtt.formats import PayloadError, decode_text, state_event, time_to_ns

_SLUG = re.compile(r"^[a-z0-9_]+$")
STATE_LEAF, LAST_UPDATED, LAST_CHANGED = "state", "last_updated", "last_changed"


@dataclass(frozen=True)
class StatestreamPart:
    """One statestream message: which entity, which leaf, the decoded value."""

    entity_id: str
    leaf: str
    value: Any


def parse_statestream(topic: str, payload: bytes) -> StatestreamPart:
    """``.../<domain>/<object_id>/<leaf>``: the last three levels, whatever the base topic
    (HA lets it have any depth)."""
    levels = topic.split("/")
    if len(levels) < 3:
        raise PayloadError(f"topic {topic!r} is not <base>/<domain>/<object_id>/<leaf>")
    domain, object_id, leaf = levels[-3:]
    if not (_SLUG.match(domain) and _SLUG.match(object_id)) or not leaf:
        raise PayloadError(f"topic {topic!r} does not name an entity: <domain>/<object_id>/<leaf>")
    text = decode_text(payload)
    if leaf == STATE_LEAF:
        value: Any = text
    elif leaf in (LAST_UPDATED, LAST_CHANGED):
        value = time_to_ns(text.strip())
    else:
        value = _attribute_value(text)
    return StatestreamPart(f"{domain}.{object_id}", leaf, value)


def _attribute_value(text: str) -> Any:
    # HA publishes attributes JSON-encoded; other publishers of this layout may send bare text.
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


@dataclass
class _Change:
    """The messages of one entity's state change, while more of them may still arrive."""

    received_ns: int
    touched_at: float
    has_state: bool = False
    last_updated: int | None = None
    tokens: list[Any] = field(default_factory=list)


@dataclass
class Assembled:
    """A finished change: its event (None when there is nothing to store) and the tokens of
    every message that went into it."""

    event: dict[str, Any] | None
    tokens: list[Any]


class StatestreamAssembler:
    """Reassembles HA statestream messages into state_changed events.

    HA publishes one change as ``state``, then ``last_updated`` and ``last_changed`` (with
    ``publish_timestamps``), then *every* attribute (with ``publish_attributes``), each a retained
    QoS-1 message, back to back. Retained copies delivered on subscribe arrive in the broker's
    topic order instead. The rule, which works for both orders:

    - every message for an entity joins that entity's open change (opening one if needed);
    - a second ``state`` or ``last_updated`` for an open change starts a new change (the old one
      is finished first): that is the next state change of the entity;
    - a change is finished once no message for its entity has arrived for ``settle`` seconds;
    - a finished change yields an event only when it holds a ``state`` or ``last_updated``
      message; attribute-only messages update the entity's attributes for the next event;
    - the event carries the entity's latest state and *all* attributes seen so far (HA's own
      influxdb integration writes all current attributes with every point), and its time is the
      change's ``last_updated`` when one arrived, else the receive time of its first message.

    Tokens are opaque (the listener passes its acknowledgement records): a token is returned
    with the change it went into, so its message is acknowledged only once that change's event
    is safe.
    """

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.states: dict[str, str] = {}
        self.attributes: dict[str, dict[str, Any]] = {}
        self.open: dict[str, _Change] = {}

    def add(
        self, part: StatestreamPart, token: Any, now: float, received_ns: int, live: bool = False
    ) -> list[Assembled]:
        """Take one message; return the changes it finished (at most one).

        ``live``: published now, not a retained copy. Live, HA sends ``state`` first, so a
        ``state`` after a ``last_updated`` is the next change; retained copies arrive in topic
        order (``last_updated`` before ``state``), where that is not so.
        """
        finished = []
        change = self.open.get(part.entity_id)
        if change is not None and _starts_next_change(change, part.leaf, live):
            finished.append(self._finish(part.entity_id))
            change = None
        if change is None:
            change = self.open[part.entity_id] = _Change(received_ns, now)
        self._apply(part, change)
        change.tokens.append(token)
        change.touched_at = now
        return finished

    def _apply(self, part: StatestreamPart, change: _Change) -> None:
        if part.leaf == STATE_LEAF:
            self.states[part.entity_id] = part.value
            change.has_state = True
        elif part.leaf == LAST_UPDATED:
            change.last_updated = part.value
        elif part.leaf != LAST_CHANGED:  # last_changed is not part of a point
            self.attributes.setdefault(part.entity_id, {})[part.leaf] = part.value

    def due(self, now: float) -> list[Assembled]:
        """Finish every change that has been quiet for the settle window."""
        quiet = [e for e, c in self.open.items() if now - c.touched_at >= self.settle]
        return [self._finish(entity_id) for entity_id in quiet]

    def flush(self) -> list[Assembled]:
        """Finish every open change (shutdown)."""
        return [self._finish(entity_id) for entity_id in list(self.open)]

    def _finish(self, entity_id: str) -> Assembled:
        change = self.open.pop(entity_id)
        state = self.states.get(entity_id)
        if state is None or not (change.has_state or change.last_updated is not None):
            return Assembled(None, change.tokens)
        time_ns = change.last_updated if change.last_updated is not None else change.received_ns
        attributes = dict(self.attributes.get(entity_id, {}))
        return Assembled(state_event(entity_id, state, attributes, time_ns), change.tokens)


def _starts_next_change(change: _Change, leaf: str, live: bool) -> bool:
    if leaf == STATE_LEAF:
        # Without the live rule, one stall longer than the settle window (state finished
        # alone, its last_updated then opening a change) paired every later state of the
        # entity with the previous change's timestamp.
        return change.has_state or (live and change.last_updated is not None)
    return leaf == LAST_UPDATED and change.last_updated is not None
