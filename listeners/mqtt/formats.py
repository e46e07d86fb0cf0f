"""MQTT payloads to normalised events: pure, I/O-free functions that the MQTT listener calls
and tests drive directly.

Formats, chosen per subscription (``MQTT_SUBSCRIPTIONS=filter=format,...``,
listeners/mqtt/subscriptions.py):

``statestream``  HA's ``mqtt_statestream``: ``<base>/<domain>/<object_id>/<leaf>`` where leaf is
                 ``state`` (raw text), ``last_updated``/``last_changed`` (ISO 8601) or an
                 attribute name (JSON-encoded value); several messages make one change
                 (listeners/mqtt/statestream.py puts them back together).
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
from dataclasses import dataclass
from typing import Any

import orjson

from events import contract
from events.contract import SOURCE_MQTT, STATE_CHANGED
from events.times import InvalidTime, iso_to_ns, ns_to_iso
from listeners.homeassistant.normalise import NormaliseError, normalise_event
from listeners.mqtt.subscriptions import Subscription

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
_NOT_SLUG = re.compile(r"[^a-z0-9_]+")


class PayloadError(ValueError):
    """The message does not have the shape its subscription's format expects."""


def parse(
    subscription: Subscription,
    topic: str,
    payload: bytes,
    received_ns: int,
    json_options: JsonOptions,
) -> dict[str, Any] | None:
    """One message of an eventstream, json or value subscription to its event (None: nothing
    to store). Statestream messages make events only together: listeners/mqtt/statestream.py."""
    if subscription.format == "eventstream":
        return parse_eventstream(payload, received_ns)
    if subscription.format == "json":
        return parse_json(subscription, topic, payload, received_ns, json_options)
    return parse_value(subscription, topic, payload, received_ns)


# --- shared helpers ---------------------------------------------------------------------------
def decode_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text (binary?)") from None


def decode_json(payload: bytes) -> Any:
    try:
        # orjson reads the bytes (and checks their UTF-8) several times faster than the json
        # module. What it refuses and the json module takes (NaN and Infinity, which HA's
        # encoder writes for non-finite floats, lone surrogates, nesting past 1,024 levels)
        # goes through the json module, so those payloads decode as before and bad ones are
        # refused with the json module's message. One difference: integers beyond 64 bits
        # become floats, as in the WebSocket listener.
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


def kept_payload(payload: bytes) -> str:
    """A bad payload as text an operator can read: invalid UTF-8 as \\x escapes, and NUL
    escaped too, because PostgreSQL text cannot hold it (the dead-letter insert would fail)."""
    return payload.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


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
    that, and formatting a stamp nobody reads costs CPU on the hot path."""
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
