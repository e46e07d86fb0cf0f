"""Buffer normalised events and hand them to the broker one batch at a time.

The reader (the WebSocket or MQTT loop) only appends; sealed batches wait in a bounded queue
that a publisher thread drains, so a slow broker never stalls the reader until that queue is full.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ingestor_project import metrics
from listeners.backoff import Backoff

log = structlog.get_logger(__name__)


@dataclass
class Batch:
    events: list[dict[str, Any]]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0  # order of sealing: batches are published in this order


Publish = Callable[[Batch], None]


class Batcher:
    def __init__(
        self,
        publish: Publish,
        *,
        size: int,
        interval: float,
        max_pending: int,
        clock: Callable[[], float] = time.monotonic,
        on_published: Callable[[Batch], None] | None = None,
        source: str = "homeassistant",
    ) -> None:
        self.publish = publish
        self.size, self.interval, self.max_pending = size, interval, max_pending
        self.clock = clock
        self.on_published = on_published
        self.buffer: list[dict[str, Any]] = []
        self.first_at: float | None = None
        self.pending: deque[Batch] = deque()
        self.cond = threading.Condition()
        self.published_events = 0
        self.backoff = Backoff(initial=0.2, maximum=10.0)
        self._pending_gauge = metrics.PENDING_EVENTS.labels(source)
        self._published = metrics.BATCHES_PUBLISHED.labels(source)
        self._failures = metrics.PUBLISH_FAILURES.labels(source)
        self._publish_seconds = metrics.PUBLISH_SECONDS.labels(source)
        self.held_events = 0  # sealed, not yet confirmed by the broker
        self.sealed_seq = 0

    # --- reader side ---------------------------------------------------------------------
    def add(self, event: dict[str, Any]) -> None:
        if not self.buffer:
            self.first_at = self.clock()
        self.buffer.append(event)
        if len(self.buffer) >= self.size:
            self.seal()

    def tick(self) -> None:
        """Seal the buffer once its oldest event has waited a flush interval."""
        if self.buffer and self.seconds_until_due() <= 0:
            self.seal()

    def seconds_until_due(self) -> float:
        """How long until tick() seals the buffer; a whole interval while it is empty, so a
        caller that sleeps this long between ticks never keeps an event past the interval."""
        if self.first_at is None:
            return self.interval
        return min(max(self.first_at + self.interval - self.clock(), 0.0), self.interval)

    def seal(self) -> int:
        """Close the buffer into a batch; returns the sequence number of the newest batch."""
        if not self.buffer:
            return self.sealed_seq
        self.sealed_seq += 1
        batch = Batch(self.buffer, seq=self.sealed_seq)
        self.buffer, self.first_at = [], None
        with self.cond:
            self.pending.append(batch)
            self.held_events += len(batch.events)
            self.cond.notify_all()
        self._pending_gauge.set(self.held_events)
        return self.sealed_seq

    def has_room(self) -> bool:
        return len(self.pending) < self.max_pending

    @property
    def pending_events(self) -> int:
        return len(self.buffer) + sum(len(b.events) for b in list(self.pending))

    # --- publisher side ------------------------------------------------------------------
    def publish_next(self) -> bool:
        """Publish the oldest sealed batch. True if one was published; a failure keeps it."""
        with self.cond:
            if not self.pending:
                return False
            batch = self.pending[0]
        started = time.perf_counter()
        try:
            self.publish(batch)
        except Exception as exc:  # noqa: BLE001 - any broker failure: keep the batch, retry
            self._failures.inc()
            delay = self.backoff.next_delay()
            level = log.error if self.backoff.serious else log.warning
            level(
                "batch_publish_failed",
                batch_id=batch.batch_id,
                events=len(batch.events),
                error=repr(exc),
                category="connection",
                retry_in=round(delay, 2),
            )
            with self.cond:
                self.cond.wait(delay)
            return False
        self._publish_seconds.observe(time.perf_counter() - started)
        self._published.inc()
        self.backoff.reset()
        with self.cond:
            self.pending.popleft()
            self.published_events += len(batch.events)
            self.held_events -= len(batch.events)
            self.cond.notify_all()
        self._pending_gauge.set(self.held_events)
        if self.on_published:
            self.on_published(batch)
        return True

    def wait_for_work(self, timeout: float) -> None:
        with self.cond:
            if not self.pending:
                self.cond.wait(timeout)

    def drain(self, timeout: float) -> bool:
        """Seal and publish everything held, within timeout. True when nothing is left."""
        self.seal()
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            with self.cond:
                self.cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        return not self.pending


class PublisherThread(threading.Thread):
    """Drains a Batcher into the broker until stopped."""

    def __init__(self, batcher: Batcher) -> None:
        super().__init__(name="batch-publisher", daemon=True)
        self.batcher = batcher
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            if not self.batcher.publish_next():
                self.batcher.wait_for_work(0.5)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self.batcher.cond:
            self.batcher.cond.notify_all()
        self.join(timeout)
