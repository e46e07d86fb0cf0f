"""Import Home Assistant's recorder history: the same events the live stream produces, in order.

One connection of its own reads ``history/history_during_period`` window by window (the pure
parts are backfill.py's), at a bounded rate and with a bounded number of batches waiting for
the broker, so the live listener's batches are never queued behind a whole month of history.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection

from events.contract import SOURCE_HOMEASSISTANT, unparseable_event
from events.times import ns_to_iso
from listeners.backoff import Backoff
from listeners.batching import Batcher
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy, history_command, history_events
from listeners.homeassistant.errors import CONNECTION_ERRORS, AuthFailed, ProtocolFailed
from listeners.homeassistant.frames import text_of
from listeners.homeassistant.import_progress import ImportProgress
from listeners.homeassistant.websocket import StopFlag, authenticate, open_websocket, receive_json

log = structlog.get_logger(__name__)

# A month of a busy entity in one window answer can be tens of MB.
MAX_FRAME_BYTES = 256 * 1024 * 1024
# Connection failures in a row before the import gives up (a re-run resumes where it stopped).
MAX_FAILURES = 8


def import_name(instance: str, entities: list[str], domains: list[str]) -> str:
    """The cursor name: one per instance and entity filter, so imports of different entities
    keep their own progress."""
    if not entities and not domains:
        return f"import:{instance}"
    digest = hashlib.sha256(json.dumps([sorted(entities), sorted(domains)]).encode()).hexdigest()
    return f"import:{instance}:{digest[:10]}"


class Pacer:
    """At most ``rate`` events a second on average (0: unbounded), sleeping in short steps."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.started = clock()
        self.sent = 0

    def delay(self, count: int) -> float:
        self.sent += count
        if self.rate <= 0:
            return 0.0
        return max(0.0, self.sent / self.rate - (self.clock() - self.started))


class HistorySession:
    """Request/answer over one authenticated WebSocket: no subscriptions, so every frame is an
    answer to the one command in flight."""

    def __init__(self, ws: ClientConnection, timeout: float) -> None:
        self.ws, self.timeout = ws, timeout
        self.next_id = 1

    async def request(self, payload: dict[str, Any]) -> Any:
        msg_id, self.next_id = self.next_id, self.next_id + 1
        await self.ws.send(json.dumps({"id": msg_id, **payload}))
        while True:
            message = await receive_json(self.ws, self.timeout)
            for item in message if isinstance(message, list) else [message]:
                if isinstance(item, dict) and item.get("id") == msg_id:
                    if not item.get("success"):
                        raise ProtocolFailed(f"{payload['type']} failed: {item.get('error')}")
                    return item.get("result")


class HistoryImport(StopFlag):
    """Reads [start, end) window by window into the batcher; ``progress`` keeps the position."""

    def __init__(
        self,
        url: str,
        token: str,
        batcher: Batcher,
        progress: ImportProgress,
        *,
        policy: BackfillPolicy,
        filters: tuple[EntityFilter, ...] = (),
        rate: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.url, self.token, self.batcher, self.progress = url, token, batcher, progress
        self.policy, self.ssl_context = policy, ssl_context
        # Every filter must match: the live listener's configured one and the command line's.
        self.filters = [f for f in filters if not f.empty]
        self.pacer = Pacer(rate)
        self.next_start_ns = progress.position_ns  # the window to read next
        self.backoff = Backoff(initial=1.0, maximum=60.0)
        self.stats = {"events": 0, "unparseable": 0, "entities": 0, "reconnects": 0}

    @property
    def done(self) -> bool:
        return self.next_start_ns >= self.progress.end_ns

    async def run(self) -> bool:
        """Import until done or stopped; True when the whole range was read."""
        while not self.done and not self.stopping:
            try:
                await self.session()
            except AuthFailed:
                raise
            except CONNECTION_ERRORS as exc:
                self.stats["reconnects"] += 1
                if self.backoff.failures >= MAX_FAILURES:
                    raise
                delay = self.backoff.next_delay()
                log.warning(
                    "history_import_connection_lost",
                    error=f"{type(exc).__name__}: {str(exc)[:200]}",
                    category="connection",
                    retry_in=round(delay, 1),
                )
                await self._sleep(delay)
        return self.done

    async def session(self) -> None:
        async with open_websocket(self.url, self.ssl_context, MAX_FRAME_BYTES) as ws:
            version = await authenticate(ws, self.token)
            session = HistorySession(ws, self.policy.timeout)
            entity_ids = self.entity_ids(await session.request({"type": "get_states"}))
            self.stats["entities"] = len(entity_ids)
            log.info(
                "history_import_connected",
                ha_version=version,
                entities=len(entity_ids),
                start=ns_to_iso(self.next_start_ns),
                end=ns_to_iso(self.progress.end_ns),
            )
            self.backoff.reset()
            for start_ns, end_ns in self.policy.windows(self.next_start_ns, self.progress.end_ns):
                if self.stopping:
                    return
                for chunk in self.policy.chunks(entity_ids):
                    command = history_command(chunk, start_ns, end_ns)
                    rows = await session.request(command)
                    await self.enqueue(rows or {})
                self.progress.window_done(self.batcher, end_ns)
                self.next_start_ns = end_ns
                self.batcher.tick()

    def entity_ids(self, states: Any) -> list[str]:
        if not isinstance(states, list):
            raise ProtocolFailed("get_states answer is not a list")
        found = set()
        for state in states:
            entity_id = state.get("entity_id") if isinstance(state, dict) else None
            valid = isinstance(entity_id, str) and "." in entity_id
            if valid and all(f.matches(entity_id) for f in self.filters):
                found.add(entity_id)
        return sorted(found)

    async def enqueue(self, rows: Any) -> None:
        if not isinstance(rows, dict):
            self.set_aside(rows, "history answer is not an object of entity rows")
            return
        for entity_id, entity_rows in rows.items():
            count = 0
            for event in history_events(entity_id, entity_rows, self.set_aside):
                self.batcher.add(event)
                count += 1
            self.stats["events"] += count
            await self._pace(count)

    async def _pace(self, count: int) -> None:
        delay = self.pacer.delay(count)
        # The broker, not this process, holds the backlog: wait while batches are in flight.
        while (delay > 0 or not self.batcher.has_room()) and not self.stopping:
            step = min(max(delay, 0.05), 1.0)
            await asyncio.sleep(step)
            delay -= step
            self.batcher.tick()

    def set_aside(self, value: Any, reason: str) -> None:
        """A row HA should not have sent: kept as a dead letter, and the import goes on."""
        self.stats["unparseable"] += 1
        log.warning("history_import_row_unparseable", category="unparseable", error=reason)
        self.batcher.add(unparseable_event(SOURCE_HOMEASSISTANT, text_of(value), reason))
