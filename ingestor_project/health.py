"""GET /ready: the readiness result (readiness.py) served from a per-process cache.

It answers JSON with each check's status and duration: 200 when all pass, else 503. Each web
process keeps its last readiness result for at most READY_CACHE_SECONDS and refreshes
it in one background thread once it is past half that age, so a probe under load answers from
memory while the result it serves is never older than the bound (the body says how old).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError, transaction
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views import View

from ingestor_project.readiness import check_readiness
from ingestor_project.views import bears_metrics_token


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


def may_see_details(request: HttpRequest) -> bool:
    """Error strings (which may name hosts and databases) for Prometheus's token or a logged-in
    staff user; anyone else gets the statuses."""
    if bears_metrics_token(request):
        return True
    try:
        user = request.user  # type: ignore[attr-defined]
        return bool(user.is_authenticated and user.is_active and user.is_staff)
    except DatabaseError:
        return False  # the session store is down: readiness itself will say so


def statuses_only(body: dict) -> dict:
    checks = {
        name: {k: v for k, v in check.items() if k != "error"}
        for name, check in body.get("checks", {}).items()
    }
    return {**body, "checks": checks} if "checks" in body else body


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ReadinessView(View):
    """JSON readiness from django-health-check's checks: 200 when all pass, else 503.

    A synchronous view: a cached answer needs no event loop, and an async view under gunicorn's
    sync workers would start a thread and an event loop for every request.
    """

    def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        body, ok = self.readiness()
        if not may_see_details(request):
            body = statuses_only(body)
        response = JsonResponse(body, status=200 if ok else 503)
        add_never_cache_headers(response)
        # "Not ready" is this endpoint's answer, not a server error: Django would log every 503
        # at ERROR (a wall of them while `make run` starts); the access log still has each one.
        response._has_been_logged = True
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
