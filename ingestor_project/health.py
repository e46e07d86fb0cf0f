"""Liveness and readiness, built on django-health-check 4.x: one small check per dependency.

GET /health answers without I/O. GET /ready runs every check concurrently, each within its own
budget, and answers JSON with each check's status and duration: 200 when all pass, else 503.
Check messages never carry URLs, tokens or passwords.

Each web process keeps its last readiness result for at most READY_CACHE_SECONDS and refreshes
it in one background thread once it is past half that age, so a probe under load answers from
memory while the result it serves is never older than the bound (the body says how old).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections, transaction
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views import View
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable


def _budget() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.READY_CHECK_TIMEOUT)


@dataclasses.dataclass
class Broker(HealthCheck):
    timeout: datetime.timedelta = dataclasses.field(default_factory=_budget, repr=False)

    def run(self) -> None:
        from kombu import Connection

        try:
            with Connection(
                settings.CELERY_BROKER_URL, connect_timeout=self.timeout.total_seconds()
            ) as conn:
                conn.ensure_connection(max_retries=0)
        except Exception as exc:  # noqa: BLE001 - the message must not echo the broker URL
            raise ServiceUnavailable(f"broker unreachable: {type(exc).__name__}") from None


@dataclasses.dataclass
class InfluxDB(HealthCheck):
    """InfluxDB answers, accepts our credentials and has our database or bucket."""

    timeout: datetime.timedelta = dataclasses.field(default_factory=_budget, repr=False)

    def run(self) -> None:
        from tasks.errors import WriteError
        from tasks.influx import writer_from_settings

        writer = writer_from_settings(settings)
        try:
            writer.check()
        except WriteError as exc:
            raise ServiceUnavailable(f"{exc.category}: {exc}"[:300]) from None
        finally:
            writer.close()


@dataclasses.dataclass
class Workers(HealthCheck):
    """At least one Celery worker answers a ping."""

    timeout: datetime.timedelta = dataclasses.field(default_factory=_budget, repr=False)

    def run(self) -> None:
        from ingestor_project.celery import app

        try:
            replies = app.control.ping(timeout=min(1.0, self.timeout.total_seconds()), limit=1)
        except Exception as exc:  # noqa: BLE001 - any failure means no worker answered
            raise ServiceUnavailable(f"worker ping failed: {type(exc).__name__}") from None
        if not replies:
            raise ServiceUnavailable("no Celery worker answered")


@dataclasses.dataclass
class ListenerHeartbeat(HealthCheck):
    listener: str = "homeassistant"

    def run(self) -> None:
        from listeners.models import ListenerHeartbeat as Row

        row = Row.objects.filter(name=self.listener).first()
        if row is None:
            raise ServiceUnavailable(f"listener {self.listener} has never reported")
        age = (timezone.now() - row.last_seen).total_seconds()
        if age > settings.HEARTBEAT_STALE_SECONDS:
            raise ServiceUnavailable(f"listener {self.listener} silent for {age:.0f} s")
        if not row.connected:
            raise ServiceUnavailable(f"listener {self.listener} is not connected to its source")


@dataclasses.dataclass
class MqttBroker(HealthCheck):
    """The MQTT broker accepts connections (checked when the MQTT listener is expected)."""

    timeout: datetime.timedelta = dataclasses.field(default_factory=_budget, repr=False)

    def run(self) -> None:
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(settings.MQTT_URL)
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        try:
            with socket.create_connection(
                (parts.hostname or "localhost", port), timeout=self.timeout.total_seconds()
            ):
                pass
        except OSError as exc:
            raise ServiceUnavailable(f"MQTT broker unreachable: {type(exc).__name__}") from None


@dataclasses.dataclass
class Breaker(HealthCheck):
    def run(self) -> None:
        from tasks.breaker import OPEN
        from tasks.tasks import influx_breaker

        if influx_breaker().state() == OPEN:
            raise ServiceUnavailable("InfluxDB circuit breaker is open")


def readiness_checks() -> list[tuple[str, HealthCheck]]:
    checks: list[tuple[str, HealthCheck]] = [
        ("database", Database()),
        ("broker", Broker()),
        ("influxdb", InfluxDB()),
        ("breaker", Breaker()),
    ]
    if settings.READY_CHECK_WORKERS and not settings.CELERY_BROKER_URL.startswith("filesystem"):
        checks.append(("workers", Workers()))
    if "mqtt" in settings.READY_LISTENERS:
        checks.append(("mqtt_broker", MqttBroker()))
    checks += [
        (f"listener_{name}", ListenerHeartbeat(listener=name)) for name in settings.READY_LISTENERS
    ]
    return checks


class CheckThreads(ThreadPoolExecutor):
    """Long-lived threads for the synchronous checks (a fresh pool per call would start new
    threads, and so new database connections, on every readiness run).

    Each check leaves no database connection behind: the database check must prove that a new
    connection is accepted, and an idle connection per thread would only hold server slots.
    """

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_without_lingering_connections, fn, *args, **kwargs)


def _without_lingering_connections(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


# Up to 8 checks run at once (database, broker, InfluxDB, breaker, workers, MQTT broker, two
# listeners); a check stuck past its budget keeps its thread until its own client times out.
CHECK_THREADS = CheckThreads(max_workers=8, thread_name_prefix="ready-check")


async def run_checks(checks: list[tuple[str, HealthCheck]]) -> dict[str, HealthCheckResult]:
    results = await asyncio.gather(*(check.get_result(CHECK_THREADS) for _, check in checks))
    return {name: result for (name, _), result in zip(checks, results, strict=True)}


def report(results: dict[str, HealthCheckResult]) -> tuple[dict, bool]:
    ok = not any(result.error for result in results.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {
            name: {
                "status": "ok" if not r.error else "unavailable",
                "duration_ms": round(r.time_taken * 1000, 1),
                **({"error": str(r.error)} if r.error else {}),
            }
            for name, r in results.items()
        },
    }
    return body, ok


def check_readiness() -> tuple[dict, bool]:
    return report(asyncio.run(run_checks(readiness_checks())))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    body: dict
    ok: bool
    finished_at: float  # the cache's clock when the checks finished


class ReadinessCache:
    """The last readiness result of this process, refreshed by one background thread.

    A result younger than the bound is served as it is; past half the bound, serving it also
    starts a refresh in the background (at most one at a time), so under steady traffic no
    request waits. The first request, or one that finds the result past the bound, waits for the
    refresh already running or starts one: never a second. Works in gunicorn's sync workers: the
    thread starts with the first request, after the fork, and refreshes while the worker waits
    for the next connection.
    """

    def __init__(
        self,
        run: Callable[[], tuple[dict, bool]] = check_readiness,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run, self.clock = run, clock
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._pending: Future[Snapshot] | None = None
        self._generation = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready-refresh")

    def cached(self, max_age: float) -> tuple[Snapshot, float] | None:
        """The last result and its age if younger than max_age, else None."""
        with self._lock:
            if self._latest is None:
                return None
            age = self.clock() - self._latest.finished_at
            if age >= max_age:
                return None
            if age >= max_age / 2:
                self._refresh_locked()
            return self._latest, age

    def refresh(self) -> Future[Snapshot]:
        """The refresh in flight, or a new one."""
        with self._lock:
            return self._refresh_locked()

    def clear(self) -> Future[Snapshot] | None:
        """Forget the result (settings changed); returns the refresh still running, if any,
        whose result will not be kept."""
        with self._lock:
            pending, self._pending, self._latest = self._pending, None, None
            self._generation += 1
            return pending

    def _refresh_locked(self) -> Future[Snapshot]:
        if self._pending is None:
            self._pending = self._thread.submit(self._refresh, self._generation)
        return self._pending

    def _refresh(self, generation: int) -> Snapshot:
        snapshot = None
        try:
            body, ok = self.run()
            snapshot = Snapshot(body, ok, self.clock())
            return snapshot
        finally:
            with self._lock:
                if generation == self._generation:
                    self._pending = None
                    if snapshot is not None:
                        self._latest = snapshot

    def get(self, max_age: float, timeout: float) -> tuple[Snapshot, float] | None:
        """A result at most max_age old and its age, or None if the checks overran timeout."""
        served = self.cached(max_age)
        if served is not None:
            return served
        try:
            # Waiting does not cancel: other requests may share this refresh.
            snapshot = self.refresh().result(timeout)
        except TimeoutError:
            return None
        return snapshot, max(0.0, self.clock() - snapshot.finished_at)


READINESS = ReadinessCache()


@receiver(setting_changed)
def _forget_readiness(**_kwargs) -> None:
    # Any setting may change what a check does (URLs, listeners, thresholds): a result computed
    # under the old ones must not be served under the new (tests override settings this way).
    READINESS.clear()


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ReadinessView(View):
    """JSON readiness from django-health-check's checks: 200 when all pass, else 503.

    A synchronous view: a cached answer needs no event loop, and an async view under gunicorn's
    sync workers would start a thread and an event loop for every request.
    """

    def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        body, ok = self.readiness()
        response = JsonResponse(body, status=200 if ok else 503)
        add_never_cache_headers(response)
        return response

    def readiness(self) -> tuple[dict, bool]:
        max_age = settings.READY_CACHE_SECONDS
        if not max_age:
            return check_readiness()
        # Every check gives up one second after its budget (django-health-check's wait_for).
        served = READINESS.get(max_age, timeout=settings.READY_CHECK_TIMEOUT + 2)
        if served is None:
            return {
                "status": "unavailable",
                "error": "readiness checks did not finish in time",
            }, False
        snapshot, age = served
        return {**snapshot.body, "age_s": round(age, 3)}, snapshot.ok
