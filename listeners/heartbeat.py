"""A listener's heartbeat: a row the web process can read to know the listener is alive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from django.db import close_old_connections
from django.utils import timezone

from listeners.models import ListenerHeartbeat

log = structlog.get_logger(__name__)

# Beats every few seconds; readiness calls a listener stale after HEARTBEAT_STALE_SECONDS (30 s
# by default), so several missed beats in a row, not one slow database write, make it unready.
INTERVAL_SECONDS = 5.0


def beat(name: str, connected: bool, details: dict[str, Any]) -> None:
    ListenerHeartbeat.objects.update_or_create(
        name=name,
        defaults={"last_seen": timezone.now(), "connected": connected, "details": details},
    )


class HeartbeatThread(threading.Thread):
    def __init__(
        self,
        name: str,
        status: Callable[[], tuple[bool, dict[str, Any]]],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.listener_name, self.status, self.interval = name, status, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.beat_once()
            self.stopping.wait(self.interval)

    def beat_once(self) -> None:
        try:
            close_old_connections()
            connected, details = self.status()
            beat(self.listener_name, connected, details)
        except Exception as exc:  # noqa: BLE001 - a missed beat must never stop the listener
            log.warning(
                "heartbeat_failed",
                listener=self.listener_name,
                error=repr(exc)[:300],
                category="connection",
            )

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
