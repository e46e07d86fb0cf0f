"""Normalised events to InfluxDB points. Pure and I/O-free.

By default the points are exactly those of Home Assistant's ``influxdb`` integration, so existing
dashboards keep working (the behaviour each rule pins is written up in
docs/ha-influxdb-parity.md). Where that integration loses data or poisons batches we do better,
each improvement switchable in SchemaOptions:

- list and dict attributes as JSON text instead of Python's repr (``json_attributes``);
- ``unknown``/``unavailable`` optionally kept as a ``state`` string (``write_unavailable``);
- non-finite numbers are dropped everywhere, including ``value`` (HA writes NaN, which
  InfluxDB rejects with the whole batch);
- field types never change under one name: ``value`` is always a float, ``state`` always text,
  an attribute ``x`` is always a float and ``x_str`` always text (attributes named ``state`` or
  ``value`` are always renamed ``state_``/``value_``, a number under a name ending in ``_str``
  gets ``_num`` appended, and ``time`` becomes ``time_``);
- names InfluxDB cannot store never reach it (see tasks/line_protocol.py): the attribute is
  left out and reported, the measurement falls back to the entity id;
- events other than ``state_changed`` are stored in their own measurement.

Every event takes one path: ``convert`` applies HA's rules (what ``state_point`` and
``event_point`` return) and builds the line. A state's series (everything of its point but the
state) is remembered per SchemaOptions, by entity and attributes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from events.contract import STATE_CHANGED
from tasks.attributes import add_attributes, as_float
from tasks.line_protocol import (
    Unrepresentable,
    check_time,
    field_set,
    representable_tag_value,
    series_key,
)
from tasks.overrides import EntityOverrides, bounded_put

# HA's state_as_number (homeassistant/helpers/state.py): exact, case-sensitive matches.
STATE_NUMBERS = {
    "on": 1.0, "locked": 1.0, "above_horizon": 1.0, "open": 1.0, "home": 1.0,
    "off": 0.0, "unlocked": 0.0, "unknown": 0.0, "below_horizon": 0.0, "closed": 0.0,
    "not_home": 0.0,
}  # fmt: skip
UNAVAILABLE_STATES = ("unknown", "unavailable")
PRECISION_DIVISORS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
MEASUREMENT_ATTRS = ("unit_of_measurement", "domain__device_class", "entity_id")
EVENTS_MEASUREMENT = "ha_events"
# Tags whose values HA bounds itself (a fixed list of domains, the home's entities, the event
# types integrations define): a cardinality cap would only merge real data.
UNCAPPED_TAGS = frozenset({"domain", "entity_id", "event_type"})
CONTEXT_FIELDS = ("context_id", "context_parent_id", "context_user_id")
# Per SchemaOptions; cleared when full, so odd data cannot grow it without limit.
MAX_MEMO_SERIES = 20_000

TagGuard = Callable[[str, str], str]
Parts = tuple[str, dict[str, str], dict[str, Any]]  # measurement, tags, fields


@dataclass(frozen=True)
class SchemaOptions:
    measurement_attr: str = "unit_of_measurement"
    default_measurement: str | None = None
    override_measurement: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    tags_attributes: frozenset[str] = frozenset()
    ignore_attributes: frozenset[str] = frozenset()
    overrides: EntityOverrides = field(default_factory=EntityOverrides)
    precision: str = "ns"
    json_attributes: bool = True
    write_unavailable: bool = False
    events_measurement: str = EVENTS_MEASUREMENT
    # Keys of event data that become tags of other events: bounded vocabularies only.
    event_tag_keys: tuple[str, ...] = ("domain", "service")
    # State series already worked out under these options (see _series); a copy starts empty.
    _series_memo: dict[tuple[str, bytes | None], _Series] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


@dataclass
class Conversion:
    """The line for one event (None: nothing to store) and what had to be left out, and why."""

    line: str | None
    problems: list[str] = field(default_factory=list)


# --- HA's rules: what a point carries ----------------------------------------------------------


def _measurement(
    entity_id: str, attributes: Mapping[str, Any], override: Any, options: SchemaOptions
) -> tuple[str, bool, bool]:
    """(measurement, include_uom, include_device_class) as HA's integration decides them."""
    if override not in (None, ""):
        return str(override), True, True
    if options.override_measurement:
        return options.override_measurement, True, True
    include_dc = True
    if options.measurement_attr == "entity_id":
        measurement: Any = entity_id
    elif options.measurement_attr == "domain__device_class":
        device_class = attributes.get("device_class")
        domain = entity_id.split(".", 1)[0]
        measurement = domain if device_class is None else f"{domain}__{device_class}"
        include_dc = device_class is None
    else:
        measurement = attributes.get(options.measurement_attr)
    if measurement in (None, ""):
        return options.default_measurement or entity_id, True, include_dc
    return str(measurement), options.measurement_attr != "unit_of_measurement", include_dc


