"""Normalised events to InfluxDB points, with the schema of Home Assistant's ``influxdb``
integration by default so existing dashboards keep working. Pure and I/O-free.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tasks.line_protocol import line

# HA's state_as_number (homeassistant/helpers/state.py): these states also get a numeric value.
_STATE_NUMBERS = {
    "on": 1.0,
    "locked": 1.0,
    "above_horizon": 1.0,
    "open": 1.0,
    "home": 1.0,
    "off": 0.0,
    "unlocked": 0.0,
    "unknown": 0.0,
    "below_horizon": 0.0,
    "closed": 0.0,
    "not_home": 0.0,
}
# States HA's integration never writes: they carry no measurement.
_SKIPPED_STATES = {"unknown", "unavailable", ""}
# A text attribute with digits inside also gets a float field, as in HA's integration.
_DIGIT_TAIL = re.compile(r"^[^\.]*\d+\.?\d+[^\.]*$")
_NOT_DECIMAL = re.compile(r"[^\d.]+")


@dataclass(frozen=True)
class SchemaOptions:
    measurement_attr: str = "unit_of_measurement"
    default_measurement: str | None = None
    override_measurement: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    tags_attributes: frozenset[str] = frozenset()
    ignore_attributes: frozenset[str] = frozenset()
    # Improvement over HA: lists and dicts as JSON text instead of Python's repr.
    json_attributes: bool = True
    events_measurement: str = "ha_events"


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any, options: SchemaOptions) -> str:
    if options.json_attributes and isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return str(value)


def _measurement(entity_id: str, attributes: dict[str, Any], options: SchemaOptions) -> str:
    if options.override_measurement:
        return options.override_measurement
    if options.measurement_attr == "entity_id":
        measurement = entity_id
    elif options.measurement_attr == "domain__device_class":
        domain = entity_id.split(".", 1)[0]
        device_class = attributes.get("device_class")
        measurement = domain if device_class is None else f"{domain}__{device_class}"
    else:
        measurement = attributes.get(options.measurement_attr)
    if measurement in (None, ""):
        return options.default_measurement or entity_id
    return str(measurement)


def _state_fields(state: str) -> dict[str, Any]:
    value = _float(state)
    if value is not None:
        return {"value": value}
    number = _STATE_NUMBERS.get(state.lower())
    if number is not None:
        return {"state": state, "value": number}
    return {"state": state}


def _attribute_fields(
    attributes: dict[str, Any],
    fields: dict[str, Any],
    tags: dict[str, str],
    skip: set[str],
    options: SchemaOptions,
) -> None:
    for key, value in attributes.items():
        if key in options.tags_attributes:
            tags[key] = _text(value, options)
            continue
        if key in skip:
            continue
        if key in fields:
            key = f"{key}_"
        number = _float(value) if value is not None else None
        if number is not None:
            if math.isfinite(number):
                fields[key] = number
            continue
        text = "None" if value is None else _text(value, options)
        fields[f"{key}_str"] = text
        if _DIGIT_TAIL.match(text):
            number = _float(_NOT_DECIMAL.sub("", text))
            if number is not None and math.isfinite(number):
                fields[key] = number


def state_point(event: dict[str, Any], options: SchemaOptions) -> str | None:
    state = event["state"]
    if state in _SKIPPED_STATES or state == "unavailable":
        return None
    entity_id = event["entity_id"]
    domain, _, object_id = entity_id.partition(".")
    attributes = event.get("attributes") or {}
    measurement = _measurement(entity_id, attributes, options)
    skip = set(options.ignore_attributes)
    # The attribute that named the measurement is not repeated as a field (HA does the same).
    if options.measurement_attr == "unit_of_measurement" and measurement == str(
        attributes.get("unit_of_measurement")
    ):
        skip.add("unit_of_measurement")
    if options.measurement_attr == "domain__device_class" and "device_class" in attributes:
        skip.add("device_class")
    tags = {"domain": domain, "entity_id": object_id}
    fields = _state_fields(state)
    _attribute_fields(attributes, fields, tags, skip, options)
    tags.update(options.tags)
    return line(measurement, tags, fields, event["time"])


def other_event_point(event: dict[str, Any], options: SchemaOptions) -> str | None:
    data = event.get("data") or {}
    tags = {"event_type": event["event_type"]}
    for key in ("domain", "service"):
        if isinstance(data.get(key), str):
            tags[key] = data[key]
    fields: dict[str, Any] = {"data": json.dumps(data, ensure_ascii=False, sort_keys=True)}
    for key in ("context_id", "context_parent_id", "context_user_id"):
        if event.get(key):
            fields[key] = str(event[key])
    tags.update(options.tags)
    return line(options.events_measurement, tags, fields, event["time"])


def event_to_line(event: dict[str, Any], options: SchemaOptions) -> str | None:
    """One normalised event to one line of line protocol, or None if there is nothing to store."""
    if event.get("event_type") == "state_changed":
        return state_point(event, options)
    return other_event_point(event, options)
