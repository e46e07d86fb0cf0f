"""structlog wiring: one set of processors for our own loggers and for stdlib ones
(Django, Celery, paho-mqtt, websockets), rendered as JSON or as coloured console lines."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import structlog

REDACTED = "[REDACTED]"
_SECRET_VALUES: set[str] = set()
# Key names whose values are never logged, whatever they hold.
_SECRET_KEYS = ("token", "password", "secret", "authorization", "access_token", "api_key")


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values so the redaction processor can scrub them from any log line."""
    # Short values would redact ordinary words; real tokens and passwords are longer than this.
    _SECRET_VALUES.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    for secret in _SECRET_VALUES:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if any(part in key.lower() for part in _SECRET_KEYS) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(key, value)
    return event_dict


def _redact_rendered(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Exception tracebacks are rendered into text by format_exc_info; scrub them too.
    if isinstance(event_dict.get("exception"), str):
        event_dict["exception"] = redact_text(event_dict["exception"])
    return event_dict


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A dictConfig for Django's LOGGING setting; configures structlog as a side effect."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer()
        final = [structlog.processors.format_exc_info, _redact_rendered, renderer]
    else:
        final = [_redact_rendered, structlog.dev.ConsoleRenderer(colors=False)]
    quiet = "DEBUG" if level == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
                "foreign_pre_chain": shared_processors(),
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # websockets logs every frame at DEBUG; keep it at INFO unless asked otherwise.
            "websockets": {"level": max(logging.getLevelName(level), logging.INFO)},
            # Celery logs every task received and succeeded with its arguments: thousands of
            # events a second. batch_written says the same once per batch, without the payload.
            "celery.app.trace": {"level": quiet},
            "celery.worker.strategy": {"level": quiet},
            # A failing readiness check is reported in the response; only surprises are logged.
            "health_check": {"level": "ERROR"},
        },
    }
