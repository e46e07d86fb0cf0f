"""Liveness and readiness, built on django-health-check 4.x: one small check per dependency.

GET /health answers without I/O. GET /ready runs every check concurrently, each within its own
budget, and answers JSON with each check's status and duration: 200 when all pass, else 503.
Check messages never carry URLs, tokens or passwords.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


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


async def run_checks(checks: list[tuple[str, HealthCheck]]) -> dict[str, HealthCheckResult]:
    results = await asyncio.gather(*(check.get_result() for _, check in checks))
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


class ReadinessView(HealthCheckView):
    """django-health-check's view, answering our JSON with 503 (not 500) when unready."""

    async def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        body, ok = report(await run_checks(readiness_checks()))
        return JsonResponse(body, status=200 if ok else 503)
