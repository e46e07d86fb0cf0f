"""MQTT payloads to normalised events: pure, I/O-free functions (and one small stateful
assembler) that the MQTT listener calls and tests drive directly.

Formats, chosen per subscription (``MQTT_SUBSCRIPTIONS=filter=format,...``):

``statestream``  HA's ``mqtt_statestream``: ``<base>/<domain>/<object_id>/<leaf>`` where leaf is
                 ``state`` (raw text), ``last_updated``/``last_changed`` (ISO 8601) or an
                 attribute name (JSON-encoded value). One state change arrives as several
                 messages; :class:`StatestreamAssembler` puts them back together.
``eventstream``  HA's ``mqtt_eventstream``: ``{"event_type": ..., "event_data": {...}}``.
``json``         one JSON object per message (Zigbee2MQTT ``zigbee2mqtt/<device>``): nested
                 objects flattened into attributes, device name from the topic.
``value``        a plain number or string payload: the state of ``mqtt.<topic>``.

Timestamps decide whether a redelivered message is harmless. A point's time is part of its
identity in InfluxDB, so a message that carries its own time (statestream ``last_updated``, an
eventstream ``state_changed``'s ``new_state.last_updated`` or ``time_fired``, a json time key)
overwrites itself when the broker delivers it again after a crash. A message stamped with its
*receive* time (a ``value`` payload, json without a time key, statestream without
``publish_timestamps``) becomes a second point when redelivered: at-least-once, not exactly-once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from events import contract
from events.contract import SOURCE_MQTT, STATE_CHANGED
from events.times import InvalidTime, iso_to_ns, ns_to_iso
from listeners.homeassistant.normalise import NormaliseError, normalise_event

FORMATS = ("statestream", "eventstream", "json", "value")
# The domain of entities derived from topics (json and value formats): tags domain=mqtt.
MQTT_DOMAIN = "mqtt"
# HA caps a state at 255 characters; a longer "value" is not a reading but a mis-routed payload.
MAX_STATE_LENGTH = 255
# The state of a json message that has no state key: any non-empty text makes the point schema
# write the message (an empty state is skipped, as HA's influxdb integration does).
JSON_NO_STATE = "reported"
# Device states written in capitals by Zigbee2MQTT ("ON"); lowered so that the schema's
# HA state_as_number gives them a numeric `value` (1/0) a dashboard can graph.
_HA_STATES = frozenset({"on", "off", "open", "closed", "locked", "unlocked"})
_SLUG = re.compile(r"^[a-z0-9_]+$")
_NOT_SLUG = re.compile(r"[^a-z0-9_]+")


class PayloadError(ValueError):
    """The message does not have the shape its subscription's format expects."""


# --- subscriptions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscription:
    topic_filter: str
    format: str

    @property
    def prefix_levels(self) -> int:
        """Topic levels before the filter's first wildcard: what the device name follows."""
        levels = self.topic_filter.split("/")
        for index, level in enumerate(levels):
            if level in ("+", "#"):
                return index
        return len(levels)


def validate_filter(topic_filter: str) -> None:
    """MQTT 3.1.1 §4.7 topic filter rules; ValueError says what is wrong."""
    if not topic_filter or "\x00" in topic_filter:
        raise ValueError("a topic filter must be a non-empty string without NUL")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"{topic_filter!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise ValueError(f"{topic_filter!r}: '+' must be a whole level")


def parse_subscriptions(text: str) -> list[Subscription]:
    """``filter=format,filter=format`` to subscriptions; ValueError names the bad item."""
    subscriptions = []
    for item in (part.strip() for part in text.split(",")):
        topic_filter, sep, fmt = item.rpartition("=")
        topic_filter, fmt = topic_filter.strip(), fmt.strip()
        if not sep or fmt not in FORMATS:
            raise ValueError(f"{item!r} is not filter=format with format one of {FORMATS}")
        validate_filter(topic_filter)
        if any(s.topic_filter == topic_filter for s in subscriptions):
            raise ValueError(f"{topic_filter!r} is listed twice")
        subscriptions.append(Subscription(topic_filter, fmt))
    if not subscriptions:
        raise ValueError("at least one filter=format is needed")
    return subscriptions


# --- shared helpers ---------------------------------------------------------------------------
def decode_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text (binary?)") from None


def decode_json(payload: bytes) -> Any:
    try:
        # orjson reads the bytes (and checks their UTF-8) several times faster than the json
        # module: decoding was a tenth of the listener's CPU. What it refuses and the json module
        # takes (NaN and Infinity, which HA's encoder writes for non-finite floats, lone
        # surrogates, nesting past 1,024 levels) goes through the json module, so those payloads
        # decode as before and bad ones are refused with the json module's message. One
        # difference: integers beyond 64 bits become floats, as in the WebSocket listener.
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    text = decode_text(payload)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("payload JSON is nested too deeply") from None


def slug(name: str) -> str:
    """A name as an HA object id: lower case, runs of other characters become one '_'."""
    return _NOT_SLUG.sub("_", name.lower()).strip("_")


