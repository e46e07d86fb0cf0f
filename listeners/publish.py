"""Enqueue a batch as one Celery task, confirmed by the broker before we call it published."""

from __future__ import annotations

import time

import structlog
from celery import Celery

from events.codec import ORJSON, pack_events
from listeners.batching import Batch

log = structlog.get_logger(__name__)

WRITE_TASK = "tasks.write_events"


class CeleryPublisher:
    def __init__(self, app: Celery, queue: str, serializer: str = "json") -> None:
        self.app, self.queue, self.serializer = app, queue, serializer
        self.exact_orjson = serializer == ORJSON

    def __call__(self, batch: Batch) -> None:
        started = time.perf_counter()
        # retry=False: the Batcher owns retrying (with backoff, keeping the batch), so a broker
        # outage never makes apply_async hang inside the publisher thread.
        self.app.send_task(
            WRITE_TASK,
            args=[pack_events(batch.events, exact_orjson=self.exact_orjson)],
            kwargs={"batch_id": batch.batch_id},
            queue=self.queue,
            headers={"batch_id": batch.batch_id},
            retry=False,
            serializer=self.serializer,
        )
        log.debug(
            "batch_published",
            batch_id=batch.batch_id,
            events=len(batch.events),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
