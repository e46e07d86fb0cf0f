"""The work of the write task, as plain functions tests call without Celery."""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError

from events.contract import UNPARSEABLE
from ingestor_project import metrics
from tasks import deadletters
from tasks.cardinality import TagCardinalityGuard
from tasks.errors import RejectedWriteError, TooLargeWriteError
from tasks.influx import Writer, writer_from_settings
from tasks.line_protocol import Unrepresentable
from tasks.models import Category
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


def write_lines(lines: list[str], writer: Writer, *, batch_id: str | None) -> int:
    """Write lines; a batch InfluxDB rejects (400/422) or finds too large (413) is split in
    halves until the offending points are isolated. Those become dead letters with InfluxDB's
    own message; every other point is written. Transient errors propagate to the task."""
    try:
        writer.write(lines)
        return len(lines)
    except (RejectedWriteError, TooLargeWriteError) as exc:
        if len(lines) == 1:
            deadletters.record_lines(
                lines, category=exc.category, error=str(exc), batch_id=batch_id
            )
            return 0
        log.warning(
            "batch_split",
            batch_id=batch_id,
            points=len(lines),
            category=exc.category,
            error=str(exc)[:300],
        )
    middle = len(lines) // 2
    return write_lines(lines[:middle], writer, batch_id=batch_id) + write_lines(
        lines[middle:], writer, batch_id=batch_id
    )


def _keep_unparseable(event: dict[str, Any]) -> None:
    payload = str(event.get("payload", ""))
    try:
        deadletters.record_raw(
            payload,
            source=str(event.get("source")),
            error=str(event.get("error")),
            context=str(event.get("context")),
        )
    except DatabaseError as exc:
        # A poison message must never take the good events of its batch down with it: if even
        # its dead letter cannot be stored, it is logged in full instead.
        log.error(
            "dead_letter_not_stored",
            category="unparseable",
            error=repr(exc)[:300],
            source=event.get("source"),
            payload=payload[:4000],
        )


def _record_unparseable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Source messages a listener could not parse travel as markers: keep them as dead letters."""
    good = []
    for event in events:
        if event.get("event_type") == UNPARSEABLE:
            _keep_unparseable(event)
        else:
            good.append(event)
    return good


def _observe(events: list[dict[str, Any]], written: int, seconds: float) -> None:
    metrics.POINTS_WRITTEN.inc(written)
    metrics.WRITE_SECONDS.observe(seconds)
    metrics.BATCH_EVENTS.observe(len(events))
    now_ns = time.time_ns()
    lags = [(now_ns - e["time"]) / 1e9 for e in events if isinstance(e.get("time"), int)]
    metrics.observe_many(metrics.LAG_SECONDS, lags)


def write_batch(
    events: list[dict[str, Any]], *, batch_id: str | None = None, writer: Writer | None = None
) -> int:
    """Convert and write one batch; returns the number of points written.

    Events that cannot become points, and points InfluxDB rejects, become dead letters; every
    other point is written. Transient failures raise TransientWriteError (the task retries).
    """
    events = _record_unparseable(events)
    lines, unwritable = events_to_lines(events, settings.INGEST_SCHEMA, get_guard())
    if unwritable:
        deadletters.record_events(
            [item["event"] for item in unwritable],
            category=Category.UNREPRESENTABLE,
            error="; ".join(item["reason"] for item in unwritable[:20]),
            batch_id=batch_id,
        )
    if not lines:
        return 0
    started = time.perf_counter()
    written = write_lines(lines, writer or get_writer(), batch_id=batch_id)
    _observe(events, written, time.perf_counter() - started)
    log.info(
        "batch_written",
        batch_id=batch_id,
        events=len(events),
        points=written,
        rejected=len(lines) - written,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return written
