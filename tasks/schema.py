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
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from tasks.line_protocol import (
    Unrepresentable,
    check_time,
    field_set,
    representable_tag_value,
    series_key,
)

# HA's state_as_number (homeassistant/helpers/state.py): exact, case-sensitive matches.
STATE_NUMBERS = {
    "on": 1.0, "locked": 1.0, "above_horizon": 1.0, "open": 1.0, "home": 1.0,
    "off": 0.0, "unlocked": 0.0, "unknown": 0.0, "below_horizon": 0.0, "closed": 0.0,
    "not_home": 0.0,
}  # fmt: skip
UNAVAILABLE_STATES = ("unknown", "unavailable")
# A text attribute with digits inside also gets a float field, as in HA's integration, whose
# test is the regex ^[^\.]*\d+\.?\d+[^\.]*$. That regex backtracks catastrophically on long
# digit runs (800 digits: minutes), so the same predicate is computed in linear time: no dot
# and two adjacent digits somewhere, or exactly one dot with a digit on each side of it.
_TWO_DIGITS = re.compile(r"\d\d")
_DIGIT_DOT_DIGIT = re.compile(r"\d\.\d")


def has_digit_tail(text: str) -> bool:
    dots = text.count(".")
    if dots == 0:
        return _TWO_DIGITS.search(text) is not None
    return dots == 1 and _DIGIT_DOT_DIGIT.search(text) is not None


_NOT_DECIMAL = re.compile(r"[^\d.]+")
PRECISION_DIVISORS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
MEASUREMENT_ATTRS = ("unit_of_measurement", "domain__device_class", "entity_id")
RESERVED_FIELDS = frozenset({"state", "value"})
# Tags whose values HA bounds itself (a fixed list of domains, the home's entities, the event
# types integrations define): a cardinality cap would only merge real data.
UNCAPPED_TAGS = frozenset({"domain", "entity_id", "event_type"})


@dataclass(frozen=True)
class EntityOverrides:
    """HA's component_config / _domain / _glob: per-key merge, domain < glob < entity."""

    entities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    domains: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    globs: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    def __post_init__(self) -> None:
        patterns = tuple((re.compile(fnmatch.translate(g)), cfg) for g, cfg in self.globs)
        object.__setattr__(self, "_patterns", patterns)
        object.__setattr__(self, "get", lru_cache(maxsize=65536)(self._lookup))

    def _lookup(self, entity_id: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        merged.update(self.domains.get(entity_id.split(".", 1)[0], {}))
        for pattern, cfg in self._patterns:  # type: ignore[attr-defined]
            if pattern.match(entity_id):
                merged.update(cfg)
        merged.update(self.entities.get(entity_id, {}))
        return merged


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
    events_measurement: str = "ha_events"
    # Keys of event data that become tags of other events: bounded vocabularies only.
    event_tag_keys: tuple[str, ...] = ("domain", "service")

    def __post_init__(self) -> None:
        # Series of state changes already worked out, by entity and attributes (see _series).
        object.__setattr__(self, "series_memo", {})


@dataclass
class Conversion:
    """The line for one event (None: nothing to store) and what had to be left out, and why."""

    line: str | None
    problems: list[str] = field(default_factory=list)


TagGuard = Callable[[str, str], str]


def _float(value: Any) -> float | None:
    """Python's float() as HA applies it: bools and ints count, huge ints do not."""
    if isinstance(value, (bool, int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str):
        # float() reads only whitespace, a sign, digits, "." or inf/nan/infinity first: most
        # text ("on", "Kitchen", "mdi:lamp") is refused here, without a raised ValueError.
        if value[:1].isalpha() and value[0] not in "iInN":
            return None
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any, options: SchemaOptions) -> str:
    if options.json_attributes and isinstance(value, (list, dict)):
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
        )
    return str(value)


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


def _state_fields(state: str) -> dict[str, Any]:
    value = _float(state)
    if value is not None:
        return {"value": value}
    number = STATE_NUMBERS.get(state)
    if number is not None:
        return {"state": state, "value": number}
    return {"state": state}


