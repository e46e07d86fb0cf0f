"""What ``GET /metrics`` answers: every process's samples from settings.METRICS_DIR, plus a few
gauges read at scrape time from the database and the broker."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily


def exposition(path: str | None = None) -> bytes:
    """Every process's samples plus the scrape-time gauges, in Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(ScrapeTimeCollector())
    multiprocess.MultiProcessCollector(registry, path=path or str(settings.METRICS_DIR))
    return generate_latest(registry)


class ScrapeTimeCollector:
    """Gauges read when Prometheus scrapes: dead letters pending, breaker state, listener
    heartbeat age, queue depth. Each source failing is skipped, never failing the scrape."""

    def collect(self):
        yield from _safely(_dead_letter_gauge)
        yield from _safely(_breaker_gauge)
        yield from _safely(_heartbeat_gauge)
        yield from _safely(_queue_depth_gauge)


def _safely(producer):
    try:
        yield from producer()
    except Exception:  # noqa: BLE001 - a scrape must answer even when a dependency is down
        return


def _gauge(name: str, documentation: str, label: str, values: dict[str, float]):
    """One gauge family with a sample per label value."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def _dead_letter_gauge():
    from django.db.models import Count

    from tasks.models import Category, FailedWrite, Status

    counts = dict(
        FailedWrite.objects.filter(status=Status.PENDING)
        .values_list("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
    )
    yield _gauge(
        "ha_ingestor_dead_letters_pending",
        "Dead letters waiting for replay or discard.",
        "category",
        {category: counts.get(category, 0) for category in Category.values},
    )


def _breaker_gauge():
    from tasks.breaker import STATE_VALUES
    from tasks.models import BreakerState

    states = dict(BreakerState.objects.values_list("name", "state"))
    states.setdefault("influxdb", "closed")
    yield _gauge(
        "ha_ingestor_breaker_state",
        "Circuit breaker: 0 closed, 1 half-open, 2 open.",
        "name",
        {name: STATE_VALUES.get(state, 0) for name, state in states.items()},
    )


def _heartbeat_gauge():
    from django.utils import timezone

    from listeners.models import ListenerHeartbeat

    now = timezone.now()
    beats = ListenerHeartbeat.objects.values_list("name", "last_seen")
    yield _gauge(
        "ha_ingestor_listener_heartbeat_age_seconds",
        "Seconds since each listener last reported.",
        "listener",
        {name: (now - seen).total_seconds() for name, seen in beats},
    )


_queue_cache: dict[str, Any] = {"at": 0.0, "depths": {}}
# Asking the broker costs a connection; a scrape every few seconds need not pay it each time.
QUEUE_DEPTH_CACHE_SECONDS = 10.0


def _queue_depth_gauge():
    if time.monotonic() - _queue_cache["at"] > QUEUE_DEPTH_CACHE_SECONDS:
        _queue_cache["depths"] = queue_depths(
            settings.CELERY_BROKER_URL,
            [settings.CELERY_INGEST_QUEUE, settings.CELERY_MAINTENANCE_QUEUE],
        )
        _queue_cache["at"] = time.monotonic()
    yield _gauge(
        "ha_ingestor_queue_depth_messages",
        "Messages waiting in the broker.",
        "queue",
        _queue_cache["depths"],
    )


def queue_depths(broker_url: str, queues: list[str]) -> dict[str, int]:
    from kombu import Connection

    if not broker_url.startswith(("amqp", "pyamqp", "redis")):
        return {}
    depths = {}
    with Connection(broker_url, connect_timeout=2) as conn:
        channel = conn.channel()
        for queue in queues:
            try:
                depths[queue] = channel.queue_declare(queue, passive=True).message_count
            except Exception:  # noqa: BLE001 - a queue not declared yet has no depth
                channel = conn.channel()
    return depths
