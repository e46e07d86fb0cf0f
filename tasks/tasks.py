"""Celery tasks: thin wrappers with stable names around the functions that do the work."""

from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from tasks import ingest
from tasks.errors import TransientWriteError

log = structlog.get_logger(__name__)


@worker_process_init.connect
def _fresh_writer_after_fork(**_kwargs: Any) -> None:
    ingest.reset_process_state()


@shared_task(
    name="tasks.write_events",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientWriteError,),
    retry_backoff=2,
    retry_backoff_max=settings.WRITE_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.WRITE_MAX_RETRIES,
    ignore_result=True,
)
def write_events(
    self, events: list[dict[str, Any]], batch_id: str | None = None, **_kwargs: Any
) -> int:
    """Write one batch of normalised events. Extra keyword arguments are tolerated so that
    listeners and workers of neighbouring versions can run side by side during a deploy."""
    structlog.contextvars.bind_contextvars(batch_id=batch_id, task_id=self.request.id)
    try:
        return ingest.write_batch(events, batch_id=batch_id)
    finally:
        structlog.contextvars.unbind_contextvars("batch_id", "task_id")