def _field_name(key: str, fields: Mapping[str, Any]) -> str:
    if key in fields or key in RESERVED_FIELDS:
        key = f"{key}_"
    return "time_" if key == "time" else key


def _add_attribute(key: str, value: Any, fields: dict[str, Any], options: SchemaOptions) -> None:
    key = _field_name(key, fields)
    number = _float(value)
    if number is not None:
        if math.isfinite(number):
            fields[f"{key}_num" if key.endswith("_str") else key] = number
        return
    text = _text(value, options)
    fields[f"{key}_str"] = text
    if has_digit_tail(text):
        number = _float(_NOT_DECIMAL.sub("", text))
        if number is not None and math.isfinite(number):
            fields[f"{key}_num" if key.endswith("_str") else key] = number


def _attributes(
    attributes: Mapping[str, Any],
    skip: set[str],
    tags: dict[str, str],
    fields: dict[str, Any],
    options: SchemaOptions,
) -> None:
    for key, value in attributes.items():
        if key in options.tags_attributes:
            text = _text(value, options)
            if representable_tag_value(text):
                tags[key] = text
                continue
        if key not in skip:
            _add_attribute(key, value, fields, options)


def _ignored(entity_config: Mapping[str, Any], options: SchemaOptions) -> set[str]:
    ignored = entity_config.get("ignore_attributes") or ()
    if isinstance(ignored, str):
        ignored = (ignored,)
    return set(ignored) | options.ignore_attributes


def state_fields_and_tags(event: Mapping[str, Any], options: SchemaOptions):
    """(measurement, tags, fields) of a state change, or None when HA would skip it."""
    state, entity_id = event["state"], event["entity_id"]
    if state in UNAVAILABLE_STATES or state == "":
        if not (options.write_unavailable and state):
            return None
        domain, _, object_id = entity_id.partition(".")
        return (
            entity_id,
            {"domain": domain, "entity_id": object_id, **options.tags},
            {"state": state},
        )
    attributes = event.get("attributes") or {}
    measurement, tags, attribute_fields = _series_parts(entity_id, attributes, options)
    return measurement, tags, {**_state_fields(state), **attribute_fields}


def _series_parts(entity_id: str, attributes: Mapping[str, Any], options: SchemaOptions):
    """(measurement, tags, attribute fields): everything of a state's point but its state."""
    domain, _, object_id = entity_id.partition(".")
    tags = {"domain": domain, "entity_id": object_id}
    entity_config = options.overrides.get(entity_id)  # type: ignore[operator]
    measurement, include_uom, include_dc = _measurement(
        entity_id, attributes, entity_config.get("override_measurement"), options
    )
    skip = _ignored(entity_config, options)
    if not include_uom:
        skip.add("unit_of_measurement")
    if not include_dc:
        skip.add("device_class")
    # The state's fields (value, state) never collide with these: both names are reserved.
    fields: dict[str, Any] = {}
    _attributes(attributes, skip, tags, fields, options)
    tags.update(options.tags)
    return measurement, tags, fields


@dataclass(frozen=True)
class _Series:
    """What a state's point owes to its entity and attributes, formatted once."""

    measurement: str  # after the fallbacks
    tags: dict[str, str]
    capped: tuple[tuple[str, str], ...]  # the tags a cardinality guard may change
    head: str  # measurement and tags as line protocol
    fields: str  # the attribute fields as line protocol ("" when none)
    field_problems: tuple[str, ...]
    head_problems: tuple[str, ...]


