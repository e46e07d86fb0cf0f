"""Listener metrics, with label children cached: the per-event path stays a dict lookup."""

from __future__ import annotations

from typing import Any

from ingestor_project import metrics

OTHER = "other"


class LabelGuard:
    """The first ``limit`` values of a label pass, later ones become "other": event types and
    domains come from the source (any MQTT publisher can invent them), and each distinct value
    is a series in every scrape. Like the tag-cardinality guard of the worker."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.admitted:
            return value
        if len(self.admitted) >= self.limit:
            return OTHER
        self.admitted.add(value)
        return value


class ListenerMetrics:
    # Home Assistant core fires about 40 event types and a home's integrations add a few dozen;
    # a hundred leaves room for those and still bounds /metrics (one series per value).
    MAX_EVENT_TYPES = 100
    # HA has a few hundred integration domains; a home uses far fewer.
    MAX_DOMAINS = 200

    def __init__(self, source: str) -> None:
        self.source = source
        self.event_types = LabelGuard(self.MAX_EVENT_TYPES)
        self.domains = LabelGuard(self.MAX_DOMAINS)
        # The types the business metrics are built from are never folded into "other".
        self.event_types.admitted.update({"state_changed", "call_service", "automation_triggered"})
        self._received: dict[str, Any] = {}
        self._domains: dict[str, Any] = {}
        self._service_domains: dict[str, Any] = {}
        self.entities: set[str] = set()
        self._pending: dict[tuple[str, str], int] = {}
        self._filtered = metrics.EVENTS_FILTERED.labels(source)
        self._unparseable = metrics.EVENTS_UNPARSEABLE.labels(source)
        self._connected = metrics.CONNECTED.labels(source)
        self._reconnects = metrics.RECONNECTS.labels(source)
        self._entities_seen = metrics.ENTITIES_SEEN.labels(source)
        self._backfilled = metrics.EVENTS_BACKFILLED.labels(source)

    def received(self, event: dict[str, Any]) -> None:
        """Counted locally and added to the shared metrics by flush(): an increment of a
        multiprocess metric costs a pid check and an mmap write, too much per event."""
        event_type = event["event_type"]
        if event_type == "state_changed":
            entity_id = event["entity_id"]
            key = (event_type, entity_id.split(".", 1)[0])
            if entity_id not in self.entities:
                self.entities.add(entity_id)
        elif event_type == "call_service":
            key = (event_type, str((event.get("data") or {}).get("domain") or "unknown")[:64])
        else:
            key = (event_type, "")
        self._pending[key] = self._pending.get(key, 0) + 1

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for (raw_type, raw_label), count in pending.items():
            event_type = self.event_types(raw_type)
            label = self.domains(raw_label) if raw_label else raw_label
            self._child(
                self._received, event_type, metrics.EVENTS_RECEIVED, self.source, event_type
            ).inc(count)
            if event_type == "state_changed":
                self._child(self._domains, label, metrics.STATE_CHANGES, label).inc(count)
            elif event_type == "call_service":
                self._child(self._service_domains, label, metrics.SERVICE_CALLS, label).inc(count)
            elif event_type == "automation_triggered":
                metrics.AUTOMATIONS.inc(count)
        self._entities_seen.set(len(self.entities))

    @staticmethod
    def _child(cache: dict[str, Any], key: str, metric: Any, *labels: str) -> Any:
        child = cache.get(key)
        if child is None:
            child = cache[key] = metric.labels(*labels)
        return child

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
