"""Filling the gap since the last run from Home Assistant's history, beside the live stream.

While a backfill is in flight the durable high-water mark is held at its start, and released
only once the batch holding its last event reached the broker: a crash mid-backfill repeats it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from websockets.exceptions import ConnectionClosed

from events.contract import SOURCE_HOMEASSISTANT, unparseable_event
from events.times import ns_to_iso
from listeners.batching import Batch, Batcher
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy, history_command, history_events
from listeners.homeassistant.cursor import HighWaterMark
from listeners.homeassistant.errors import ProtocolFailed
from listeners.homeassistant.frames import text_of
from listeners.instrumentation import ListenerMetrics

log = structlog.get_logger(__name__)

Request = Callable[[dict[str, Any], float], Awaitable[Any]]


class GapFill:
    def __init__(
        self,
        batcher: Batcher,
        cursor: HighWaterMark,
        policy: BackfillPolicy,
        entity_filter: EntityFilter | None,
        metrics: ListenerMetrics,
        stats: dict[str, int],
    ) -> None:
        self.batcher, self.cursor, self.policy = batcher, cursor, policy
        self.entity_filter, self.metrics, self.stats = entity_filter, metrics, stats
        self.backfills = 0
        self.release_at: list[tuple[int, int]] = []  # (batch seq, backfill id)
        self.release_lock = threading.Lock()

    async def fill(self, request: Request, until_ns: int) -> None:
        """Backfill from the mark (less an overlap) to the moment the subscription started."""
        start_ns = self.cursor.position()
        if start_ns is None:
            return  # the first run ever: nothing was missed
        policy = self.policy
        start_ns = max(start_ns - policy.overlap_ns, until_ns - policy.max_lookback_ns)
        if start_ns >= until_ns:
            # The mark is ahead of our clock (it jumped back, or a mark saved before the clamp).
            log.warning(
                "ha_backfill_period_negative", category="clock", seconds=(until_ns - start_ns) / 1e9
            )
        self.backfills += 1
        backfill_id = self.backfills
        with self.release_lock:
            self.release_at.clear()
        self.cursor.holds.clear()
        self.cursor.hold(backfill_id, start_ns)
        try:
            count = await self._backfill(request, start_ns, until_ns)
        except (ProtocolFailed, TimeoutError, ConnectionError, ConnectionClosed) as exc:
            # The hold stays: the next connection backfills this gap again.
            log.error("ha_backfill_failed", error=str(exc)[:300], category="connection")
            return
        except Exception as exc:
            log.exception("ha_backfill_failed", error=repr(exc)[:300], category="bug")
            return
        seq = self.batcher.seal()
        with self.release_lock:
            self.release_at.append((seq, backfill_id))
        log.info("ha_backfill_done", events=count, seconds=round((until_ns - start_ns) / 1e9, 1))

    async def _backfill(self, request: Request, start_ns: int, until_ns: int) -> int:
        states = await request({"type": "get_states"}, self.policy.timeout)
        entity_ids = self._entity_ids(states)
        log.info(
            "ha_backfill_started",
            entities=len(entity_ids),
            seconds=round((until_ns - start_ns) / 1e9, 1),
        )
        total = 0
        for window_start, window_end in self.policy.windows(start_ns, until_ns):
            for chunk in self.policy.chunks(entity_ids):
                command = history_command(chunk, window_start, window_end)
                rows = await request(command, self.policy.timeout)
                total += await self._enqueue_history(rows or {})
            log.info(
                "ha_backfill_progress",
                events=total,
                done_until=ns_to_iso(window_end),
                category="backfill",
            )
        return total

    def _entity_ids(self, states: Any) -> list[str]:
        if not isinstance(states, list):
            self.set_aside(states, "get_states answer is not a list")
            return []
        entity_ids = []
        for state in states:
            entity_id = state.get("entity_id") if isinstance(state, dict) else None
            if not isinstance(entity_id, str) or "." not in entity_id:
                self.set_aside(state, "get_states entry has no valid entity_id")
            elif not self.entity_filter or self.entity_filter.matches(entity_id):
                entity_ids.append(entity_id)
        return sorted(entity_ids)

    def set_aside(self, value: Any, reason: str) -> None:
        """Something HA's answer should not hold: kept as a dead letter, and the fill goes on."""
        log.warning("ha_backfill_row_unparseable", category="unparseable", error=reason)
        self.metrics.unparseable()
        self.batcher.add(unparseable_event(SOURCE_HOMEASSISTANT, text_of(value), reason))

    async def _enqueue_history(self, rows: Any) -> int:
        if not isinstance(rows, dict):
            self.set_aside(rows, "history answer is not an object of entity rows")
            return 0
        count = 0
        for entity_id, entity_rows in rows.items():
            for event in history_events(entity_id, entity_rows, self.set_aside):
                while not self.batcher.has_room():
                    await asyncio.sleep(0.05)
                self.batcher.add(event)
                count += 1
                if count % 500 == 0:
                    await asyncio.sleep(0)  # let the live stream's frames through
        self.stats["backfilled"] += count
        self.metrics.backfilled(count)
        return count

    def on_batch_published(self, batch: Batch) -> None:
        """Publisher thread: the broker has this batch, so the high-water mark may advance."""
        times = [e["time"] for e in batch.events if isinstance(e.get("time"), int)]
        with self.release_lock:
            done = [item for item in self.release_at if batch.seq >= item[0]]
            self.release_at = [item for item in self.release_at if item not in done]
        for _, backfill_id in done:
            self.cursor.release(backfill_id)
        if times:
            self.cursor.confirm(max(times))
        elif done:
            self.cursor.save()
