"""Rates for the status page: this host's metric totals sampled into a small table, and the
events/s and lag between consecutive samples.

Prometheus counters only say "so many since start"; a rate needs two readings and the time
between them. The web process takes a reading when it serves ``/`` (one per SAMPLE_SECONDS
bucket, whichever gunicorn worker gets there first), so the charts fill while the page is open.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from django.conf import settings
from prometheus_client import CollectorRegistry, multiprocess

# The page refreshes itself this often; one sample per refresh is all a chart needs.
SAMPLE_SECONDS = 10
# The charts show this much; samples older than KEEP_SECONDS are deleted.
WINDOW_SECONDS = 15 * 60
KEEP_SECONDS = 60 * 60

RECEIVED = "ha_ingestor_events_received_total"
WRITTEN = "ha_ingestor_points_written_total"
FAILURES = "ha_ingestor_write_failures_total"
LAG = "ha_ingestor_event_lag_seconds"


def read_totals(path: str | None = None) -> dict[str, Any]:
    """Every process's totals from the multiprocess directory, summed over labels."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path or str(settings.METRICS_DIR))
    totals: dict[str, Any] = {
        "received": 0.0,
        "written": 0.0,
        "failures": {},
        "lag_sum": 0.0,
        "lag_count": 0.0,
        "lag_buckets": {},
    }
    for family in registry.collect():
        for sample in family.samples:
            _add(totals, sample.name, sample.labels, sample.value)
    return totals


def _add(totals: dict[str, Any], name: str, labels: dict[str, str], value: float) -> None:
    if name == RECEIVED:
        totals["received"] += value
    elif name == WRITTEN:
        totals["written"] += value
    elif name == FAILURES:
        category = labels.get("category", "")
        totals["failures"][category] = totals["failures"].get(category, 0.0) + value
    elif name == f"{LAG}_sum":
        totals["lag_sum"] += value
    elif name == f"{LAG}_count":
        totals["lag_count"] += value
    elif name == f"{LAG}_bucket":
        bound = labels["le"]
        totals["lag_buckets"][bound] = totals["lag_buckets"].get(bound, 0.0) + value


def take_sample(
    extra: dict[str, Any], now: float | None = None, totals: dict[str, Any] | None = None
) -> None:
    """Store this moment's totals unless this bucket already has them; prune old samples."""
    from ingestor_project.models import StatusSample

    now = time.time() if now is None else now
    bucket = int(now // SAMPLE_SECONDS)
    if StatusSample.objects.filter(bucket=bucket).exists():
        return
    sample = StatusSample(
        bucket=bucket,
        taken_at=datetime.fromtimestamp(now, UTC),
        totals={**(read_totals() if totals is None else totals), **extra},
    )
    # Two workers serving the page in the same bucket: the second insert is ignored.
    StatusSample.objects.bulk_create([sample], ignore_conflicts=True)
    StatusSample.objects.filter(bucket__lt=bucket - KEEP_SECONDS // SAMPLE_SECONDS).delete()


def recent_samples(now: float | None = None) -> list[Any]:
    from ingestor_project.models import StatusSample

    now = time.time() if now is None else now
    first = int((now - WINDOW_SECONDS) // SAMPLE_SECONDS)
    return list(StatusSample.objects.filter(bucket__gte=first).order_by("bucket"))


@dataclass(frozen=True)
class Interval:
    """What happened between two samples (None: not measurable, e.g. a counter reset)."""

    end: datetime
    received_per_s: float | None
    written_per_s: float | None
    lag_mean: float | None
    lag_p99: float | None
    failures: float | None


def intervals(samples: list[Any]) -> list[Interval]:
    return [_interval(a, b) for a, b in pairwise(samples)]


def _interval(before: Any, after: Any) -> Interval:
    seconds = (after.taken_at - before.taken_at).total_seconds()
    a, b = before.totals, after.totals
    lag_count = _delta(a, b, "lag_count")
    lag_sum = _delta(a, b, "lag_sum")
    buckets = {
        bound: b.get("lag_buckets", {}).get(bound, 0.0) - a.get("lag_buckets", {}).get(bound, 0.0)
        for bound in b.get("lag_buckets", {})
    }
    failures_before = sum(a.get("failures", {}).values())
    failures_after = sum(b.get("failures", {}).values())
    return Interval(
        end=after.taken_at,
        received_per_s=_rate(_delta(a, b, "received"), seconds),
        written_per_s=_rate(_delta(a, b, "written"), seconds),
        lag_mean=lag_sum / lag_count if lag_count and lag_sum is not None else None,
        lag_p99=quantile(0.99, buckets) if lag_count else None,
        failures=_nonnegative(failures_after - failures_before),
    )


def _delta(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    return _nonnegative(b.get(key, 0.0) - a.get(key, 0.0))


def _nonnegative(value: float) -> float | None:
    # A total that went down means a process's samples were wiped (a restart of `make run`).
    return value if value >= 0 else None


def _rate(delta: float | None, seconds: float) -> float | None:
    return delta / seconds if delta is not None and seconds > 0 else None


def quantile(q: float, cumulative: dict[str, float]) -> float | None:
    """Prometheus's histogram_quantile over one interval's cumulative bucket counts."""
    bounds = sorted((float(le), count) for le, count in cumulative.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank, previous_bound, previous_count = q * bounds[-1][1], 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound  # above the highest finite bucket: its bound is all we know
            share = (
                (rank - previous_count) / (count - previous_count) if count > previous_count else 1
            )
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


def last_change(samples: list[Any], listener: str) -> datetime | None:
    """When a listener's event count last went up, to the sampling interval."""
    seen = None
    for before, after in pairwise(samples):
        old = before.totals.get("listener_events", {}).get(listener)
        new = after.totals.get("listener_events", {}).get(listener)
        if old is not None and new is not None and new > old:
            seen = after.taken_at
    return seen