# Per SchemaOptions; cleared when full, so odd data cannot grow it without limit.
MAX_MEMO_SERIES = 20_000
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _series(entity_id: str, attributes: Mapping[str, Any], options: SchemaOptions) -> _Series:
    """A state change's series and attribute fields, remembered by entity and attributes.

    Most state changes of an entity carry the same attributes as its last one, so their
    measurement, tags and attribute fields are worked out once (measured: half a worker's CPU
    per event). The key is the attributes' orjson text, which tells apart everything the
    conversion does, except that NaN, infinity and None all become null: attributes whose text
    holds "null" are remembered only when they hold no NaN or infinity. Values that are not
    JSON's (datetimes, subclasses, dataclasses) are refused by orjson here, and those attributes
    are worked out every time, as are any orjson cannot write.
    """
    key = None
    if type(attributes) is dict:
        try:
            text = orjson.dumps(attributes, option=_PASSTHROUGH)
        except TypeError:
            text = None
        if text is not None and (b"null" not in text or _all_finite(attributes)):
            key = (entity_id, text)
            found = options.series_memo.get(key)  # type: ignore[attr-defined]
            if found is not None:
                return found
    measurement, tags, fields = _series_parts(entity_id, attributes, options)
    field_problems: list[str] = []
    formatted = field_set(fields, field_problems)
    head_problems: list[str] = []
    if measurement == options.events_measurement:
        # Its fields (data, context_id) are text there; a state's would conflict with them.
        head_problems.append(
            f"measurement {measurement!r} is the events measurement; "
            f"written to {entity_id!r} instead"
        )
        measurement = entity_id
    measurement, head = _series_head(measurement, tags, entity_id, head_problems)
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
        memo = options.series_memo  # type: ignore[attr-defined]
        if len(memo) >= MAX_MEMO_SERIES:
            memo.clear()
        memo[key] = series
    return series


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


def _state_line(
    event: Mapping[str, Any], options: SchemaOptions, guard: TagGuard | None, problems: list[str]
) -> str | None:
    time = event["time"] // PRECISION_DIVISORS[options.precision]
    check_time(time)
    series = _series(event["entity_id"], event.get("attributes") or {}, options)
    formatted = field_set(_state_fields(event["state"]), problems)
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


def _event_fields_and_tags(event: Mapping[str, Any], options: SchemaOptions):
    data = event.get("data") or {}
    tags = {"event_type": event["event_type"]}
    for key in options.event_tag_keys:
        value = data.get(key)
        if isinstance(value, str) and representable_tag_value(value):
            tags[key] = value
    fields: dict[str, Any] = {
        "data": json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    }
    for key in ("context_id", "context_parent_id", "context_user_id"):
        if event.get(key):
            fields[key] = str(event[key])
    tags.update(options.tags)
    return options.events_measurement, tags, fields


def _build(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, Any],
    time: int,
    fallback: str,
    problems: list[str],
) -> str | None:
    """Line protocol, leaving out what InfluxDB cannot store and saying why."""
    check_time(time)
    formatted = field_set(fields, problems)
    if not formatted:
        return None
    _, head = _series_head(measurement, tags, fallback, problems)
    return f"{head} {','.join(formatted)} {time}"


def _series_head(
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


def convert(
    event: Mapping[str, Any], options: SchemaOptions, guard: TagGuard | None = None
) -> Conversion:
    """One normalised event to one line; Unrepresentable only for an impossible timestamp."""
    problems: list[str] = []
    if event.get("event_type") == "state_changed":
        state = event["state"]
        if state not in UNAVAILABLE_STATES and state != "":
            return Conversion(_state_line(event, options, guard, problems), problems)
        parts = state_fields_and_tags(event, options)
        fallback = event["entity_id"]
    else:
        parts = _event_fields_and_tags(event, options)
        fallback = "ha_events"
    if parts is None:
        return Conversion(None, problems)
    measurement, tags, fields = parts
    if fallback != "ha_events" and measurement == options.events_measurement:
        # Its fields (data, context_id) are text there; a state's would conflict with them.
        problems.append(
            f"measurement {measurement!r} is the events measurement; "
            f"written to {fallback!r} instead"
        )
        measurement = fallback
    if guard is not None:
        tags = {key: guard(key, value) for key, value in tags.items()}
    time = event["time"] // PRECISION_DIVISORS[options.precision]
    return Conversion(_build(measurement, tags, fields, time, fallback, problems), problems)


def event_to_line(event: Mapping[str, Any], options: SchemaOptions) -> str | None:
    return convert(event, options).line
