"""Readiness: which checks this deployment needs (built from the settings, here and nowhere else),
run concurrently, each within its own budget, and reported as JSON."""

from __future__ import annotations

import asyncio
import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database

from ingestor_project.celery import app as celery_app
from ingestor_project.checks import (
    Breaker,
    CeleryBroker,
    CeleryWorkers,
    Heartbeat,
    InfluxDB,
    Listener,
    MqttBrokerPort,
)
from ingestor_project.logging import redact_text
from ingestor_project.mqtt_broker import broker_from_url


def readiness_checks() -> list[tuple[str, HealthCheck]]:
    """The named checks of this deployment, from the current settings."""
    budget = datetime.timedelta(seconds=settings.READY_CHECK_TIMEOUT)
    checks: list[tuple[str, HealthCheck]] = [
        ("database", Database()),
        ("broker", CeleryBroker(settings.CELERY_BROKER_URL, timeout=budget)),
        ("influxdb", InfluxDB(_influx_writer, timeout=budget)),
        ("breaker", Breaker(_breaker_is_open)),
    ]
    if settings.READY_CHECK_WORKERS and not settings.CELERY_BROKER_URL.startswith("filesystem"):
        workers = CeleryWorkers(celery_app, settings.CELERY_INGEST_QUEUE, timeout=budget)
        checks.append(("workers", workers))
    if "mqtt" in settings.READY_LISTENERS:
        broker = broker_from_url(settings.MQTT_URL)  # settings validated it
        checks.append(("mqtt_broker", MqttBrokerPort(broker.host, broker.port, timeout=budget)))
    checks += [
        (f"listener_{name}", Listener(name, settings.HEARTBEAT_STALE_SECONDS, _heartbeat))
        for name in settings.READY_LISTENERS
    ]
    return checks


# The apps' own code, imported when a check runs: the project package imports no app at load.
def _influx_writer() -> Any:
    from tasks.influx import writer_from_settings

    return writer_from_settings(settings)


def _breaker_is_open() -> bool:
    from tasks.breaker import OPEN, influx_breaker

    return influx_breaker().state() == OPEN


def _heartbeat(name: str) -> Heartbeat | None:
    from listeners.models import ListenerHeartbeat

    return ListenerHeartbeat.objects.filter(name=name).first()


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
                **({"error": redact_text(str(r.error))} if r.error else {}),
            }
            for name, r in results.items()
        },
    }
    return body, ok


def check_readiness() -> tuple[dict, bool]:
    return report(asyncio.run(run_checks(readiness_checks())))
