"""Making any frame Home Assistant (or something pretending to be it) sends safe to log and keep."""

from __future__ import annotations

import json
from typing import Any

import orjson

from events.codec import safe_text
from events.contract import MAX_KEPT_PAYLOAD


def head(value: Any) -> str:
    """The start of a value for a log line, whatever it is (bytes, deep nesting)."""
    if isinstance(value, bytes):
        return value[:200].decode("utf-8", errors="backslashreplace")
    if isinstance(value, str):
        return value[:200]
    return safe_text(value, 200)


def text_of(value: Any) -> str:
    """A value as JSON text for its dead letter, or a bounded repr when JSON cannot hold it."""
    try:
        return json.dumps(value, default=str)[:MAX_KEPT_PAYLOAD]
    except (ValueError, TypeError, RecursionError):
        return safe_text(value, MAX_KEPT_PAYLOAD)


def unportable(item: Any) -> str | None:
    """Why a decoded message cannot travel as exact JSON, or None when it can."""
    try:
        json.dumps(item, allow_nan=False)
    except ValueError:
        return "message holds NaN or an infinite number, which JSON cannot carry"
    except RecursionError:
        return "message is nested too deeply"
    try:
        orjson.dumps(item)
    except TypeError:
        return "message holds text that is not valid UTF-8 (a lone surrogate)"
    return None


def decode_leniently(raw: str | bytes) -> tuple[list[Any], list[tuple[str, str]]]:
    """A frame orjson refused, read by the json module (which takes NaN, 1e400 and lone
    surrogates): the messages that can travel as exact JSON, and the text and reason of each
    that cannot. Raises ValueError when the frame is not JSON at all."""
    try:
        message = json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    items, aside = [], []
    for item in message if isinstance(message, list) else [message]:
        problem = unportable(item)
        if problem is None:
            items.append(item)
        else:
            aside.append((text_of(item), problem))
    return items, aside
