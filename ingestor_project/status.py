"""GET /: the operator's status page. Events/s and lag over the last minutes, queue depth, write
failures, dead letters, the breaker, each listener; links to the admin, Flower, /ready, /metrics.

It shows what /metrics shows (numbers and states, never the home's data, error texts or
settings), so it is protected the same way: open when /metrics is, staff login when
METRICS_TOKEN is set. Staff also get links into the admin.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from ingestor_project import status_samples
from ingestor_project.charts import Chart, chart
from ingestor_project.exposition import queue_depths

log = structlog.get_logger(__name__)

# Asking the broker costs a connection; the page refreshes every SAMPLE_SECONDS.
QUEUE_CACHE_SECONDS = 5.0
_queue_cache: dict[str, Any] = {"at": -QUEUE_CACHE_SECONDS, "depths": None}


@require_GET
def status(request: HttpRequest) -> HttpResponse:
    staff = request.user.is_active and request.user.is_staff
    if settings.METRICS_TOKEN and not staff:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    response = render(request, "ingestor_project/status.html", page_context(request, staff))
    add_never_cache_headers(response)
    return response


def page_context(request: HttpRequest, staff: bool) -> dict[str, Any]:
    listeners = _safely("listeners", _listeners, [])
    totals = status_samples.read_totals()
    extra = _listener_events(listeners)
    _safely("sample", lambda: status_samples.take_sample(extra, totals=totals), None)
    samples = _safely("samples", status_samples.recent_samples, [])
    _add_last_events(listeners, samples)
    return {
        "staff": staff,
        "refresh_seconds": status_samples.SAMPLE_SECONDS,
        "window_minutes": status_samples.WINDOW_SECONDS // 60,
        "charts": charts(status_samples.intervals(samples)),
        "totals": totals,
        "failures": sorted(totals["failures"].items()),
        "queues": _safely("queues", _queue_depths, None),
        "dead_letters": _safely("dead_letters", _dead_letters, None),
        "breakers": _safely("breakers", _breakers, None),
        "listeners": listeners,
        "cursors": _safely("cursors", _cursors, []),
        "links": _links(request, staff),
        "now": timezone.now(),
    }


def _safely(section: str, produce: Any, default: Any) -> Any:
    try:
        return produce()
    except Exception as exc:  # noqa: BLE001 - one dependency down must not blank the whole page
        log.warning("status_section_failed", section=section, error=type(exc).__name__)
        return default


def charts(intervals: list[status_samples.Interval]) -> list[Chart]:
    times = [interval.end for interval in intervals]
    events = chart(
        "Events per second",
        "events/s",
        times,
        {
            ("received", "received"): [i.received_per_s for i in intervals],
            ("written", "written"): [i.written_per_s for i in intervals],
        },
    )
    lag = chart(
        "Lag, Home Assistant to InfluxDB",
        "s",
        times,
        {
            ("mean", "received"): [i.lag_mean for i in intervals],
            ("p99", "written"): [i.lag_p99 for i in intervals],
        },
        fmt="{:.2f}",
    )
    failures = chart(
        "Write failures",
        "per interval",
        times,
        {("failures", "failed"): [i.failures for i in intervals]},
        fmt="{:.0f}",
    )
    return [events, lag, failures]


def _listeners() -> list[dict[str, Any]]:
    from listeners.models import ListenerHeartbeat

    now, stale = timezone.now(), timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    return [
        {
            "name": beat.name,
            "connected": beat.connected and now - beat.last_seen <= stale,
            "stale": now - beat.last_seen > stale,
            "last_seen": beat.last_seen,
            "events": beat.details.get("events"),
            "pending": beat.details.get("pending_events", beat.details.get("unacked")),
            "reconnects": beat.details.get("reconnects"),
            "last_event": None,
        }
        for beat in ListenerHeartbeat.objects.order_by("name")
    ]


def _listener_events(listeners: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {row["name"]: row["events"] for row in listeners if row["events"] is not None}
    return {"listener_events": counts}


def _add_last_events(listeners: list[dict[str, Any]], samples: list[Any]) -> None:
    for row in listeners:
        row["last_event"] = status_samples.last_change(samples, row["name"])


def _queue_depths() -> dict[str, int] | None:
    if time.monotonic() - _queue_cache["at"] >= QUEUE_CACHE_SECONDS:
        _queue_cache["at"] = time.monotonic()
        _queue_cache["depths"] = None
        queues = [settings.CELERY_INGEST_QUEUE, settings.CELERY_MAINTENANCE_QUEUE]
        _queue_cache["depths"] = queue_depths(settings.CELERY_BROKER_URL, queues) or None
    return _queue_cache["depths"]


def _dead_letters() -> list[dict[str, Any]]:
    from django.db.models import Count

    from tasks.models import Category, FailedWrite, Status

    pending = dict(
        FailedWrite.objects.filter(status=Status.PENDING)
        .values_list("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
    )
    url = reverse("admin:tasks_failedwrite_changelist")
    return [
        {
            "category": value,
            "label": label,
            "pending": pending.get(value, 0),
            "url": f"{url}?status__exact=pending&category__exact={value}",
        }
        for value, label in Category.choices
    ]


def _breakers() -> list[dict[str, Any]]:
    from tasks.breaker import INFLUX_BREAKER
    from tasks.models import CLOSED, BreakerState

    rows = {row.name: row for row in BreakerState.objects.all()}
    rows.setdefault(INFLUX_BREAKER, BreakerState(name=INFLUX_BREAKER, state=CLOSED))
    return [
        {
            "name": row.name,
            "state": row.state,
            "failures": row.failures,
            "opened_at": row.opened_at,
        }
        for row in sorted(rows.values(), key=lambda row: row.name)
    ]


def _cursors() -> list[dict[str, Any]]:
    from listeners.models import SourceCursor

    return [
        {"name": row.name, "position": datetime.fromtimestamp(row.position_ns / 1e9, UTC)}
        for row in SourceCursor.objects.order_by("name")
    ]


def _links(request: HttpRequest, staff: bool) -> list[tuple[str, str]]:
    host = re.sub(r":\d+$", "", request.get_host())
    flower = getattr(settings, "FLOWER_URL", "") or f"{request.scheme}://{host}:5555/"
    links = [
        ("Admin", reverse("admin:index")),
        ("Flower", flower),
        ("Readiness (/ready)", reverse("ready")),
        ("Metrics (/metrics)", reverse("metrics")),
    ]
    if staff:
        links.insert(1, ("Dead letters", reverse("admin:tasks_failedwrite_changelist")))
    return links
