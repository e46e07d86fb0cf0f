"""What every listener process wires the same way: the batcher and its publisher thread, the
heartbeat, the per-process metrics port, and the orderly stop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings

from ingestor_project import metrics
from ingestor_project.celery import app as celery_app
from ingestor_project.gc_tuning import tune_gc
from listeners.batching import Batcher, PublisherThread
from listeners.heartbeat import HeartbeatThread
from listeners.publish import CeleryPublisher

log = structlog.get_logger(__name__)


def settings_batcher(source: str, serializer: str = "json") -> Batcher:
    return Batcher(
        CeleryPublisher(
            celery_app,
            settings.CELERY_INGEST_QUEUE,
            serializer,
            max_bytes=settings.INGEST_MAX_BATCH_BYTES,
        ),
        size=settings.INGEST_BATCH_SIZE,
        interval=settings.INGEST_FLUSH_INTERVAL,
        max_pending=settings.INGEST_MAX_PENDING_BATCHES,
        source=source,
    )


class ListenerServices:
    """The publisher thread, the heartbeat and the metrics port of one listener process."""

    def __init__(
        self, name: str, batcher: Batcher, status: Callable[[], tuple[bool, dict[str, Any]]]
    ) -> None:
        self.batcher = batcher
        self.publisher = PublisherThread(batcher)
        self.heartbeat = HeartbeatThread(name, status)

    def start(self) -> None:
        tune_gc(settings.GC_THRESHOLD)
        self.publisher.start()
        self.heartbeat.start()
        if settings.METRICS_PORT:
            metrics.serve_port(settings.METRICS_PORT)

    def stop(self) -> None:
        """After the listener has drained its batcher: stop the threads, say goodbye."""
        self.publisher.stop()
        self.heartbeat.stop()
        self.heartbeat.beat_once()  # the last word: disconnected
        metrics.mark_process_dead()


def report_stop(batcher: Batcher, stats: dict[str, Any], drained: bool) -> None:
    """Log the final counts; exit 1 when events were left unpublished, so it shows."""
    log.info("listener_stopped", published_events=batcher.published_events, **stats)
    if not drained:
        log.error(
            "listener_stopped_with_unpublished_events",
            category="connection",
            events=batcher.pending_events,
        )
        sys.exit(1)
