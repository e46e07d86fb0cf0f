"""The work of the write task, as plain functions tests call without Celery."""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings

from tasks.cardinality import TagCardinalityGuard
from tasks.influx import Writer, writer_from_settings
from tasks.line_protocol import Unrepresentable
from tasks.schema import SchemaOptions, convert

log = structlog.get_logger(__name__)

_writer: Writer | None = None
_guard: TagCardinalityGuard | None = None


def get_writer() -> Writer:
    """One writer (and HTTP connection pool) per process, created on first use after fork."""
    global _writer
    if _writer is None:
        _writer = writer_from_settings(settings)
    return _writer


def get_guard() -> TagCardinalityGuard:
    global _guard
    if _guard is None:
        _guard = TagCardinalityGuard(settings.INFLUX_MAX_TAG_VALUES)
    return _guard


def reset_process_state() -> None:
    """Forget per-process clients; a forked child must not share its parent's sockets."""
    global _writer, _guard
    _writer, _guard = None, None


def events_to_lines(
    events: list[dict[str, Any]], options: SchemaOptions, guard: TagCardinalityGuard | None = None
) -> tuple[list[str], list[dict]]:
    """Lines for the events, and the events that cannot become a point (with the reason)."""
    lines, unwritable = [], []
    for event in events:
        try:
            result = convert(event, options, guard)
        except (Unrepresentable, KeyError, TypeError) as exc:
            # One odd event never takes the batch down with it.
            unwritable.append({"event": event, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        if result.problems:
            log.warning(
                "point_adjusted",
                entity_id=event.get("entity_id"),
                problems=result.problems,
                category="unrepresentable",
            )
        if result.line is not None:
            lines.append(result.line)
    return lines, unwritable


def write_batch(
    events: list[dict[str, Any]], *, batch_id: str | None = None, writer: Writer | None = None
) -> int:
    """Convert and write one batch; returns the number of points written. Raises WriteError."""
    lines, unwritable = events_to_lines(events, settings.INGEST_SCHEMA, get_guard())
    for item in unwritable:
        log.error(
            "event_unwritable",
            batch_id=batch_id,
            reason=item["reason"],
            entity_id=item["event"].get("entity_id"),
            category="unrepresentable",
        )
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
