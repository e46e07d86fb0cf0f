"""The metric catalogue (Prometheus naming: prefix ha_ingestor_, base units, _total counters, no
entity-id labels) and what a process does with its own samples.

Every process on a host writes its samples to settings.METRICS_DIR (PROMETHEUS_MULTIPROC_DIR);
``GET /metrics`` aggregates them (exposition.py). Imported once Django is configured (every
process loads the settings first), so the settings decide at import whether metrics are real or
no-ops.
"""

from __future__ import annotations

import bisect
import math
import os
from typing import Any

import prometheus_client
from django.conf import settings
from prometheus_client import CollectorRegistry, multiprocess

# METRICS_ENABLED=false swaps every metric for a no-op (the benchmark's metrics-off runs).
ENABLED: bool = settings.METRICS_ENABLED


class NoopMetric:
    """What Counter, Gauge and Histogram are when METRICS_ENABLED is false."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def labels(self, *_args: Any, **_kwargs: Any) -> NoopMetric:
        return self

    def inc(self, *_args: Any) -> None:
        pass

    set = observe = dec = inc


Counter = prometheus_client.Counter if ENABLED else NoopMetric
Gauge = prometheus_client.Gauge if ENABLED else NoopMetric
Histogram = prometheus_client.Histogram if ENABLED else NoopMetric


def observe_many(histogram: Any, values: list[float]) -> None:
    """``histogram.observe(v)`` for every value, with one increment per bucket and one of the
    sum instead of two per value: each increment of a multiprocess value is a locked write to
    its mmap file, and the event lag is observed for every point. Relies on prometheus_client's
    Histogram internals (_upper_bounds, _buckets, _sum, pinned in requirements);
    tests/ingestor_project/test_metrics.py holds the result to that of observe()."""
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
EVENTS_DROPPED = Counter(
    "ha_ingestor_events_dropped_total",
    "Events with nothing InfluxDB can store (a NaN or infinite state alone), by reason.",
    ["reason"],
)
TAGS_CAPPED = Counter(
    "ha_ingestor_tag_values_capped_total", "Tag values replaced by _other by the cardinality guard."
)


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished process's live gauges from the aggregate."""
    multiprocess.mark_process_dead(pid or os.getpid(), str(settings.METRICS_DIR))


def serve_port(port: int) -> None:
    """This host's aggregated samples on a port of the process's own (multi-container use)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    start_http_server(port, registry=registry)
