"""The task-body codec of the ingest path: JSON written and read by orjson.

Profiles of the pipeline at full rate put kombu's JSON codec (the json module plus an object
hook run on every dict) at 17 % of the listener's CPU and 22 % of a worker's. Bodies are still
plain JSON text, only under a content type of their own so a consumer picks the matching decoder.

Exact for what the Home Assistant listener publishes: its events were decoded by orjson, and
orjson writes back everything it reads. Two things it cannot write are handled:
- values orjson refuses (integers beyond 64 bits, non-string keys) make the body fall back to
  the json module's text, which the decoder recognises by orjson failing on it;
- orjson writes a non-finite float as null, silently. A source whose decoder can yield NaN or
  infinity (the json module's, as the MQTT listener's) must keep the "json" serializer, so the
  schema sees the value and drops it with its reason instead of receiving a null.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

import orjson
from kombu.serialization import register

from events.contract import MAX_KEPT_PAYLOAD, unparseable_event
from events.times import ns_to_iso

ORJSON = "orjson"
CONTENT_TYPE = "application/x-ingest-orjson"


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate is valid in Python's str but not in UTF-8: escape it instead.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return _json_text(value).encode()


def loads(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # The json module's fallback text (NaN, Infinity or a huge integer in it).
        return json.loads(body)


def pack_events(events: list[dict[str, Any]], *, exact_orjson: bool) -> str:
    """A batch as one JSON text: the write task's first argument.

    Celery's worker decodes a task's body in its main process (to fill the request), pickles
    the decoded arguments down a pipe to the pool process, which decodes the body again: three
    passes over every event, two of them building objects. One string argument makes those a
    copy, and the pool process decodes the events once (measured at 13,000 events/s: the
    worker's main process went from 42 % to 22 % of a core). ``exact_orjson`` as for the
    serializers above: only for events that hold no NaN or infinity.
    """
    return dumps(events).decode() if exact_orjson else _json_text(events)


def unpack_events(events: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of a write task's first argument: packed text, or a plain list (tasks queued
    by an earlier version, replays and tests)."""
    if isinstance(events, str):
        return loads(events)
    return events


def register_orjson() -> None:
    register(ORJSON, dumps, loads, content_type=CONTENT_TYPE, content_encoding="binary")


def safe_text(event: Any, limit: int) -> str:
    """Some text of an event that cannot be packed, for the operator: reprlib bounds both the
    depth and the size, so even a 1000-deep value gives a short answer without recursing."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxdict, shown.maxlist = 12, 200, 200
    shown.maxstring, shown.maxother, shown.maxlong = 2000, 200, 200
    return shown.repr(event)[:limit]


def _set_aside(event: dict[str, Any], error: str, text: str, category: str) -> dict[str, Any]:
    """The marker that travels instead of an event that cannot travel itself."""
    stamp = event.get("time")
    when = ns_to_iso(stamp) if type(stamp) is int and 0 <= stamp < 2**62 else stamp
    where = " ".join(str(value) for value in (event.get("entity_id"), when) if value is not None)
    marker = unparseable_event(str(event.get("source", "")), text, error, where)
    marker["category"] = category
    if event.get("redelivered"):
        marker["redelivered"] = True
    return marker


def _pack_or_none(events: list[dict[str, Any]], exact_orjson: bool) -> str | None:
    try:
        return pack_events(events, exact_orjson=exact_orjson)
    except (ValueError, TypeError, RecursionError, UnicodeError, OverflowError):
        # Deeper nesting than the encoders take, lone surrogates, values JSON cannot carry.
        return None


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def pack_capped(
    events: list[dict[str, Any]], *, exact_orjson: bool, max_bytes: int
) -> list[tuple[list[dict[str, Any]], str]]:
    """The batch packed as one or more task bodies of at most ``max_bytes`` each.

    A batch too big for the broker (RabbitMQ refuses messages over its frame limit) is split
    in halves until it fits; one event that is too big on its own, or cannot be written as JSON
    at all, is replaced by a marker the worker keeps as a dead letter, so the rest flows.
    """
    packed = _pack_or_none(events, exact_orjson)
    if packed is not None and (len(packed) * 4 <= max_bytes or _size(packed) <= max_bytes):
        return [(events, packed)]
    if len(events) > 1:
        middle = len(events) // 2
        return pack_capped(
            events[:middle], exact_orjson=exact_orjson, max_bytes=max_bytes
        ) + pack_capped(events[middle:], exact_orjson=exact_orjson, max_bytes=max_bytes)
    if not events:
        return []
    event = events[0]
    if packed is None:
        marker = _set_aside(
            event,
            "event cannot be written as JSON (too deeply nested or holds invalid text)",
            safe_text(event, MAX_KEPT_PAYLOAD),
            "unparseable",
        )
    else:
        marker = _set_aside(
            event,
            f"event is {_size(packed)} bytes, over the batch cap of {max_bytes} bytes "
            f"(INGEST_MAX_BATCH_BYTES); its first {MAX_KEPT_PAYLOAD} characters are kept",
            packed[:MAX_KEPT_PAYLOAD],
            "too_large",
        )
    return [([marker], pack_events([marker], exact_orjson=False))]
