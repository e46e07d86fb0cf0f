"""InfluxDB line protocol, built directly as text.

Building strings is several times cheaper than the client's Point objects, and it keeps every
escaping rule in one small, tested place. The rules were checked against a real InfluxDB 1.x:

- In measurement names, tag keys, tag values and field keys a backslash is only an escape when a
  comma, equals sign or space follows, so backslashes are left alone and those three escaped.
- No identifier can hold a newline or carriage return, end in a backslash (it would escape the
  delimiter after it) or be empty; a measurement cannot start with "#" (the line would be read
  as a comment and silently dropped); "time" is refused as a tag or field key.
- String field values escape backslashes and double quotes; newlines are fine inside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})
# Nanosecond timestamps InfluxDB stores: a signed 64-bit integer.
MIN_TIME, MAX_TIME = -(2**63) + 2, 2**63 - 1

FieldValue = float | int | bool | str


class Unrepresentable(ValueError):
    """A name or value line protocol cannot carry; ``reason`` says which rule it breaks."""

    category = "unrepresentable"

    def __init__(self, what: str, text: str, reason: str) -> None:
        super().__init__(f"{what} {text[:80]!r} {reason}")
        self.what, self.reason = what, reason


def _check_identifier(what: str, text: str) -> None:
    if not text:
        raise Unrepresentable(what, text, "is empty")
    if "\n" in text or "\r" in text:
        raise Unrepresentable(what, text, "contains a line break")
    if text[-1] == "\\":
        raise Unrepresentable(what, text, "ends with a backslash")


# Names repeat endlessly (the same fields, tags and entities in every batch): remembering their
# escaped form halves the cost of a point. Bounded, so odd data cannot grow it without limit.
@lru_cache(maxsize=65536)
def escape_measurement(name: str) -> str:
    _check_identifier("measurement", name)
    if name[0] == "#":
        raise Unrepresentable("measurement", name, "starts with '#' (a comment line)")
    return name.translate(_MEASUREMENT)


@lru_cache(maxsize=65536)
def escape_key(text: str, what: str = "key") -> str:
    _check_identifier(what, text)
    if text == "time":
        raise Unrepresentable(what, text, "is reserved by InfluxDB")
    return text.translate(_KEY)


@lru_cache(maxsize=65536)
def escape_tag_value(text: str) -> str:
    _check_identifier("tag value", text)
    return text.translate(_KEY)


def representable_tag_value(text: str) -> bool:
    return bool(text) and "\n" not in text and "\r" not in text and text[-1] != "\\"


def format_field(value: FieldValue) -> str | None:
    """One field value as line protocol, or None when InfluxDB cannot store it (NaN, inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return f"{value}i"
    if "\\" in value or '"' in value:
        value = value.translate(_STRING)
    return f'"{value}"'


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time: int
) -> str | None:
    """One point; None when it has no field InfluxDB can store. Raises Unrepresentable."""
    if not MIN_TIME <= time <= MAX_TIME:
        raise Unrepresentable("time", str(time), "is outside InfluxDB's range")
    formatted = []
    for key, value in fields.items():
        text = format_field(value)
        if text is not None:
            formatted.append(f"{escape_key(key, 'field key')}={text}")
    if not formatted:
        return None
    head = escape_measurement(measurement)
    # Sorted tags are what InfluxDB stores anyway; sending them sorted saves it the work.
    for key in sorted(tags):
        value = tags[key]
        if value != "":
            head += f",{escape_key(key, 'tag key')}={escape_tag_value(value)}"
    return f"{head} {','.join(formatted)} {time}"
