"""The Celery tasks: thin wrappers with stable names around the functions that do the work
(found by ``autodiscover_tasks(related_name="celery_tasks")`` in ingestor_project/celery.py).

Retrying is explicit rather than ``autoretry_for``: when a batch runs out of retries it must
become a dead letter *before* the message is acknowledged, or it would be lost. Whatever else
goes wrong in a write (the Django database down or locked, a bug, a soft time limit) goes back
to the broker: retried with backoff, or, when not even a retry or a dead letter can be stored,
rejected with requeue so RabbitMQ keeps it. A batch is acknowledged only as points or dead letters.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from celery import shared_task
from celery.exceptions import Reject, Retry
from celery.signals import worker_init, worker_process_init, worker_process_shutdown
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import DatabaseError

from events.codec import unpack_events
from ingestor_project import metrics
from ingestor_project.gc_tuning import tune_gc
from tasks import deadletters, ingest
from tasks.breaker import CLOSED, CircuitBreaker, influx_breaker
from tasks.errors import AuthWriteError, ThrottledWriteError, TransientWriteError
from tasks.models import Category
from tasks.replay import replay_pending

log = structlog.get_logger(__name__)

T = TypeVar("T")
# Longest pause before a batch that cannot be handled now goes back to the queue: short enough
# for a warm shutdown, long enough that a database outage costs a few requeues a minute.
REQUEUE_PAUSE_MAX = 10.0


@worker_process_init.connect
def _fresh_clients_after_fork(**_kwargs: Any) -> None:
    ingest.reset_process_state()
    tune_gc(settings.GC_THRESHOLD)


@worker_init.connect
def _freeze_before_fork(**_kwargs: Any) -> None:
    # In the parent, before the pool forks: a child's collections then never write to the
    # start-up objects' pages, which stay shared (docs/benchmarks.md, footprint).
    tune_gc(settings.GC_THRESHOLD)


@worker_init.connect
def _serve_metrics_port(**_kwargs: Any) -> None:
    if settings.METRICS_PORT:
        metrics.serve_port(settings.METRICS_PORT)


@worker_process_shutdown.connect
def _forget_live_gauges(pid: int | None = None, **_kwargs: Any) -> None:
    metrics.mark_process_dead(pid)


def _breaker_says(call: Callable[[], T], default: T) -> T:
    """The breaker is an optimisation: when its row cannot be read or written (the database
    is down or locked) the batch goes on as if it were closed."""
    try:
        return call()
    except DatabaseError as exc:
        log.warning("breaker_unavailable", error=repr(exc)[:300], category="database")
        return default


def _wait_for_breaker(breaker: CircuitBreaker) -> bool:
    """Park while the breaker is open, at most BREAKER_PARK_SECONDS, in steps of <= 1 s."""
    deadline = time.monotonic() + settings.BREAKER_PARK_SECONDS
    while not _breaker_says(breaker.allow, True):
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(1.0, max(0.05, _breaker_says(breaker.seconds_until_probe, 1.0))))
    return True


def _countdown(task, exc: Exception) -> float:
    backoff = get_exponential_backoff_interval(
        factor=task.retry_backoff,
        retries=task.request.retries,
        maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter,
    )
    if isinstance(exc, ThrottledWriteError) and exc.retry_after:
        return max(backoff, exc.retry_after)
    if isinstance(exc, AuthWriteError):
        # Credentials or a missing database do not fix themselves in seconds.
        return max(backoff, settings.WRITE_AUTH_RETRY_MIN)
    return backoff


@shared_task(
    name="tasks.write_events",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # A hard time limit requeues the batch instead of acknowledging it unwritten.
    acks_on_failure_or_timeout=False,
    max_retries=settings.WRITE_MAX_RETRIES,
    retry_backoff=settings.WRITE_RETRY_BACKOFF,
    retry_backoff_max=settings.WRITE_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    ignore_result=True,
)
def write_events(
    self, events: str | list[dict[str, Any]], batch_id: str | None = None, **kwargs: Any
) -> int:
    """Write one batch of normalised events, packed as one JSON text (listeners) or a list.
    Extra keyword arguments are tolerated so that listeners and workers of neighbouring
    versions can run side by side during a deploy."""
    structlog.contextvars.bind_contextvars(batch_id=batch_id, task_id=self.request.id)
    try:
        return write_or_hand_back(self, events, batch_id, kwargs)
    finally:
        structlog.contextvars.unbind_contextvars("batch_id", "task_id")


def write_or_hand_back(task, events: str | list[dict[str, Any]], batch_id, kwargs: dict) -> int:
    """The batch is written, dead-lettered or handed back to the broker, whatever is raised."""
    try:
        return _write(task, events, batch_id, kwargs)
    except (Retry, Reject):
        raise
    except Exception as exc:  # noqa: BLE001 - nothing may acknowledge a batch unwritten
        return _unexpected(task, events, batch_id, exc)


def _write(task, packed: str | list[dict[str, Any]], batch_id: str | None, kwargs: dict) -> int:
    try:
        events = unpack_events(packed)
    except ValueError as exc:
        # Not what a listener packs: keep it whole for the operator rather than lose it.
        deadletters.record_raw(
            packed,
            source="worker",
            error=f"packed batch is not JSON: {exc}",
            context=batch_id or "",
        )
        return 0
    breaker = influx_breaker()
    if not _wait_for_breaker(breaker):
        # Still open: hand the batch back to the broker (a copy at the back of the queue, then
        # the ack), without touching InfluxDB or burning a retry.
        task.apply_async(args=[packed], kwargs={**kwargs, "batch_id": batch_id})
        log.info("batch_parked", events=len(events), breaker="open")
        return 0
    try:
        written = ingest.write_batch(events, batch_id=batch_id)
    except TransientWriteError as exc:
        metrics.WRITE_FAILURES.labels(exc.category).inc()
        if not isinstance(exc, AuthWriteError | ThrottledWriteError):
            _breaker_says(breaker.record_failure, None)
        return _retry_or_dead_letter(task, events, batch_id, exc)
    _breaker_says(breaker.record_success, None)
    return written


def _retry_or_dead_letter(task, events, batch_id, exc: TransientWriteError) -> int:
    attempts = task.request.retries + 1
    if task.max_retries is not None and task.request.retries >= task.max_retries:
        deadletters.record_events(
            events, category=exc.category, error=str(exc), batch_id=batch_id, attempts=attempts
        )
        return 0
    countdown = _countdown(task, exc)
    metrics.RETRIES.labels(exc.category).inc()
    log.warning(
        "batch_write_retry",
        category=exc.category,
        attempt=attempts,
        retry_in=round(countdown, 1),
        error=str(exc)[:300],
    )
    raise _retry(task, exc, countdown)


def _retry(task, exc: Exception, countdown: float) -> Exception:
    """The retry to raise. Celery turns a retry it cannot publish into a reject *without*
    requeue, which would drop the batch: here it stays in the broker."""
    try:
        return task.retry(exc=exc, countdown=countdown, throw=False)
    except Reject as failed:
        log.error("batch_retry_not_published", error=repr(failed.reason)[:300])
        return _requeue(countdown)


def _requeue(pause: float) -> Reject:
    """Back to the broker as it is, not acknowledged. The pause keeps a batch that cannot be
    handled now (database and broker trouble) from spinning through the queue."""
    time.sleep(min(pause, REQUEUE_PAUSE_MAX))
    return Reject("batch requeued", requeue=True)


def _unexpected(task, packed: str | list[dict[str, Any]], batch_id: str | None, exc) -> int:
    """Anything that is not a classified write error: retry with backoff while retries last,
    then a dead letter of the whole batch, or, if even that cannot be stored, a requeue."""
    _count_unexpected()
    log.error(
        "batch_failed_unexpectedly",
        category="unexpected",
        attempt=task.request.retries + 1,
        error=f"{type(exc).__name__}: {str(exc)[:300]}",
        exc_info=True,
    )
    if task.max_retries is None or task.request.retries < task.max_retries:
        raise _retry(task, exc, _countdown(task, exc))
    try:
        text = packed if isinstance(packed, str) else json.dumps(packed, default=str)
        deadletters.record_raw(
            text,
            source="worker",
            error=f"retries exhausted after an unexpected error: {type(exc).__name__}: {exc}",
            context=batch_id or "",
            batch_id=batch_id,
            category=Category.UNEXPECTED,
        )
    except Exception as failed:  # noqa: BLE001 - not even a dead letter: RabbitMQ keeps it
        log.error("dead_letter_not_stored", category="unexpected", error=repr(failed)[:300])
        raise _requeue(_countdown(task, exc)) from None
    return 0


def _count_unexpected() -> None:
    # A metric never decides a batch's fate.
    with contextlib.suppress(Exception):
        metrics.WRITE_FAILURES.labels("unexpected").inc()


@shared_task(
    name="tasks.replay_failed_writes", ignore_result=True, time_limit=600, soft_time_limit=580
)
def replay_failed_writes(limit: int = 100, **_kwargs: Any) -> int:
    """Periodic: replay retryable dead letters once InfluxDB is healthy (breaker closed)."""
    if influx_breaker().state() != CLOSED:
        return 0
    return replay_pending(limit=limit)
