"""Backfill from Home Assistant's own history (the recorder): the pure parts.

HA answers ``history/history_during_period`` with compressed rows per entity:
``{"s": state, "a": attributes, "lu": last_updated, "lc": last_changed}`` with times as float
epoch seconds. Rows become the same normalised state events the live stream produces, stamped
with ``lu``, so a backfilled change and its live copy are one and the same point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from events.contract import SOURCE_HOMEASSISTANT, state_event
from events.times import ns_to_iso, seconds_to_ns


@dataclass(frozen=True)
class BackfillPolicy:
    enabled: bool = True
    # HA's recorder keeps 10 days by default; a day covers restarts and outages worth filling.
    max_lookback_ns: int = 24 * 3600 * 10**9
    # Re-read a little before the mark: the points are idempotent, a gap is not.
    overlap_ns: int = 10**9
    # Entities and hours per history request, so no single answer is huge.
    chunk_entities: int = 100
    window_ns: int = 3600 * 10**9
    timeout: float = 60.0

    def windows(self, start_ns: int, end_ns: int) -> Iterator[tuple[int, int]]:
        while start_ns < end_ns:
            yield start_ns, min(end_ns, start_ns + self.window_ns)
            start_ns += self.window_ns

    def chunks(self, entity_ids: list[str]) -> Iterator[list[str]]:
        for i in range(0, len(entity_ids), self.chunk_entities):
            yield entity_ids[i : i + self.chunk_entities]


def history_command(entity_ids: list[str], start_ns: int, end_ns: int) -> dict[str, Any]:
    """The request for [start, end). HA answers start < last_updated < end: asking from a
    microsecond earlier makes windows meet exactly, so a state stamped on a boundary is read."""
    return {
        "type": "history/history_during_period",
        "start_time": ns_to_iso(start_ns - 1000),
        "end_time": ns_to_iso(end_ns),
        "entity_ids": entity_ids,
        # The state at the start is stamped with the start time, not its own: not a change.
        "include_start_time_state": False,
        # Every change, attribute-only ones included, with its attributes: what live saw.
        "significant_changes_only": False,
        "minimal_response": False,
        "no_attributes": False,
    }


BadRow = Callable[[Any, str], None]


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "history row is not an object"
    if not isinstance(row.get("s"), str):
        return "history row has no state string (s)"
    stamp = row.get("lu")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        return "history row has no numeric last_updated (lu)"
    if not isinstance(row.get("a", {}), dict):
        return "history row attributes (a) are not an object"
    return None


def history_events(entity_id: str, rows: Any, on_bad: BadRow) -> Iterator[dict[str, Any]]:
    """The state events of one entity's compressed history rows; a malformed row goes to
    ``on_bad`` with its reason (HA carries attributes forward: a row without ``a`` keeps the
    previous row's)."""
    if not isinstance(rows, list):
        on_bad(rows, f"history of {entity_id!r:.200} is not a list of rows")
        return
    attributes: dict[str, Any] = {}
    for row in rows:
        problem = _row_problem(row)
        if problem is not None:
            on_bad(row, f"{entity_id:.200}: {problem}")
            continue
        attributes = row.get("a", attributes)
        yield state_event(
            SOURCE_HOMEASSISTANT,
            entity_id,
            row["s"],
            attributes,
            seconds_to_ns(row["lu"]),
            backfilled=True,
        )
