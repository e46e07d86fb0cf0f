"""SchemaOptions from environment variables, validated at start-up like every other setting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ingestor_project.env import env_bool, env_choice, env_json, env_list, env_mapping, env_str
from tasks.schema import MEASUREMENT_ATTRS, PRECISION_DIVISORS, EntityOverrides, SchemaOptions

_OVERRIDE_KEYS = {"override_measurement", "ignore_attributes"}


def _entity_config(name: str, raw: Any) -> dict[str, dict[str, Any]]:
    """{key: {override_measurement: str, ignore_attributes: str | [str]}}, as HA accepts it."""
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object of objects")
    for key, cfg in raw.items():
        if not isinstance(cfg, dict) or not set(cfg) <= _OVERRIDE_KEYS:
            raise ImproperlyConfigured(
                f"{name}[{key!r}] must be an object with only override_measurement and/or "
                "ignore_attributes"
            )
        ignored = cfg.get("ignore_attributes", [])
        if isinstance(ignored, str):
            cfg["ignore_attributes"] = [ignored]
        elif not (isinstance(ignored, list) and all(isinstance(i, str) for i in ignored)):
            raise ImproperlyConfigured(f"{name}[{key!r}].ignore_attributes must be strings")
        if not isinstance(cfg.get("override_measurement", ""), str):
            raise ImproperlyConfigured(f"{name}[{key!r}].override_measurement must be a string")
    return raw


def _globs(name: str, raw: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    # A JSON object keeps its order, and among globs the later one wins, as in HA's YAML.
    return tuple(_entity_config(name, raw).items())


def schema_options_from_env(environ: Mapping[str, str] | None = None) -> SchemaOptions:
    e = {"environ": environ}
    return SchemaOptions(
        measurement_attr=env_choice(
            "INFLUX_MEASUREMENT_ATTR", MEASUREMENT_ATTRS, "unit_of_measurement", **e
        ),
        default_measurement=env_str("INFLUX_DEFAULT_MEASUREMENT", None, **e),
        override_measurement=env_str("INFLUX_OVERRIDE_MEASUREMENT", None, **e),
        tags=env_mapping("INFLUX_TAGS", **e),
        tags_attributes=frozenset(env_list("INFLUX_TAGS_ATTRIBUTES", **e)),
        ignore_attributes=frozenset(env_list("INFLUX_IGNORE_ATTRIBUTES", **e)),
        overrides=EntityOverrides(
            entities=_entity_config(
                "INFLUX_COMPONENT_CONFIG", env_json("INFLUX_COMPONENT_CONFIG", {}, **e)
            ),
            domains=_entity_config(
                "INFLUX_COMPONENT_CONFIG_DOMAIN",
                env_json("INFLUX_COMPONENT_CONFIG_DOMAIN", {}, **e),
            ),
            globs=_globs(
                "INFLUX_COMPONENT_CONFIG_GLOB", env_json("INFLUX_COMPONENT_CONFIG_GLOB", {}, **e)
            ),
        ),
        precision=env_choice("INFLUX_PRECISION", tuple(PRECISION_DIVISORS), "ns", **e),
        json_attributes=env_bool("INFLUX_JSON_ATTRIBUTES", True, **e),
        write_unavailable=env_bool("INFLUX_WRITE_UNAVAILABLE", False, **e),
        events_measurement=env_str("INFLUX_EVENTS_MEASUREMENT", "ha_events", **e),
        event_tag_keys=tuple(env_list("INFLUX_EVENT_TAG_KEYS", ["domain", "service"], **e)),
    )
