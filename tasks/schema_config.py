"""The point schema's options (SchemaOptions) from the plain values the settings validated.

The settings read the INFLUX_* variables; this module only assembles them, once, at start-up
(TasksConfig.ready), into ``settings.INGEST_SCHEMA`` for the write path and the admin.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from tasks.schema import MEASUREMENT_ATTRS, PRECISION_DIVISORS, EntityOverrides, SchemaOptions


def schema_options(settings: Any) -> SchemaOptions:
    """SchemaOptions from settings (django.conf.settings, or any object with its INFLUX_* names)."""
    return SchemaOptions(
        measurement_attr=_choice(settings, "INFLUX_MEASUREMENT_ATTR", MEASUREMENT_ATTRS),
        default_measurement=settings.INFLUX_DEFAULT_MEASUREMENT,
        override_measurement=settings.INFLUX_OVERRIDE_MEASUREMENT,
        tags=dict(settings.INFLUX_TAGS),
        tags_attributes=frozenset(settings.INFLUX_TAGS_ATTRIBUTES),
        ignore_attributes=frozenset(settings.INFLUX_IGNORE_ATTRIBUTES),
        overrides=EntityOverrides(
            entities=settings.INFLUX_COMPONENT_CONFIG,
            domains=settings.INFLUX_COMPONENT_CONFIG_DOMAIN,
            # Among globs the later one wins, as in HA's YAML: the settings keep JSON's order.
            globs=tuple(settings.INFLUX_COMPONENT_CONFIG_GLOB.items()),
        ),
        precision=_choice(settings, "INFLUX_PRECISION", tuple(PRECISION_DIVISORS)),
        json_attributes=settings.INFLUX_JSON_ATTRIBUTES,
        write_unavailable=settings.INFLUX_WRITE_UNAVAILABLE,
        events_measurement=settings.INFLUX_EVENTS_MEASUREMENT,
        event_tag_keys=tuple(settings.INFLUX_EVENT_TAG_KEYS),
    )


def install_schema(settings: Any) -> None:
    """Build settings.INGEST_SCHEMA, the one SchemaOptions of the process."""
    settings.INGEST_SCHEMA = schema_options(settings)


def _choice(settings: Any, name: str, choices: tuple[str, ...]) -> str:
    # The settings validate these too; this keeps the two lists from drifting apart unnoticed.
    value = getattr(settings, name)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: " + ", ".join(choices))
    return value
