"""Listener metrics, with label children cached: the per-event path stays a dict lookup."""

from __future__ import annotations

from typing import Any

from ingestor_project import metrics


class ListenerMetrics:
    def __init__(self, source: str) -> None:
        self.source = source
        self._received: dict[str, Any] = {}
        self._domains: dict[str, Any] = {}
        self._service_domains: dict[str, Any] = {}
        self.entities: set[str] = set()
        self._filtered = metrics.EVENTS_FILTERED.labels(source)
        self._unparseable = metrics.EVENTS_UNPARSEABLE.labels(source)
        self._connected = metrics.CONNECTED.labels(source)
        self._reconnects = metrics.RECONNECTS.labels(source)
        self._entities_seen = metrics.ENTITIES_SEEN.labels(source)
        self._backfilled = metrics.EVENTS_BACKFILLED.labels(source)

    def received(self, event: dict[str, Any]) -> None:
        event_type = event["event_type"]
        child = self._received.get(event_type)
        if child is None:
            child = self._received[event_type] = metrics.EVENTS_RECEIVED.labels(
                self.source, event_type
            )
        child.inc()
        if event_type == "state_changed":
            self._state_change(event["entity_id"])
        elif event_type == "automation_triggered":
            metrics.AUTOMATIONS.inc()
        elif event_type == "call_service":
            self._service_call(event.get("data") or {})

    def _state_change(self, entity_id: str) -> None:
        domain = entity_id.split(".", 1)[0]
        child = self._domains.get(domain)
        if child is None:
            child = self._domains[domain] = metrics.STATE_CHANGES.labels(domain)
        child.inc()
        if entity_id not in self.entities:
            self.entities.add(entity_id)
            self._entities_seen.set(len(self.entities))

    def _service_call(self, data: dict[str, Any]) -> None:
        domain = str(data.get("domain") or "unknown")[:64]
        child = self._service_domains.get(domain)
        if child is None:
            child = self._service_domains[domain] = metrics.SERVICE_CALLS.labels(domain)
        child.inc()

    def filtered(self) -> None:
        self._filtered.inc()

    def unparseable(self) -> None:
        self._unparseable.inc()

    def backfilled(self, count: int) -> None:
        self._backfilled.inc(count)

    def connected(self, up: bool) -> None:
        self._connected.set(1 if up else 0)

    def reconnected(self) -> None:
        self._reconnects.inc()

    def ping(self, seconds: float) -> None:
        metrics.PING_SECONDS.labels(self.source).observe(seconds)