def _state_inputs(
    event: Mapping[str, Any], options: SchemaOptions
) -> tuple[dict[str, Any], Mapping[str, Any] | None] | None:
    """(the state's own fields, the attributes its series comes from: None for the bare series
    of an unavailable state), or None when HA skips the state altogether."""
    state = event["state"]
    if state in UNAVAILABLE_STATES or state == "":
        return ({"state": state}, None) if options.write_unavailable and state else None
    attributes = event.get("attributes") or {}
    value = as_float(state)
    if value is not None:
        return {"value": value}, attributes
    number = STATE_NUMBERS.get(state)
    if number is not None:
        return {"state": state, "value": number}, attributes
    return {"state": state}, attributes


def _skipped(
    entity_config: Mapping[str, Any], options: SchemaOptions, include_uom: bool, include_dc: bool
) -> set[str]:
    ignored = entity_config.get("ignore_attributes") or ()
    skip = {ignored} if isinstance(ignored, str) else set(ignored)
    skip |= options.ignore_attributes
    if not include_uom:
        skip.add("unit_of_measurement")
    if not include_dc:
        skip.add("device_class")
    return skip


def _series_parts(
    entity_id: str, attributes: Mapping[str, Any] | None, options: SchemaOptions
) -> Parts:
    """(measurement, tags, attribute fields): everything of a state's point but its state."""
    domain, _, object_id = entity_id.partition(".")
    tags = {"domain": domain, "entity_id": object_id}
    fields: dict[str, Any] = {}
    if attributes is None:
        return entity_id, {**tags, **options.tags}, fields
    entity_config = options.overrides.get(entity_id)
    measurement, include_uom, include_dc = _measurement(
        entity_id, attributes, entity_config.get("override_measurement"), options
    )
    # The state's fields (value, state) never collide with these: both names are reserved.
    add_attributes(
        attributes,
        skip=_skipped(entity_config, options, include_uom, include_dc),
        tag_names=options.tags_attributes,
        json_attributes=options.json_attributes,
        tags=tags,
        fields=fields,
    )
    tags.update(options.tags)
    return measurement, tags, fields


def state_point(event: Mapping[str, Any], options: SchemaOptions) -> Parts | None:
    """(measurement, tags, fields) HA's rules give a state change, or None when it is skipped:
    what ``convert`` writes, before names InfluxDB cannot store are left out."""
    inputs = _state_inputs(event, options)
    if inputs is None:
        return None
    state_fields, attributes = inputs
    measurement, tags, fields = _series_parts(event["entity_id"], attributes, options)
    return measurement, tags, {**state_fields, **fields}


def event_point(event: Mapping[str, Any], options: SchemaOptions) -> Parts:
    """(measurement, tags, fields) of an event other than a state change."""
    data = event.get("data") or {}
    tags = {"event_type": event["event_type"]}
    for key in options.event_tag_keys:
        value = data.get(key)
        if isinstance(value, str) and representable_tag_value(value):
            tags[key] = value
    fields: dict[str, Any] = {
        "data": json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    }
    for key in CONTEXT_FIELDS:
        if event.get(key):
            fields[key] = str(event[key])
    tags.update(options.tags)
    return options.events_measurement, tags, fields


# --- line protocol -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Series:
    """What a state's point owes to its entity and attributes, formatted once."""

    measurement: str  # after the fallbacks
    tags: dict[str, str]
    capped: tuple[tuple[str, str], ...]  # the tags a cardinality guard may change
    head: str  # measurement and tags as line protocol
    fields: str  # the attribute fields as line protocol ("" when none)
    field_problems: tuple[str, ...]
    head_problems: tuple[str, ...]


# orjson refuses these types instead of converting them: such attributes are never remembered.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _all_finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a JSON value (lights' attributes hold nulls when off)."""
    kind = type(value)
    if kind is float:
        return value - value == 0.0
    if kind is dict:
        return all(_all_finite(item) for item in value.values())
    if kind is list:
        return all(_all_finite(item) for item in value)
    return True


