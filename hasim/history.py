"""What the simulator generated and delivered, and HA's history/history_during_period over it."""

from __future__ import annotations

import bisect
from array import array
from typing import Any

from hasim.codec import parse_time

# Domains whose attribute-only changes count as significant, and domains that keep their
# attributes in minimal responses (homeassistant/components/recorder/history/const.py).
SIGNIFICANT_DOMAINS = frozenset(
    {"climate", "device_tracker", "humidifier", "thermostat", "water_heater"}
)
NEED_ATTRIBUTE_DOMAINS = frozenset(
    {"climate", "humidifier", "input_datetime", "thermostat", "water_heater"}
)

HistoryRow = tuple[int, dict[str, Any], bool]  # (last_updated µs, state, is the start state)


class Recorder:
    """Every generated event's delivery flag, and the events themselves up to a bound.

    ``max_recorded`` bounds ``events`` (None = all, 0 = none: only counters), which also bounds
    what history can answer, like HA's recorder purge. Delivery flags cost one byte per event
    and are always kept, indexed by the event's absolute number.
    """

    def __init__(
        self, max_recorded: int | None, started_us: int, initial: dict[str, dict[str, Any]]
    ) -> None:
        self.max_recorded = max_recorded
        self.started_us = started_us
        self.initial = initial  # entity_id -> its state at start-up
        self.events: list[dict[str, Any]] = []
        self._times = array("q")  # last_updated / time_fired of `events`, for history
        self._base = 0  # absolute index of events[0] once old records are trimmed
        self.delivered = bytearray()
        self.count = 0
        self.delivered_count = 0

    def record(self, event: dict[str, Any] | None, us: int) -> int:
        """Count one generated event (keep it when recording); returns its absolute index."""
        index = self.count
        self.count += 1
        self.delivered.append(0)
        if event is None or self.max_recorded == 0:
            return index
        self.events.append(event)
        self._times.append(us)
        if self.max_recorded is not None and len(self.events) > self.max_recorded * 5 // 4:
            # Trim in chunks: deleting from the front of a list is linear in its length.
            excess = len(self.events) - self.max_recorded
            del self.events[:excess]
            del self._times[:excess]
            self._base += excess
        return index

    def mark_delivered(self, indices: list[int]) -> None:
        flags = self.delivered
        fresh = 0
        for index in indices:
            if not flags[index]:
                flags[index] = 1
                fresh += 1
        self.delivered_count += fresh

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        """(entity_id, new_state) of every recorded state change written to a subscription."""
        flags = self.delivered
        base = self._base
        return [
            (event["data"]["entity_id"], event["data"]["new_state"])
            for i, event in enumerate(self.events)
            if flags[base + i] and event["event_type"] == "state_changed"
        ]

    def delivered_events(self) -> list[dict[str, Any]]:
        base = self._base
        return [e for i, e in enumerate(self.events) if self.delivered[base + i]]

    def history(
        self,
        start: int,
        end: int | None,
        entity_ids: list[str],
        include_start_time_state: bool = True,
        significant_changes_only: bool = True,
        minimal_response: bool = False,
        no_attributes: bool = False,
    ) -> dict[str, list[dict[str, Any]]]:
        """history_during_period in HA's compressed form, from the recorded state changes.

        Rows with start < last_updated < end; the state at the start (when asked) carries the
        start time as its ``lu``, as HA's recorder does. Times are float epoch seconds.
        """
        wanted = [eid for eid in entity_ids if eid in self.initial]
        rows: dict[str, list[HistoryRow]] = {eid: [] for eid in wanted}
        if include_start_time_state and start > self.started_us:
            for eid, state in self._states_before(start, set(wanted)).items():
                rows[eid].append((start, state, True))
        for us, state in self._states_between(start, end, set(wanted)):
            rows[state["entity_id"]].append((us, state, False))
        options = (significant_changes_only, minimal_response, no_attributes)
        result = {eid: compress(eid, found, *options) for eid, found in rows.items()}
        return {eid: found for eid, found in result.items() if found}

    def _states_between(
        self, start: int, end: int | None, wanted: set[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        found = []
        if start < self.started_us and (end is None or self.started_us < end):
            found += [(self.started_us, self.initial[eid]) for eid in sorted(wanted)]
        lo = bisect.bisect_right(self._times, start)
        hi = len(self._times) if end is None else bisect.bisect_left(self._times, end)
        for j in range(lo, hi):
            event = self.events[j]
            if event["event_type"] == "state_changed" and event["data"]["entity_id"] in wanted:
                found.append((self._times[j], event["data"]["new_state"]))
        if found and found[0][0] == self.started_us:
            # A preloaded past (hasim/preload.py) comes before the start-up states: time order.
            found.sort(key=lambda item: item[0])
        return found

    def _states_before(self, moment: int, wanted: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for j in range(bisect.bisect_left(self._times, moment) - 1, -1, -1):
            event = self.events[j]
            eid = event["data"].get("entity_id")
            if eid in wanted and eid not in found and event["event_type"] == "state_changed":
                found[eid] = event["data"]["new_state"]
                if len(found) == len(wanted):
                    return found
        if self._base == 0:  # nothing trimmed: the start-up states are still known
            for eid in wanted - set(found):
                found[eid] = self.initial[eid]
        return found


def parse_history_query(
    message: dict[str, Any],
) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """Validate a history/history_during_period command as HA's schema does.

    Returns (error code and text, {}) or (None, keyword arguments for Recorder.history).
    """
    entity_ids = message.get("entity_ids")
    if not isinstance(entity_ids, list) or not all(isinstance(e, str) for e in entity_ids):
        text = "required key not provided @ data['entity_ids']. Got None"
        return ("invalid_format", text), {}
    start = parse_time(message.get("start_time"))
    if start is None:
        return ("invalid_start_time", "Invalid start_time"), {}
    end = None
    if message.get("end_time"):
        end = parse_time(message["end_time"])
        if end is None:
            return ("invalid_end_time", "Invalid end_time"), {}
    query = {
        "start": start,
        "end": end,
        "entity_ids": list(dict.fromkeys(e.lower() for e in entity_ids)),
        "include_start_time_state": bool(message.get("include_start_time_state", True)),
        "significant_changes_only": bool(message.get("significant_changes_only", True)),
        "minimal_response": bool(message.get("minimal_response", False)),
        "no_attributes": bool(message.get("no_attributes", False)),
    }
    return None, query


def compress(
    entity_id: str,
    rows: list[HistoryRow],
    significant_changes_only: bool,
    minimal_response: bool,
    no_attributes: bool,
) -> list[dict[str, Any]]:
    """HA's compressed history rows: {"s", "a", "lu"} (+ "lc" when it differs and was asked)."""
    domain = entity_id.split(".", 1)[0]
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for us, state, at_start in rows:
        changed_here = state["last_changed"] == state["last_updated"]
        significant = changed_here or at_start or domain in SIGNIFICANT_DOMAINS
        if significant_changes_only and not significant:
            continue  # an attribute-only change
        if minimal_response and out and domain not in NEED_ATTRIBUTE_DOMAINS:
            if state["state"] != previous:
                out.append({"s": state["state"], "lu": us / 1e6})
            previous = state["state"]
            continue
        row: dict[str, Any] = {"s": state["state"]}
        row["a"] = {} if no_attributes else state["attributes"]
        row["lu"] = us / 1e6
        if not significant_changes_only and not changed_here and not at_start:
            row["lc"] = parse_time(state["last_changed"]) / 1e6  # type: ignore[operator]
        out.append(row)
        previous = state["state"]
    return out
