"""Strict, typed readers for configuration from environment variables.

Every helper raises ``ImproperlyConfigured`` naming the variable and what it expected, so a bad
deployment stops at start-up with a message an operator can act on instead of failing later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSET = object()


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _missing(name: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} is required: expected {expected}")


def _default(name: str, default: object, expected: str) -> object:
    """What an unset variable reads as: its default, or an error when it has none."""
    if default is _UNSET:
        raise _missing(name, expected)
    return default


def env_str(name: str, default: object = _UNSET, *, environ: Mapping[str, str] | None = None):
    value = _raw(name, environ)
    return _default(name, default, "a non-empty string") if value is None else value


def env_bool(name: str, default: object = _UNSET, *, environ: Mapping[str, str] | None = None):
    value = _raw(name, environ)
    if value is None:
        return _default(name, default, "true or false")
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: expected true or false")


def env_int(
    name: str,
    default: object = _UNSET,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
):
    return _number(name, default, environ, int, "an integer", (minimum, maximum))


def env_float(
    name: str,
    default: object = _UNSET,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
):
    """A finite number: NaN and infinities are refused."""
    return _number(name, default, environ, float, "a number", (minimum, maximum))


def _number(
    name: str,
    default: object,
    environ: Mapping[str, str] | None,
    convert: type[int] | type[float],
    expected: str,
    bounds: tuple[float | None, float | None],
) -> object:
    value = _raw(name, environ)
    if value is None:
        return _default(name, default, expected)
    try:
        number = convert(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not {expected}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    _check_range(name, number, *bounds)
    return number


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}")


def env_list(
    name: str, default: Sequence[str] = (), *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """A comma-separated list; blanks around items are ignored, empty items rejected."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(item == "" for item in items):
        raise ImproperlyConfigured(f"{name}={value!r} has an empty item: expected a,b,c")
    return items


def env_choice(
    name: str,
    choices: Sequence[str],
    default: object = _UNSET,
    *,
    environ: Mapping[str, str] | None = None,
):
    value = _raw(name, environ)
    if value is None:
        return _default(name, default, "one of " + ", ".join(choices))
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: " + ", ".join(choices))
    return value


def env_secret(name: str, default: object = _UNSET, *, environ: Mapping[str, str] | None = None):
    """A secret from NAME, or from the file named by NAME_FILE (container secrets).

    The value itself never appears in an error message.
    """
    value = _raw(name, environ)
    path = _raw(f"{name}_FILE", environ)
    if value is not None and path is not None:
        raise ImproperlyConfigured(f"set either {name} or {name}_FILE, not both")
    if path is not None:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={path!r} cannot be read: {exc.strerror}"
            ) from None
        if not value:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} is empty")
    if value is not None:
        return value
    return _default(name, default, f"a secret in {name} or a file path in {name}_FILE")


def env_json(name: str, default: object = _UNSET, *, environ: Mapping[str, str] | None = None):
    """A JSON document (for structured settings such as per-entity overrides)."""
    import json

    value = _raw(name, environ)
    if value is None:
        return _default(name, default, "a JSON document")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None


def env_mapping(
    name: str,
    default: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """key=value pairs separated by commas: ``site=home,floor=1``."""
    pairs = env_list(name, environ=environ)
    if not pairs:
        return dict(default or {})
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name}: {pair!r} is not key=value")
        result[key.strip()] = value.strip()
    return result
