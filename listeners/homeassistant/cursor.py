"""The high-water mark: how far a source's events are safely enqueued, kept in the database.

It advances only when the broker has confirmed a batch, and never past the start of a backfill
still in flight: a crash mid-backfill must not skip the part of the gap not yet enqueued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from django.db import close_old_connections
from django.utils import timezone

from listeners.models import SourceCursor

log = structlog.get_logger(__name__)

SAVE_INTERVAL = 1.0
# An event stamped further ahead of our clock than this is logged as a clock problem. The mark
# itself never passes our clock: a mark ahead of the present makes the next backfill start after
# the gap it should fill (a 2200 stamp would blind every later one). HA's clock running ahead of
# ours only makes a backfill re-read that much, which idempotent points absorb.
CLOCK_SKEW_NS = 5 * 60 * 10**9


class HighWaterMark:
    def __init__(self, name: str, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.name, self.now_ns = name, now_ns
        self.lock = threading.Lock()
        self.confirmed: int | None = None  # newest event time in a confirmed batch
        self.holds: dict[int, int] = {}  # backfill id -> its start: the mark may not pass it
        self.saved: int | None = None
        self.saved_at = 0.0

    def load(self) -> int | None:
        row = SourceCursor.objects.filter(name=self.name).first()
        self.saved = self.confirmed = row.position_ns if row else None
        now = self.now_ns()
        if self.confirmed is not None and self.confirmed > now:
            # Saved by a version without the clamp, from a future-stamped event: start from now.
            log.warning("cursor_in_the_future", source=self.name, category="clock")
            self.confirmed = now
        return self.confirmed

    def hold(self, backfill_id: int, start_ns: int) -> None:
        with self.lock:
            self.holds[backfill_id] = start_ns

    def release(self, backfill_id: int) -> None:
        with self.lock:
            self.holds.pop(backfill_id, None)

    def position(self) -> int | None:
        with self.lock:
            if self.confirmed is None:
                return None
            return min([self.confirmed, *self.holds.values()])

    def confirm(self, newest_ns: int) -> None:
        """Called from the publisher thread once a batch is in the broker."""
        now = self.now_ns()
        if newest_ns > now + CLOCK_SKEW_NS:
            log.warning("event_from_the_future", source=self.name, category="clock", ns=newest_ns)
        newest_ns = min(newest_ns, now)
        with self.lock:
            if self.confirmed is None or newest_ns > self.confirmed:
                self.confirmed = newest_ns
        # At most one write a second: a mark a second old only makes the next backfill read a
        # second more, while a write per batch cost the listener 6 % of its CPU.
        if time.monotonic() - self.saved_at >= SAVE_INTERVAL:
            self.save()

    def save(self) -> None:
        self.saved_at = time.monotonic()
        position = self.position()
        if position is None or position == self.saved:
            return
        try:
            close_old_connections()
            # One UPDATE a second, not update_or_create's transaction around a SELECT and a save.
            row = SourceCursor.objects.filter(name=self.name)
            if not row.update(position_ns=position, updated_at=timezone.now()):
                SourceCursor.objects.create(name=self.name, position_ns=position)
            self.saved = position
        except Exception as exc:  # noqa: BLE001 - retried with the next batch; never fatal
            log.warning(
                "cursor_save_failed", source=self.name, error=repr(exc)[:300], category="connection"
            )
