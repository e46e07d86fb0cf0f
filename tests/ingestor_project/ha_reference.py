"""HA's influxdb integration as a small reference model, written from docs/ha-influxdb-parity.md
(§1 state to point, §2 component_config*, §3 entity filter), reading HA's YAML options directly.
It shares no code with the product: the converter's equivalence is checked against it."""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any

ON = {"on", "locked", "above_horizon", "open", "home"}
OFF = {"off", "unlocked", "unknown", "below_horizon", "closed", "not_home"}
DIGIT_TAIL = re.compile(r"^[^\.]*\d+\.?\d+[^\.]*$")
DECIMAL = re.compile(r"[^\d.]+")


def _list(value: Any) -> list[Any]:
    return [] if value in (None, "") else (value if isinstance(value, list) else [value])


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _side(conf: dict[str, Any], side: str) -> tuple[set[str], set[str], list]:
    section = conf.get(side) or {}
    entities = {
        e.strip().lower() for i in _list(section.get("entities")) for e in str(i).split(",")
    }
    domains = set(_list(section.get("domains")))
    return entities, domains, [_glob(g) for g in _list(section.get("entity_globs"))]


def passes(conf: dict[str, Any], entity_id: str) -> bool:
    """HA's EntityFilter, cases 1-6."""
    inc_e, inc_d, inc_g = _side(conf, "include")
    exc_e, exc_d, exc_g = _side(conf, "exclude")
    domain = entity_id.split(".", 1)[0]
    ie, xe = entity_id in inc_e, entity_id in exc_e
    idom, xdom = domain in inc_d, domain in exc_d
    ig, xg = any(g.match(entity_id) for g in inc_g), any(g.match(entity_id) for g in exc_g)
    have_inc, have_exc = bool(inc_e or inc_d or inc_g), bool(exc_e or exc_d or exc_g)
    if not have_inc and not have_exc:
        return True
    if not have_exc:
        return ie or idom or ig
    if not have_inc:
        return not (xe or xdom or xg)
    if inc_d or inc_g:
        return ie or (not xe and (ig or (idom and not xg)))
    if exc_d or exc_g:
        return ie if (xdom or xg) else not xe
    return ie


def entity_config(conf: dict[str, Any], entity_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    found.update((conf.get("component_config_domain") or {}).get(entity_id.split(".")[0], {}))
    for pattern, cfg in (conf.get("component_config_glob") or {}).items():
        if _glob(pattern).match(entity_id):
            found.update(cfg)
    found.update((conf.get("component_config") or {}).get(entity_id, {}))
    return found


def point(conf: dict[str, Any], entity_id: str, state: str, attributes: dict[str, Any]) -> Any:
    """(measurement, tags, fields) HA writes for a state change, or None."""
    if state in ("unknown", "", "unavailable") or not passes(conf, entity_id):
        return None
    fields: dict[str, Any] = {}
    try:
        fields["value"] = float(state)
    except ValueError:
        fields["state"] = state
        if state in ON | OFF:
            fields["value"] = 1.0 if state in ON else 0.0
    measurement, include_uom, include_dc = _measurement(conf, entity_id, attributes)
    domain, object_id = entity_id.split(".", 1)
    tags: dict[str, Any] = {"domain": domain, "entity_id": object_id}
    ec = entity_config(conf, entity_id)
    ignore = set(_list(ec.get("ignore_attributes"))) | set(_list(conf.get("ignore_attributes")))
    tag_attrs = set(_list(conf.get("tags_attributes")))
    for key, value in attributes.items():
        if key in tag_attrs:
            tags[key] = value
        elif (
            (key != "unit_of_measurement" or include_uom)
            and (key != "device_class" or include_dc)
            and key not in ignore
        ):
            _attribute(fields, key, value)
    tags.update({str(k): str(v) for k, v in (conf.get("tags") or {}).items()})
    return measurement, tags, fields


def _measurement(conf: dict[str, Any], entity_id: str, attributes: dict) -> tuple[Any, bool, bool]:
    include_uom = include_dc = True
    measurement = entity_config(conf, entity_id).get("override_measurement")
    if measurement not in (None, ""):
        return measurement, True, True
    if conf.get("override_measurement"):
        return conf["override_measurement"], True, True
    attr = conf.get("measurement_attr", "unit_of_measurement")
    if attr == "entity_id":
        measurement = entity_id
    elif attr == "domain__device_class":
        device_class = attributes.get("device_class")
        measurement = entity_id.split(".")[0]
        if device_class is not None:
            measurement, include_dc = f"{measurement}__{device_class}", False
    else:
        measurement = attributes.get("unit_of_measurement")
    if measurement in (None, ""):
        measurement = conf.get("default_measurement") or entity_id
    else:
        include_uom = attr != "unit_of_measurement"
    return measurement, include_uom, include_dc


def _attribute(fields: dict[str, Any], key: str, value: Any) -> None:
    if key in fields:
        key += "_"
    try:
        fields[key] = float(value)
    except (ValueError, TypeError):
        text = str(value)
        fields[key + "_str"] = text
        if DIGIT_TAIL.match(text):
            fields[key] = float(DECIMAL.sub("", text))
    if isinstance(fields.get(key), float) and not math.isfinite(fields[key]):
        del fields[key]
