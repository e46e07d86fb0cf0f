"""The readiness checks, one per dependency, in django-health-check 4.x style: each takes what it
needs as fields (readiness.py builds them from the settings) and its run() reads no settings.

Check messages never carry URLs, tokens or passwords: those fields are left out of repr().
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

# django-health-check's own default budget.
DEFAULT_TIMEOUT = datetime.timedelta(seconds=5)


class Heartbeat(Protocol):
    last_seen: datetime.datetime
    connected: bool


class Probe(Protocol):
    def check(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class CeleryBroker(HealthCheck):
    """The Celery broker accepts a connection."""

    broker_url: str = field(repr=False)
    timeout: datetime.timedelta = field(default=DEFAULT_TIMEOUT, repr=False)

    def run(self) -> None:
        from kombu import Connection

        try:
            with Connection(self.broker_url, connect_timeout=self.timeout.total_seconds()) as conn:
                conn.ensure_connection(max_retries=0)
        except Exception as exc:  # noqa: BLE001 - the message must not echo the broker URL
            raise ServiceUnavailable(f"broker unreachable: {type(exc).__name__}") from None


@dataclass
class InfluxDB(HealthCheck):
    """InfluxDB answers, accepts our credentials and has our database or bucket.

    ``connect`` returns a fresh writer; its check() raises a write error with a ``category``.
    """

    connect: Callable[[], Probe] = field(repr=False)
    timeout: datetime.timedelta = field(default=DEFAULT_TIMEOUT, repr=False)

    def run(self) -> None:
        writer = self.connect()
        try:
            writer.check()
        except Exception as exc:
            category = getattr(exc, "category", None)
            if category is None:
                raise  # not a classified write error: django-health-check logs it
            raise ServiceUnavailable(f"{category}: {exc}"[:300]) from None
        finally:
            writer.close()


@dataclass
class CeleryWorkers(HealthCheck):
    """At least one Celery worker consumes our ingest queue.

    A ping would be answered by any worker on the broker's virtual host, other applications'
    too: ask each worker which queues it consumes (inspect active_queues) instead.
    """

    app: Any = field(repr=False)
    queue: str = field(repr=False)
    timeout: datetime.timedelta = field(default=DEFAULT_TIMEOUT, repr=False)

    def run(self) -> None:
        # Every worker on the vhost is asked and all replies are awaited: half a second is
        # plenty for a reply over a local broker; the readiness cache keeps it off the request.
        wait = min(0.5, self.timeout.total_seconds())
        try:
            replies = self.app.control.inspect(timeout=wait).active_queues() or {}
        except Exception as exc:  # noqa: BLE001 - any failure means no worker answered
            raise ServiceUnavailable(f"worker inspection failed: {type(exc).__name__}") from None
        if not any(self.queue in _queue_names(queues) for queues in replies.values()):
            raise ServiceUnavailable(f"no Celery worker consumes the {self.queue} queue")


def _queue_names(queues: Any) -> set[str]:
    return {q.get("name") for q in queues or [] if isinstance(q, dict)}


@dataclass
class Listener(HealthCheck):
    """A listener reported recently and is connected to its source.

    ``heartbeat`` returns the listener's last heartbeat by name, or None if it never reported.
    """

    name: str
    stale_after: float = field(repr=False)
    heartbeat: Callable[[str], Heartbeat | None] = field(repr=False)

    def run(self) -> None:
        beat = self.heartbeat(self.name)
        if beat is None:
            raise ServiceUnavailable(f"listener {self.name} has never reported")
        age = (timezone.now() - beat.last_seen).total_seconds()
        if age > self.stale_after:
            raise ServiceUnavailable(f"listener {self.name} silent for {age:.0f} s")
        if not beat.connected:
            raise ServiceUnavailable(f"listener {self.name} is not connected to its source")


@dataclass
class MqttBrokerPort(HealthCheck):
    """The MQTT broker accepts TCP connections (checked when the MQTT listener is expected)."""

    host: str = field(repr=False)
    port: int = field(repr=False)
    timeout: datetime.timedelta = field(default=DEFAULT_TIMEOUT, repr=False)

    def run(self) -> None:
        try:
            with socket.create_connection(
                (self.host, self.port), timeout=self.timeout.total_seconds()
            ):
                pass
        except OSError as exc:
            raise ServiceUnavailable(f"MQTT broker unreachable: {type(exc).__name__}") from None


@dataclass
class Breaker(HealthCheck):
    """The InfluxDB circuit breaker is not open (``is_open`` asks the shared breaker)."""

    is_open: Callable[[], bool] = field(repr=False)

    def run(self) -> None:
        if self.is_open():
            raise ServiceUnavailable("InfluxDB circuit breaker is open")
