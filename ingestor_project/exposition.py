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


def _dead_letter_gauge():
    from django.db.models import Count

    from tasks.models import Category, FailedWrite, Status

    family = GaugeMetricFamily(
        "ha_ingestor_dead_letters_pending",
        "Dead letters waiting for replay or discard.",
        labels=["category"],
    )
    counts = dict(
        FailedWrite.objects.filter(status=Status.PENDING)
        .values_list("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
    )
    for category in Category.values:
        family.add_metric([category], counts.get(category, 0))
    yield family


def _breaker_gauge():
    from tasks.breaker import STATE_VALUES
    from tasks.models import BreakerState

    family = GaugeMetricFamily(
        "ha_ingestor_breaker_state",
        "Circuit breaker: 0 closed, 1 half-open, 2 open.",
        labels=["name"],
    )
    states = dict(BreakerState.objects.values_list("name", "state"))
    states.setdefault("influxdb", "closed")
    for name, state in states.items():
        family.add_metric([name], STATE_VALUES.get(state, 0))
    yield family


def _heartbeat_gauge():
    from django.utils import timezone

    from listeners.models import ListenerHeartbeat

    family = GaugeMetricFamily(
        "ha_ingestor_listener_heartbeat_age_seconds",
        "Seconds since each listener last reported.",
        labels=["listener"],
    )
    now = timezone.now()
    for name, seen in ListenerHeartbeat.objects.values_list("name", "last_seen"):
        family.add_metric([name], (now - seen).total_seconds())
    yield family


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
    family = GaugeMetricFamily(
        "ha_ingestor_queue_depth_messages", "Messages waiting in the broker.", labels=["queue"]
    )
    for queue, depth in _queue_cache["depths"].items():
        family.add_metric([queue], depth)
    yield family


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
