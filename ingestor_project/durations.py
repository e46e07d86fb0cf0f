"""Durations as people write them: ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or plain seconds."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

from ingestor_project.env import env_str

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a ValueError says what was expected."""
    match = _PATTERN.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration: expected e.g. 30d, 12h, 90m, 45s")
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def env_duration(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """A duration variable, kept as written (or None when unset); a bad one stops start-up."""
    value = env_str(name, None, environ=environ)
    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
    return value
