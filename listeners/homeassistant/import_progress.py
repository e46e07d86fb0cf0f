"""How far a history import got, kept in the database so a new run continues where one stopped.

Three SourceCursor rows per import name: where the covered range starts, how far every event
is safely in the broker (``position``), and where the run in progress ends. A window counts
as done only once the batch holding its last event was confirmed by the broker.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from django.db import close_old_connections

from events.times import ns_to_iso
from listeners.batching import Batch, Batcher
from listeners.models import SourceCursor

log = structlog.get_logger(__name__)

# A position a second old only repeats a second of history after a kill; a write per batch
# would cost a database round trip per 2000 events.
SAVE_INTERVAL = 1.0
# Progress lines in the log: often enough to see it move, rarely enough to read the log.
REPORT_INTERVAL = 5.0


@dataclass(frozen=True)
class Covered:
    """What an earlier run recorded: [start_ns, position_ns] is imported; it meant to reach end."""

    start_ns: int
    position_ns: int
    end_ns: int

    @property
    def finished(self) -> bool:
        return self.position_ns >= self.end_ns


def load_covered(name: str) -> Covered | None:
    rows = dict(
        SourceCursor.objects.filter(name__in=[name, f"{name}:start", f"{name}:end"]).values_list(
            "name", "position_ns"
        )
    )
    if len(rows) != 3:
        return None
    return Covered(rows[f"{name}:start"], rows[name], rows[f"{name}:end"])


def plan(start_ns: int, end_ns: int, covered: Covered | None) -> tuple[int, int]:
    """(where to start reading, where the covered range starts) for a run over [start, end).

    A run that begins inside what is already imported skips that part; anything else starts
    afresh (the points are idempotent: reading twice only costs time).
    """
    if covered is not None and covered.start_ns <= start_ns <= covered.position_ns:
        return max(start_ns, covered.position_ns), covered.start_ns
    return start_ns, start_ns


class ImportProgress:
    """The durable position of one import, advanced from the publisher thread."""

    def __init__(self, name: str, start_ns: int, end_ns: int, bar: Any = None) -> None:
        self.name, self.start_ns, self.end_ns = name, start_ns, end_ns
        self.lock = threading.Lock()
        self.windows: list[tuple[int, int]] = []  # (batch seq holding its last event, end)
        self.published_seq = 0
        self.position_ns = start_ns  # every window before this is in the broker
        self.saved_ns: int | None = None
        self.saved_at = 0.0
        self.started = time.monotonic()
        self.reported_at = self.started
        self.events = 0
        self.bar = bar

    def begin(self, covered_start_ns: int, reading_from_ns: int) -> None:
        """Record the run before reading anything: a kill from here on is resumable."""
        self.position_ns = reading_from_ns
        self._write(f"{self.name}:start", covered_start_ns)
        self._write(f"{self.name}:end", self.end_ns)
        self.save()

    def window_done(self, batcher: Batcher, end_ns: int) -> None:
        """Reader side: every event of the windows up to end_ns has been handed to the batcher."""
        seq = batcher.sealed_seq + (1 if batcher.buffer else 0)
        with self.lock:
            self.windows.append((seq, end_ns))
        # No database here: this runs on the event loop, where Django refuses synchronous I/O.
        self._advance(save=False)

    def on_published(self, batch: Batch) -> None:
        """Publisher thread: the broker has this batch (and every earlier one)."""
        with self.lock:
            self.published_seq = max(self.published_seq, batch.seq)
            self.events += len(batch.events)
        self._advance(save=True)

    def finish(self) -> None:
        """After the batcher is drained: the position as far as it got, saved now."""
        self._advance(save=False)
        self.save()
        self.report(force=True)
        if self.bar is not None:
            self.bar.close()

    def _advance(self, save: bool) -> None:
        with self.lock:
            done = [end for seq, end in self.windows if seq <= self.published_seq]
            self.windows = [item for item in self.windows if item[0] > self.published_seq]
            if done:
                self.position_ns = max(self.position_ns, *done)
        if save and time.monotonic() - self.saved_at >= SAVE_INTERVAL:
            self.save()
        self.report()

    def save(self) -> None:
        self.saved_at = time.monotonic()
        position = self.position_ns
        if position == self.saved_ns:
            return
        try:
            self._write(self.name, position)
            self.saved_ns = position
        except Exception as exc:  # noqa: BLE001 - retried on the next batch; a kill repeats more
            log.warning("history_import_cursor_save_failed", error=repr(exc)[:300])

    def _write(self, name: str, position_ns: int) -> None:
        close_old_connections()
        SourceCursor.objects.update_or_create(name=name, defaults={"position_ns": position_ns})

    # --- progress ------------------------------------------------------------------------
    def fraction(self) -> float:
        span = self.end_ns - self.start_ns
        return 1.0 if span <= 0 else min(1.0, (self.position_ns - self.start_ns) / span)

    def stats(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fraction = self.fraction()
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        return {
            "events": self.events,
            "rate": round(self.events / elapsed, 1),
            "done_until": ns_to_iso(self.position_ns),
            "percent": round(fraction * 100, 1),
            "eta_s": None if eta is None else round(eta),
        }

    def report(self, force: bool = False) -> None:
        stats = self.stats()
        if self.bar is not None:
            self.bar.n = round(stats["percent"], 1)
            self.bar.set_postfix(events=stats["events"], rate=f"{stats['rate']}/s", refresh=False)
            self.bar.refresh()
        now = time.monotonic()
        if force or now - self.reported_at >= REPORT_INTERVAL:
            self.reported_at = now
            log.info("history_import_progress", name=self.name, **stats)


def progress_bar(enabled: bool) -> Any:
    """A tqdm bar in percent of the time range, only when stdout is a terminal."""
    if not enabled or not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=100.0, unit="%", file=sys.stdout, bar_format="{l_bar}{bar}| {postfix}")
