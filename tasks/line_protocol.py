"""InfluxDB line protocol, built directly as text.

Building strings is several times cheaper than the client's Point objects, and it keeps every
escaping rule in one small, tested place. The rules were checked against a real InfluxDB 1.x:

- In measurement names, tag keys, tag values and field keys a backslash is only an escape when a
  comma, equals sign or space follows, so backslashes are left alone and those three escaped.
- No identifier can hold a newline or carriage return, end in a backslash (it would escape the
  delimiter after it), hold a lone UTF-16 surrogate (not encodable as UTF-8) or be empty; a
  measurement cannot start with "#" (the line would be read as a comment and silently dropped);
  "time" is refused as a tag or field key.
- In measurement names and field keys InfluxDB takes a backslash before a comma, space, equals
  sign or quote as an escape whatever precedes it, and skips leading whitespace or NUL: such
  names cannot round-trip and are refused (tests/tasks/test_schema_properties.py).
- String field values escape backslashes and double quotes; newlines are fine inside them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})

FieldValue = float | int | bool | str


class Unrepresentable(ValueError):
    """A name or value line protocol cannot carry; ``reason`` says which rule it breaks."""

    category = "unrepresentable"

    def __init__(self, what: str, text: str, reason: str) -> None:
        super().__init__(f"{what} {text[:80]!r} {reason}")
        self.what, self.reason = what, reason


# What field_set says of NaN and infinities; events_to_lines counts events it empties.
NON_FINITE = "not a finite number"


class TimeOutOfRange(Unrepresentable):
    """An event time InfluxDB cannot store (before 1677 or after 2262): a clock problem."""

    category = "clock"


_BACKSLASH_ESCAPE = re.compile(r'\\[, ="]')
# The newest/oldest nanosecond timestamps InfluxDB accepts.
MIN_TIME, MAX_TIME = -(2**63) + 2, 2**63 - 2


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_identifier(what: str, text: str) -> None:
    if not text:
        raise Unrepresentable(what, text, "is empty")
    if "\n" in text or "\r" in text:
        raise Unrepresentable(what, text, "contains a line break")
    if text[-1] == "\\":
        raise Unrepresentable(what, text, "ends with a backslash")
    if not encodable(text):
        raise Unrepresentable(what, text, "holds a lone surrogate (not UTF-8)")


def _check_name(what: str, text: str) -> None:
    """Measurement names and field keys: the stricter rules of InfluxDB's parser."""
    _check_identifier(what, text)
    if text[0].isspace() or text[0] == "\x00":
        raise Unrepresentable(what, text, "starts with whitespace or NUL (InfluxDB skips it)")
    if "\\" in text and _BACKSLASH_ESCAPE.search(text):
        raise Unrepresentable(what, text, "has a backslash before , = space or quote")


# Names repeat endlessly (the same fields, tags and entities in every batch), so their escaped
# form is remembered (docs/benchmarks.md, "Point conversion"); bounded against odd data.
@lru_cache(maxsize=65536)
def escape_measurement(name: str) -> str:
    _check_name("measurement", name)
    if name[0] == "#":
        raise Unrepresentable("measurement", name, "starts with '#' (a comment line)")
    return name.translate(_MEASUREMENT)


@lru_cache(maxsize=65536)
def escape_key(text: str, what: str = "key") -> str:
    if what == "field key":
        _check_name(what, text)
    else:
        _check_identifier(what, text)
    if text == "time":
        raise Unrepresentable(what, text, "is reserved by InfluxDB")
    return text.translate(_KEY)


@lru_cache(maxsize=65536)
def escape_tag_value(text: str) -> str:
    _check_identifier("tag value", text)
    return text.translate(_KEY)


def representable_tag_value(text: str) -> bool:
    return (
        bool(text)
        and "\n" not in text
        and "\r" not in text
        and text[-1] != "\\"
        and encodable(text)
    )


def format_field(value: FieldValue) -> str | None:
    """One field value as line protocol, or None when InfluxDB cannot store it (NaN, inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return f"{value}i"
    if not encodable(value):
        raise Unrepresentable("field value", value, "holds a lone surrogate (not UTF-8)")
    if "\\" in value or '"' in value:
        value = value.translate(_STRING)
    return f'"{value}"'


def check_time(time: int) -> None:
    if not MIN_TIME <= time <= MAX_TIME:
        raise TimeOutOfRange("time", str(time), "is outside InfluxDB's range")


def field_set(fields: Mapping[str, FieldValue], problems: list[str]) -> list[str]:
    """The fields as ``key=value`` items; one InfluxDB cannot store is left out and described."""
    formatted = []
    for key, value in fields.items():
        try:
            text = format_field(value)
            if text is not None:
                formatted.append(f"{escape_key(key, 'field key')}={text}")
            else:
                problems.append(f"field {key[:60]!r} left out: {NON_FINITE}")
        except Unrepresentable as exc:
            problems.append(f"field {key[:60]!r} left out: {exc.what} {exc.reason}")
    return formatted


def series_key(measurement: str, tags: Mapping[str, str], problems: list[str]) -> str:
    """Measurement and tags; a tag InfluxDB cannot store is left out and described, an
    unstorable measurement raises Unrepresentable."""
    head = escape_measurement(measurement)
    # Sorted tags are what InfluxDB stores anyway; sending them sorted saves it the work.
    for key in sorted(tags):
        value = tags[key]
        if value != "":
            try:
                head += f",{escape_key(key, 'tag key')}={escape_tag_value(value)}"
            except Unrepresentable as exc:
                problems.append(f"tag {key[:60]!r} left out: {exc.what} {exc.reason}")
    return head
