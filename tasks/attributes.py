"""Home Assistant attribute values to InfluxDB fields, as HA's ``influxdb`` integration maps them
(docs/ha-influxdb-parity.md), with field types that never change under one name."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from tasks.line_protocol import representable_tag_value

# Names a state's own fields use; an attribute of that name is renamed.
RESERVED_FIELDS = frozenset({"state", "value"})
# HA tests text with ^[^\.]*\d+\.?\d+[^\.]*$, which backtracks catastrophically on long digit
# runs; this is the same predicate in linear time (docs/benchmarks.md, "Point conversion").
_TWO_DIGITS = re.compile(r"\d\d")
_DIGIT_DOT_DIGIT = re.compile(r"\d\.\d")
_NOT_DECIMAL = re.compile(r"[^\d.]+")


def has_digit_tail(text: str) -> bool:
    """No dot and two adjacent digits somewhere, or one dot with a digit on each side."""
    dots = text.count(".")
    if dots == 0:
        return _TWO_DIGITS.search(text) is not None
    return dots == 1 and _DIGIT_DOT_DIGIT.search(text) is not None


def as_float(value: Any) -> float | None:
    """Python's float() as HA applies it: bools and ints count, huge ints do not."""
    if isinstance(value, (bool, int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str):
        # float() reads only whitespace, a sign, digits, "." or inf/nan first: refuse other text
        # without paying for a raised ValueError.
        if value[:1].isalpha() and value[0] not in "iInN":
            return None
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_text(value: Any, json_attributes: bool) -> str:
    if json_attributes and isinstance(value, (list, dict)):
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
        )
    return str(value)


def _field_name(key: str, fields: Mapping[str, Any]) -> str:
    if key in fields or key in RESERVED_FIELDS:
        key = f"{key}_"
    return "time_" if key == "time" else key


def _add_attribute(key: str, value: Any, fields: dict[str, Any], json_attributes: bool) -> None:
    key = _field_name(key, fields)
    number = as_float(value)
    if number is not None:
        if math.isfinite(number):
            fields[f"{key}_num" if key.endswith("_str") else key] = number
        return
    text = as_text(value, json_attributes)
    fields[f"{key}_str"] = text
    if has_digit_tail(text):
        number = as_float(_NOT_DECIMAL.sub("", text))
        if number is not None and math.isfinite(number):
            fields[f"{key}_num" if key.endswith("_str") else key] = number


def add_attributes(
    attributes: Mapping[str, Any],
    *,
    skip: Collection[str],
    tag_names: Collection[str],
    json_attributes: bool,
    tags: dict[str, str],
    fields: dict[str, Any],
) -> None:
    """Each attribute into ``tags`` (named in ``tag_names`` and storable as a tag) or ``fields``."""
    for key, value in attributes.items():
        if key in tag_names:
            text = as_text(value, json_attributes)
            if representable_tag_value(text):
                tags[key] = text
                continue
        if key not in skip:
            _add_attribute(key, value, fields, json_attributes)
