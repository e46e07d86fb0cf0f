"""Deterministic event streams pushed through the real listener-side publishing path."""

from __future__ import annotations

import threading
import time

from celery import Celery

from ingestor_project.celeryconfig import durable_queue
from listeners.batching import Batcher, PublisherThread
from listeners.publish import CeleryPublisher

BASE_NS = 1_767_323_045_000_000_000


def events(count: int, entities: int = 100, start: int = 0) -> list[dict]:
    """count state changes; the i-th has time BASE + i µs, so every point is distinct."""
    return [
        {
            "source": "homeassistant",
            "event_type": "state_changed",
            "time": BASE_NS + (start + i) * 1000,
            "entity_id": f"sensor.load_{i % entities}",
            "state": str(start + i),
            "attributes": {"unit_of_measurement": "W"},
        }
        for i in range(count)
    ]


def celery_app(broker_url: str, queue: str) -> Celery:
    app = Celery("stream", broker=broker_url, set_as_current=False)
    # Celery prefers the CELERY_BROKER_URL environment variable over broker_url; the write URL
    # setting is not shadowed that way, so the stream really goes to broker_url.
    app.conf.update(
        broker_write_url=broker_url,
        broker_transport_options={"confirm_publish": True},
        task_serializer="json",
        accept_content=["json"],
        task_queues=[durable_queue(queue)],
        task_default_queue=queue,
        broker_connection_timeout=4,
        broker_connection_retry=False,
    )
    return app


class Stream:
    """Publishes events at a steady rate through Batcher + CeleryPublisher (retrying on broker
    failures as the listener does) on a background thread."""

    def __init__(
        self, broker_url: str, queue: str, items: list[dict], *, rate: float, batch_size: int = 250
    ) -> None:
        self.items, self.rate = items, rate
        self.batcher = Batcher(
            CeleryPublisher(celery_app(broker_url, queue), queue),
            size=batch_size,
            interval=0.2,
            max_pending=10_000,
        )
        self.batcher.backoff.maximum = 1.0
        self.publisher = PublisherThread(self.batcher)
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.fed = 0

    def start(self) -> Stream:
        self.publisher.start()
        self.thread.start()
        return self

    def _feed(self) -> None:
        started = time.monotonic()
        for n, item in enumerate(self.items):
            ahead = n / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            self.batcher.add(item)
            self.batcher.tick()
            self.fed = n + 1
        self.batcher.seal()

    def finish(self, timeout: float) -> None:
        """Wait until every event was fed and confirmed by the broker."""
        self.thread.join(timeout)
        assert self.batcher.drain(timeout), f"{self.batcher.pending_events} events unpublished"
        self.publisher.stop()