def _series(
    entity_id: str, attributes: Mapping[str, Any] | None, options: SchemaOptions
) -> _Series:
    """A state change's series, remembered: most changes repeat their entity's last attributes.

    The key is the attributes' orjson text, which tells apart everything the conversion does,
    except that NaN, infinity and None all become null: text holding null counts only when all
    is finite. Attributes orjson refuses are worked out every time.
    """
    key: tuple[str, bytes | None] | None = None
    if attributes is None:
        key = (entity_id, None)
    elif type(attributes) is dict:
        try:
            text = orjson.dumps(attributes, option=_PASSTHROUGH)
        except TypeError:
            text = None
        if text is not None and (b"null" not in text or _all_finite(attributes)):
            key = (entity_id, text)
    if key is not None:
        found = options._series_memo.get(key)
        if found is not None:
            return found
    measurement, tags, fields = _series_parts(entity_id, attributes, options)
    field_problems: list[str] = []
    formatted = field_set(fields, field_problems)
    head_problems: list[str] = []
    measurement, head = _state_head(measurement, tags, entity_id, options, head_problems)
    capped = tuple((k, v) for k, v in tags.items() if k not in UNCAPPED_TAGS)
    series = _Series(
        measurement,
        tags,
        capped,
        head,
        ",".join(formatted),
        tuple(field_problems),
        tuple(head_problems),
    )
    if key is not None:
        bounded_put(options._series_memo, key, series, MAX_MEMO_SERIES)
    return series


def _state_head(
    measurement: str,
    tags: Mapping[str, str],
    entity_id: str,
    options: SchemaOptions,
    problems: list[str],
) -> tuple[str, str]:
    """A state's measurement and tags; the events measurement is not a state's to use (its
    fields are text there, a state's would conflict with them)."""
    if measurement == options.events_measurement:
        problems.append(
            f"measurement {measurement!r} is the events measurement; "
            f"written to {entity_id!r} instead"
        )
        measurement = entity_id
    return _head(measurement, tags, entity_id, problems)


def _head(
    measurement: str, tags: Mapping[str, str], fallback: str, problems: list[str]
) -> tuple[str, str]:
    """(measurement, measurement and tags as line protocol); a measurement InfluxDB cannot store
    falls back to ``fallback``, and says so."""
    try:
        return measurement, series_key(measurement, tags, problems)
    except Unrepresentable as exc:
        if exc.what != "measurement":
            raise
        problems.append(f"{exc}; written to measurement {fallback!r} instead")
        return fallback, series_key(fallback, tags, problems)


def _state_line(
    event: Mapping[str, Any], options: SchemaOptions, guard: TagGuard | None, problems: list[str]
) -> str | None:
    inputs = _state_inputs(event, options)
    if inputs is None:
        return None
    state_fields, attributes = inputs
    time = event["time"] // PRECISION_DIVISORS[options.precision]
    check_time(time)
    series = _series(event["entity_id"], attributes, options)
    formatted = field_set(state_fields, problems)
    problems.extend(series.field_problems)
    if series.fields:
        formatted.append(series.fields)
    if not formatted:
        return None
    problems.extend(series.head_problems)
    head = series.head
    if guard is not None and series.capped:
        changed = {key: guard(key, value) for key, value in series.capped}
        if any(changed[key] != value for key, value in series.capped):
            head = series_key(series.measurement, {**series.tags, **changed}, [])
    return f"{head} {','.join(formatted)} {time}"


def _event_line(
    event: Mapping[str, Any], options: SchemaOptions, guard: TagGuard | None, problems: list[str]
) -> str | None:
    measurement, tags, fields = event_point(event, options)
    if guard is not None:
        tags = {key: guard(key, value) for key, value in tags.items()}
    time = event["time"] // PRECISION_DIVISORS[options.precision]
    check_time(time)
    formatted = field_set(fields, problems)
    if not formatted:
        return None
    _, head = _head(measurement, tags, EVENTS_MEASUREMENT, problems)
    return f"{head} {','.join(formatted)} {time}"


def convert(
    event: Mapping[str, Any], options: SchemaOptions, guard: TagGuard | None = None
) -> Conversion:
    """One normalised event to one line; Unrepresentable only for an impossible timestamp."""
    problems: list[str] = []
    if event.get("event_type") == STATE_CHANGED:
        return Conversion(_state_line(event, options, guard, problems), problems)
    return Conversion(_event_line(event, options, guard, problems), problems)
