"""Enqueue a batch as one Celery task, confirmed by the broker before we call it published."""

from __future__ import annotations

import time

import structlog
from celery import Celery

from events.codec import ORJSON, pack_capped
from listeners.batching import Batch

log = structlog.get_logger(__name__)

WRITE_TASK = "tasks.write_events"


# RabbitMQ 4 refuses messages over 16 MiB (max_message_size); a batch stays well below it.
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024


class CeleryPublisher:
    def __init__(
        self,
        app: Celery,
        queue: str,
        serializer: str = "json",
        max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        self.app, self.queue, self.serializer = app, queue, serializer
        self.exact_orjson = serializer == ORJSON
        self.max_bytes = max_bytes

    def __call__(self, batch: Batch) -> None:
        started = time.perf_counter()
        parts = pack_capped(batch.events, exact_orjson=self.exact_orjson, max_bytes=self.max_bytes)
        for number, (events, packed) in enumerate(parts):
            # A split batch keeps stable part ids, so a re-sent part is recognisably the same.
            batch_id = batch.batch_id if len(parts) == 1 else f"{batch.batch_id}.{number}"
            self._send(packed, batch_id)
            if len(parts) > 1:
                log.warning("batch_split_for_broker", batch_id=batch_id, events=len(events))
        log.debug(
            "batch_published",
            batch_id=batch.batch_id,
            events=len(batch.events),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _send(self, packed: str, batch_id: str) -> None:
        # retry=False: the Batcher owns retrying (with backoff, keeping the batch), so a broker
        # outage never makes apply_async hang inside the publisher thread.
        self.app.send_task(
            WRITE_TASK,
            args=[packed],
            kwargs={"batch_id": batch_id},
            queue=self.queue,
            headers={"batch_id": batch_id},
            retry=False,
            serializer=self.serializer,
        )