def device_entity_id(subscription: Subscription, topic: str) -> str:
    """``mqtt.<device>``: the topic levels after the filter's fixed prefix (the whole topic
    when nothing follows it), as an object id. Two subscriptions can therefore map different
    topics to one entity only if their device names coincide."""
    levels = topic.split("/")
    device = "/".join(levels[subscription.prefix_levels :]) or topic
    object_id = slug(device)
    if not object_id:
        raise PayloadError(f"no entity id can be made from topic {topic!r}")
    return f"{MQTT_DOMAIN}.{object_id}"


def state_event(entity_id: str, state: str, attributes: dict, time_ns: int) -> dict[str, Any]:
    return contract.state_event(SOURCE_MQTT, entity_id, state, attributes, time_ns)


# Epoch numbers by magnitude: seconds until the year 5138, milliseconds until then, and so on.
_EPOCH_UNITS = ((1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000), (float("inf"), 1))


def time_to_ns(value: Any) -> int:
    """An ISO 8601 string or an epoch number in s, ms, µs or ns (told apart by magnitude)."""
    if isinstance(value, str):
        try:
            return iso_to_ns(value)
        except InvalidTime as exc:
            raise PayloadError(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PayloadError(f"time is neither ISO 8601 nor a positive epoch number: {value!r:.80}")
    for limit, factor in _EPOCH_UNITS:
        if value < limit:
            # Integers stay exact; a float is rounded the same way every time, so a redelivered
            # message still gets the same point time.
            return value * factor if isinstance(value, int) else round(value * factor)
    raise PayloadError(f"time is not a finite number: {value!r:.80}")


# --- statestream ------------------------------------------------------------------------------
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


# --- eventstream ------------------------------------------------------------------------------
def parse_eventstream(payload: bytes, received_ns: int) -> dict[str, Any] | None:
    """HA's eventstream message to a normalised event (None: nothing to store).

    state_changed events carry ``new_state.last_updated`` (the point time, as for the WebSocket
    source); HA's eventstream sends no ``time_fired``, so other events use one when a publisher
    includes it and the receive time otherwise.
    """
    message = decode_json(payload)
    if not isinstance(message, dict):
        raise PayloadError(f"eventstream payload is not a JSON object: {type(message).__name__}")
    event = {
        "event_type": message.get("event_type"),
        "data": message.get("event_data"),
        "time_fired": message.get("time_fired") or _fallback_time(message, received_ns),
    }
    if isinstance(message.get("context"), dict):
        event["context"] = message["context"]
    try:
        return normalise_event(event, source=SOURCE_MQTT)
    except NormaliseError as exc:
        raise PayloadError(str(exc)) from None


def _fallback_time(message: dict[str, Any], received_ns: int) -> str | None:
    """The receive time as ISO 8601, or None when the event does not need it: a state change
    whose new state has its own ``last_updated`` (every one HA publishes) takes its time from
    that, and formatting a stamp nobody reads was a twentieth of the listener's CPU."""
    if message.get("event_type") == STATE_CHANGED:
        data = message.get("event_data")
        new_state = data.get("new_state") if isinstance(data, dict) else None
        if isinstance(new_state, dict) and new_state.get("last_updated"):
            return None
    return ns_to_iso(received_ns)


# --- json -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JsonOptions:
    separator: str = "_"
    state_key: str = "state"
    time_keys: tuple[str, ...] = ()


def flatten(obj: dict[str, Any], separator: str, prefix: str = "") -> dict[str, Any]:
    """Nested objects become ``outer<sep>inner`` keys; lists stay values (written as JSON);
    nulls are left out (no reading)."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, separator, name))
        elif value is not None:
            flat[name] = value
    return flat


def parse_json(
    subscription: Subscription,
    topic: str,
    payload: bytes,
    received_ns: int,
    options: JsonOptions,
) -> dict[str, Any]:
    """One JSON object (a device report) to one state_changed event of ``mqtt.<device>``."""
    message = decode_json(payload)
    if not isinstance(message, dict):
        raise PayloadError(f"json payload is not a JSON object: {type(message).__name__}")
    entity_id = device_entity_id(subscription, topic)
    time_ns = _json_time(message, options.time_keys, received_ns)
    state = _json_state(message.get(options.state_key))
    attributes = flatten(
        _without(message, (options.state_key, *options.time_keys)), options.separator
    )
    return state_event(entity_id, state, attributes, time_ns)


def _without(message: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    drop = set(keys)
    return {k: v for k, v in message.items() if k not in drop}


def _json_time(message: dict[str, Any], keys: Iterable[str], received_ns: int) -> int:
    for key in keys:
        if message.get(key) is not None:
            return time_to_ns(message[key])
    return received_ns


def _json_state(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float, str)) and str(value).strip():
        text = str(value)
        return text.lower() if text.lower() in _HA_STATES else text
    return JSON_NO_STATE


# --- value ------------------------------------------------------------------------------------
def parse_value(
    subscription: Subscription, topic: str, payload: bytes, received_ns: int
) -> dict[str, Any] | None:
    """A bare number or text is the state of ``mqtt.<device>``; an empty payload (how a
    retained message is cleared) is nothing to store."""
    text = decode_text(payload).strip()
    if not text:
        return None
    if text[0] in "{[":
        raise PayloadError("value payload is a JSON object or array: subscribe it as json")
    if len(text) > MAX_STATE_LENGTH:
        raise PayloadError(f"value payload is longer than {MAX_STATE_LENGTH} characters")
    return state_event(device_entity_id(subscription, topic), text, {}, received_ns)
