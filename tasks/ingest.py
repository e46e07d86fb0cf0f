"""The work of the write task, as a plain function tests call without Celery."""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings

from tasks.influx import Writer, writer_from_settings
from tasks.schema import SchemaOptions, event_to_line

log = structlog.get_logger(__name__)

_writer: Writer | None = None


def get_writer() -> Writer:
    """One writer (and HTTP connection pool) per process, created on first use after fork."""
    global _writer
    if _writer is None:
        _writer = writer_from_settings(settings)
    return _writer


def reset_writer() -> None:
    """Forget the writer; a forked child must not share its parent's sockets."""
    global _writer
    _writer = None


def schema_options() -> SchemaOptions:
    return SchemaOptions()


def events_to_lines(events: list[dict[str, Any]], options: SchemaOptions) -> list[str]:
    lines = []
    for event in events:
        text = event_to_line(event, options)
        if text is not None:
            lines.append(text)
    return lines


def write_batch(
    events: list[dict[str, Any]], *, batch_id: str | None = None, writer: Writer | None = None
) -> int:
    """Convert and write one batch; returns the number of points written. Raises WriteError."""
    lines = events_to_lines(events, schema_options())
    if lines:
        started = time.perf_counter()
        (writer or get_writer()).write(lines)
        log.info(
            "batch_written",
            batch_id=batch_id,
            events=len(events),
            points=len(lines),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return len(lines)
