"""InfluxDB line protocol, built directly as text.

Building strings is several times cheaper than the client's Point objects, and it keeps every
escaping rule in one small, tested place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# Measurement names escape commas and spaces; tag keys, tag values and field keys also escape
# equals signs. Newlines cannot appear outside string field values at all, so they are written as
# the two characters "\n". Backslashes are doubled so a trailing one never escapes the delimiter.
_MEASUREMENT = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r"})
_KEY = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "=": "\\=", "\n": "\\n", "\r": "\\r"})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})

FieldValue = float | int | bool | str


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    return text.translate(_KEY)


def format_field(value: FieldValue) -> str | None:
    """One field value as line protocol, or None when InfluxDB cannot store it (NaN, inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return f"{value}i"
    return '"' + value.translate(_STRING) + '"'


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time: int
) -> str | None:
    """One point; None when it has no field InfluxDB can store."""
    formatted = []
    for key, value in fields.items():
        text = format_field(value)
        if text is not None:
            formatted.append(f"{escape_key(key)}={text}")
    if not formatted:
        return None
    head = escape_measurement(measurement)
    # Sorted tags are what InfluxDB stores anyway; sending them sorted saves it the work.
    for key in sorted(tags):
        value = tags[key]
        if value != "":
            head += f",{escape_key(key)}={escape_key(value)}"
    return f"{head} {','.join(formatted)} {time}"
