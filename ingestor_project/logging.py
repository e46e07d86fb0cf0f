"""structlog wiring: one set of processors for our own loggers and for stdlib ones
(Django, Celery, paho-mqtt, websockets), rendered as JSON or as coloured console lines."""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

REDACTED = "[REDACTED]"
# What stands for the password of a URL (scheme://user:********@host).
MASK = "********"
_SECRET_VALUES: set[str] = set()
# Key names whose values are never logged, whatever they hold.
_SECRET_KEYS = ("token", "password", "secret", "authorization", "access_token", "api_key")
# user:password@ in any URL (broker, database, MQTT, InfluxDB, Redis).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@\s/?#]+@")
# A query parameter whose name says it carries a credential (?token=..., ?api_key=...).
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&](?:[^=&#\s]*(?:token|password|passwd|secret|key|auth|signature|sig|code)"
    r"[^=&#\s]*)=)[^&#\s]*",
    re.IGNORECASE,
)


def mask_url_passwords(text: str) -> str:
    """``scheme://user:pass@host`` becomes ``scheme://user:********@host``, wherever it appears."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


def redact_query(text: str) -> str:
    """Values of credential-looking query parameters replaced (``/ready?token=...``)."""
    return _SECRET_PARAM.sub(lambda m: f"{m['head']}{REDACTED}", text)


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values so the redaction processor can scrub them from any log line."""
    # Short values would redact ordinary words; real tokens and passwords are longer than this.
    _SECRET_VALUES.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    for secret in _SECRET_VALUES:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text:
        text = mask_url_passwords(text)
    if "=" in text and ("?" in text or "&" in text):
        text = redact_query(text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if any(part in key.lower() for part in _SECRET_KEYS) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def describe_request(request: Any) -> dict[str, str]:
    """What a log line says of an HTTP request: never its repr, which holds the query string."""
    return {"method": str(request.method), "path": redact_text(request.get_full_path())}


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Django's request loggers pass the request object as an extra (django.request).
    request = event_dict.get("request")
    if request is not None and hasattr(request, "get_full_path"):
        event_dict["request"] = describe_request(request)
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(key, value)
    return event_dict


def _redact_rendered(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Exception tracebacks are rendered into text by format_exc_info; scrub them too.
    if isinstance(event_dict.get("exception"), str):
        event_dict["exception"] = redact_text(event_dict["exception"])
    return event_dict


def _render_exception(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """exc_info to traceback text under "exception", where the redaction can reach it."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        if not isinstance(exc_info, tuple):
            exc_info = (
                sys.exc_info()
                if exc_info is True
                else (type(exc_info), exc_info, exc_info.__traceback__)
            )
        if exc_info[0] is not None:
            event_dict["exception"] = "".join(traceback.format_exception(*exc_info)).rstrip()
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


def file_handler(
    path: str | None, max_bytes: int, when: str | None, backups: int
) -> dict[str, Any] | None:
    """Rotation by size (max_bytes) or by time (when: S, M, H, D, midnight, W0-W6); None without
    a path.

    Rotation is per process: several processes must not rotate one file, so ``{pid}`` in the
    path is replaced by the process id (e.g. /var/log/ingestor/worker-{pid}.log).
    """
    if not path:
        return None
    filename = path.replace("{pid}", str(os.getpid()))
    Path(filename).parent.mkdir(parents=True, exist_ok=True)
    common = {
        "formatter": "structlog",
        "filename": filename,
        "backupCount": backups,
        "encoding": "utf-8",
    }
    if when:
        return {
            "class": "logging.handlers.TimedRotatingFileHandler",
            "when": when,
            "utc": True,
            **common,
        }
    return {"class": "logging.handlers.RotatingFileHandler", "maxBytes": max_bytes, **common}


def logging_config(level: str, fmt: str, file: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dictConfig for Django's LOGGING setting; configures structlog as a side effect."""
    # Python's warnings through the same handlers, not raw to stderr: one format per process.
    logging.captureWarnings(True)
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
        final = [_render_exception, _redact_rendered, renderer]
    else:
        # Tracebacks are rendered to text first so the redaction sees them, then printed as is.
        final = [
            _render_exception,
            _redact_rendered,
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ]
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
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structlog"},
            **({"file": file} if file else {}),
        },
        "root": {"handlers": ["console", "file"] if file else ["console"], "level": level},
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
