"""The work of the write task, as plain functions tests call without Celery."""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings

from events.contract import UNPARSEABLE
from ingestor_project import metrics
from tasks import deadletters
from tasks.cardinality import TagCardinalityGuard
from tasks.errors import RejectedWriteError, TooLargeWriteError
from tasks.influx import Writer, writer_from_settings
from tasks.line_protocol import NON_FINITE, Unrepresentable
from tasks.models import Category
from tasks.schema import SchemaOptions, convert

log = structlog.get_logger(__name__)

# What a listener may mark a set-aside message as (events/codec.py); anything else: unparseable.
MARKER_CATEGORIES = {Category.UNPARSEABLE, Category.TOO_LARGE}

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
    """Lines for the events, and the events that cannot become a point (with the reason and
    the dead-letter category)."""
    lines, unwritable = [], []
    for event in events:
        try:
            result = convert(event, options, guard)
        except (Unrepresentable, KeyError, TypeError) as exc:
            # One odd event never takes the batch down with it.
            category = getattr(exc, "category", Category.UNREPRESENTABLE)
            reason = f"{type(exc).__name__}: {exc}"
            unwritable.append({"event": event, "reason": reason, "category": category})
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
        else:
            _count_dropped(result.problems)
    return lines, unwritable


def _count_dropped(problems: list[str]) -> None:
    """An event with nothing InfluxDB can store (a NaN state and no attributes) is dropped,
    as HA's integration drops it, but never without a trace."""
    non_finite = any(NON_FINITE in problem for problem in problems)
    metrics.EVENTS_DROPPED.labels("non_finite" if non_finite else "no_fields").inc()


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


def _split_markers(events: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Source messages a listener could not parse or carry travel as markers in the batch."""
    markers = [e for e in events if e.get("event_type") == UNPARSEABLE]
    if not markers:
        return [], events
    return markers, [e for e in events if e.get("event_type") != UNPARSEABLE]


def _keep_markers(markers: list[dict[str, Any]], batch_id: str | None) -> None:
    """Each marker becomes a dead letter, once: a retried batch, or a message the source's
    broker delivers again in another batch, finds the one it has. A database failure raises:
    the batch is retried (its points rewrite themselves)."""
    for ordinal, marker in enumerate(markers):
        category = marker.get("category")
        deadletters.record_raw(
            str(marker.get("payload", "")),
            source=str(marker.get("source")),
            error=str(marker.get("error")),
            context=str(marker.get("context")),
            batch_id=batch_id,
            ordinal=ordinal,
            category=category if category in MARKER_CATEGORIES else Category.UNPARSEABLE,
            redelivered=bool(marker.get("redelivered")),
        )


def _keep_unwritable(unwritable: list[dict[str, Any]], batch_id: str | None) -> None:
    by_category: dict[str, list[dict[str, Any]]] = {}
    for item in unwritable:
        by_category.setdefault(item["category"], []).append(item)
    for category, items in by_category.items():
        deadletters.record_events(
            [item["event"] for item in items],
            category=category,
            error="; ".join(item["reason"] for item in items[:20]),
            batch_id=batch_id,
        )


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
    other point is written. Transient failures raise TransientWriteError (the task retries);
    a dead letter that cannot be stored raises too, so nothing is acknowledged unkept.
    """
    markers, events = _split_markers(events)
    lines, unwritable = events_to_lines(events, settings.INGEST_SCHEMA, get_guard())
    written = 0
    if lines:
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
    _keep_markers(markers, batch_id)
    _keep_unwritable(unwritable, batch_id)
    return written
