"""The metric catalogue (Prometheus naming: prefix ha_ingestor_, base units, _total counters, no
entity-id labels) and its exposition.

Every process on a host writes its samples to PROMETHEUS_MULTIPROC_DIR (set by the settings, or
by the process manager before start-up); ``GET /metrics`` on the web process aggregates them,
plus a few gauges read at scrape time from the database and the broker.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from typing import Any

import prometheus_client
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

# METRICS_ENABLED=false swaps every metric for a no-op: the benchmark measures what metrics
# cost by running the same load with and without them.
ENABLED = os.environ.get("METRICS_ENABLED", "true").strip().lower() not in ("false", "0", "no")


class _Noop:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def labels(self, *_args: Any, **_kwargs: Any) -> _Noop:
        return self

    def inc(self, *_args: Any) -> None:
        pass

    set = observe = dec = inc


Counter = prometheus_client.Counter if ENABLED else _Noop
Gauge = prometheus_client.Gauge if ENABLED else _Noop
Histogram = prometheus_client.Histogram if ENABLED else _Noop


def observe_many(histogram: Any, values: list[float]) -> None:
    """``histogram.observe(v)`` for every value, with one increment per bucket and one of the
    sum instead of two per value: each increment of a multiprocess value is a locked write to
    its mmap file, and the event lag is observed for every point (a tenth of a worker's CPU at
    full rate). Relies on prometheus_client's Histogram internals (_upper_bounds, _buckets,
    _sum, pinned in requirements); tests/ingestor_project/test_metrics.py holds the result to
    that of observe()."""
    if not ENABLED or not values:
        return
    bounds, counts = histogram._upper_bounds, {}
    for value in values:
        index = bisect.bisect_left(bounds, value)  # the first bound >= value, like observe()
        counts[index] = counts.get(index, 0) + 1
    histogram._sum.inc(math.fsum(values))
    for index, count in counts.items():
        histogram._buckets[index].inc(count)


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600)
_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# --- listeners ---------------------------------------------------------------------------------
EVENTS_RECEIVED = Counter(
    "ha_ingestor_events_received_total", "Events received from a source.", ["source", "event_type"]
)
EVENTS_FILTERED = Counter(
    "ha_ingestor_events_filtered_total", "Events dropped by the entity filter.", ["source"]
)
EVENTS_UNPARSEABLE = Counter(
    "ha_ingestor_events_unparseable_total", "Source messages that could not be parsed.", ["source"]
)
EVENTS_BACKFILLED = Counter(
    "ha_ingestor_events_backfilled_total",
    "Events fetched from Home Assistant's history.",
    ["source"],
)
BATCHES_PUBLISHED = Counter(
    "ha_ingestor_batches_published_total", "Batches confirmed by the broker.", ["source"]
)
PUBLISH_FAILURES = Counter(
    "ha_ingestor_publish_failures_total",
    "Failed attempts to publish a batch (kept and retried).",
    ["source"],
)
PUBLISH_SECONDS = Histogram(
    "ha_ingestor_publish_duration_seconds",
    "Time to publish one batch, broker confirm included.",
    ["source"],
    buckets=_LATENCY_BUCKETS,
)
PENDING_EVENTS = Gauge(
    "ha_ingestor_listener_pending_events",
    "Events held by a listener, not yet confirmed by the broker.",
    ["source"],
    multiprocess_mode="livesum",
)
CONNECTED = Gauge(
    "ha_ingestor_listener_connected",
    "1 while a listener is connected.",
    ["source"],
    multiprocess_mode="livemax",
)
RECONNECTS = Counter(
    "ha_ingestor_listener_reconnects_total", "Connections lost and re-established.", ["source"]
)
PING_SECONDS = Histogram(
    "ha_ingestor_listener_ping_rtt_seconds",
    "Application-level ping round trip.",
    ["source"],
    buckets=_LATENCY_BUCKETS,
)
MQTT_UNACKED = Gauge(
    "ha_ingestor_mqtt_unacked_messages",
    "MQTT messages received but not yet acknowledged.",
    multiprocess_mode="livesum",
)
# --- business metrics of the home (bounded labels) ---------------------------------------------
STATE_CHANGES = Counter("ha_ingestor_state_changes_total", "State changes by domain.", ["domain"])
AUTOMATIONS = Counter("ha_ingestor_automations_triggered_total", "Automations triggered.")
SERVICE_CALLS = Counter("ha_ingestor_service_calls_total", "Service calls by domain.", ["domain"])
ENTITIES_SEEN = Gauge(
    "ha_ingestor_entities_seen",
    "Distinct entities seen since start.",
    ["source"],
    multiprocess_mode="livemax",
)
# --- worker ------------------------------------------------------------------------------------
POINTS_WRITTEN = Counter("ha_ingestor_points_written_total", "Points InfluxDB accepted.")
WRITE_SECONDS = Histogram(
    "ha_ingestor_write_duration_seconds",
    "Time to write one batch to InfluxDB.",
    buckets=_LATENCY_BUCKETS,
)
BATCH_EVENTS = Histogram(
    "ha_ingestor_batch_size_events", "Events per batch.", buckets=_SIZE_BUCKETS
)
LAG_SECONDS = Histogram(
    "ha_ingestor_event_lag_seconds",
    "From Home Assistant's timestamp to written in InfluxDB.",
    buckets=_LAG_BUCKETS,
)
WRITE_FAILURES = Counter(
    "ha_ingestor_write_failures_total", "Failed writes by category.", ["category"]
)
RETRIES = Counter(
    "ha_ingestor_write_retries_total", "Write retries scheduled by category.", ["category"]
)
DEAD_LETTERS = Counter(
    "ha_ingestor_dead_letters_recorded_total", "Dead letters recorded by category.", ["category"]
)
TAGS_CAPPED = Counter(
    "ha_ingestor_tag_values_capped_total", "Tag values replaced by _other by the cardinality guard."
)


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished process's live gauges from the aggregate."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


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
    from django.conf import settings

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


def exposition(path: str | None = None) -> bytes:
    """Every process's samples plus the scrape-time gauges, in Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(ScrapeTimeCollector())
    directory = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:  # a single process: its own registry holds everything
        return generate_latest(REGISTRY) + generate_latest(registry)
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def serve_port(port: int) -> None:
    """This host's aggregated samples on a port of the process's own (multi-container use)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
        start_http_server(port, registry=registry)
    else:
        start_http_server(port)
