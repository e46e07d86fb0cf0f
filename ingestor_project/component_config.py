"""Validation of the per-entity overrides HA's influxdb integration accepts (component_config,
component_config_domain, component_config_glob), given here as JSON in environment variables."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

OVERRIDE_KEYS = frozenset({"override_measurement", "ignore_attributes"})


def component_config(name: str, raw: Any) -> dict[str, dict[str, Any]]:
    """``{key: {override_measurement: str, ignore_attributes: [str]}}``, as HA accepts it.

    A single ignored attribute may be given as a string; it comes back as a one-item list. A JSON
    object keeps its order, which matters for globs: the later one wins, as in HA's YAML.
    """
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object of objects")
    return {key: _override(name, key, cfg) for key, cfg in raw.items()}


def _override(name: str, key: str, cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict) or not set(cfg) <= OVERRIDE_KEYS:
        raise ImproperlyConfigured(
            f"{name}[{key!r}] must be an object with only override_measurement and/or "
            "ignore_attributes"
        )
    ignored = cfg.get("ignore_attributes", [])
    if isinstance(ignored, str):
        ignored = [ignored]
    elif not (isinstance(ignored, list) and all(isinstance(i, str) for i in ignored)):
        raise ImproperlyConfigured(f"{name}[{key!r}].ignore_attributes must be strings")
    if not isinstance(cfg.get("override_measurement", ""), str):
        raise ImproperlyConfigured(f"{name}[{key!r}].override_measurement must be a string")
    return {**cfg, "ignore_attributes": ignored} if "ignore_attributes" in cfg else dict(cfg)
