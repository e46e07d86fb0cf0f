"""Reconciliation: every emitted event is in InfluxDB once (one point at its time) or in a dead
letter with a reason, and InfluxDB holds nothing else.

Every emitted event has a time of its own (the simulator's stamps strictly increase, poison
records and MQTT reports get unique ones), so the points are indexed by time alone: two points
at one event's time are a duplicate in two series, a point at a time nobody emitted is a copy
written at a wrong time. A dead letter explains an event when its payload carries the event's
time (events and line protocol payloads) or its token (raw payloads: the poison entity or
topic, or the event's own ``"time_fired"`` text).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from events.times import iso_to_ns

# A listener killed with SIGKILL loses what it held in memory; state changes come back from
# HA's history, bus events cannot (HA keeps none): those received within this many seconds
# before a kill are the documented limit, not a mystery (flush interval + publish + margin).
KILL_WINDOW_NS = 5 * 10**9
# A frame written in the moment the process was dying still counts as delivered (the kernel
# took it): seen 66 ms after the kill in the long run of seed 20261130.
AFTER_KILL_NS = 10**9
# A RabbitMQ restart holds publishing for its own length plus the publisher's backoff (up to
# 10 s); a listener killed within this long after one began may hold everything since.
OUTAGE_REACH_NS = 30 * 10**9
FAILING = ("unexplained", "duplicated", "stray_points", "repeated_dead_letters")
# What names one emitted event inside a dead letter's text (see Emitted.token).
TOKENS = re.compile(r'"time_fired":"[^"]+"|sensor\.poison_[a-z_]+_\d{6}|mqpoison\d{7}')


@dataclass
class Emitted:
    source: str  # "ha" | "mqtt"
    kind: str  # state, bus, poison:<kind>, mqtt, mqtt-poison:<kind>
    time_ns: int | None
    token: str
    delivered: bool
    label: str
    # When the source sent it (a poison record's own stamp may be years ahead): for the windows.
    sent_ns: int | None = None


@dataclass
class DeadLetters:
    rows: list[dict[str, Any]]
    times: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)
    pending_times: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        for row in self.rows:
            found = set(_payload_times(row))
            self.times.update(found)
            if row["status"] == "pending":
                self.pending_times |= found
            text = f"{row['payload']}\n{row['entity_ids']}\n{row['error']}"
            self.tokens.update(set(TOKENS.findall(text)))

    def holding(self, token: str) -> int:
        return self.tokens.get(token, 0)

    def reasons_missing(self) -> int:
        return sum(not row["error"].strip() for row in self.rows)


def _payload_times(row: dict[str, Any]) -> list[int]:
    if row["payload_format"] == "events":
        try:
            events = json.loads(row["payload"])
        except ValueError:
            return []
        return [e["time"] for e in events if isinstance(e, dict) and type(e.get("time")) is int]
    if row["payload_format"] == "line_protocol":
        stamps = (line.rsplit(" ", 1)[-1] for line in row["payload"].splitlines())
        return [int(s) for s in stamps if s.lstrip("-").isdigit()]
    return []


def ha_emitted(generated: list[dict[str, Any]], delivered: list[bool]) -> list[Emitted]:
    found = []
    for event, was_delivered in zip(generated, delivered, strict=True):
        token = f'"time_fired":"{event["time_fired"]}"'
        if "poison" in event:
            eid = event["data"]["entity_id"]
            kind, time_ns, token = f"poison:{event['poison']}", event["time_ns"], eid
        elif event["event_type"] == "state_changed":
            kind, time_ns = "state", iso_to_ns(event["data"]["new_state"]["last_updated"])
        else:
            kind, time_ns = "bus", iso_to_ns(event["time_fired"])
        label = f"{event['event_type']} {event['data'].get('entity_id', '')} {event['time_fired']}"
        sent_ns = iso_to_ns(event["time_fired"])
        found.append(Emitted("ha", kind, time_ns, token, was_delivered, label, sent_ns))
    return found


def mqtt_emitted(sent: list[Any]) -> list[Emitted]:
    return [
        Emitted(
            "mqtt",
            f"mqtt-poison:{s.poison}" if s.poison else "mqtt",
            s.time_ns,
            s.token,
            s.acknowledged,
            f"mqtt {s.topic} #{s.number}",
        )
        for s in sent
    ]


def point_times(influx: Any) -> Counter:
    """How many points InfluxDB holds at each time, over every series."""
    times: Counter = Counter()
    names = influx.query("SHOW MEASUREMENTS")["results"][0].get("series", [])
    for (name,) in names[0]["values"] if names else []:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        # An explicit range: points far in the future are counted too.
        result = influx.query(
            f'SELECT * FROM "{quoted}" WHERE time >= 0 AND time < 9223372036854775806'
        )
        for series in result["results"][0].get("series", []):
            times.update(values[0] for values in series["values"])
    return times


@dataclass
class Report:
    counts: Counter
    samples: dict[str, list[str]]
    dead_letter_rows: int
    dead_letters_without_reason: int

    @property
    def failed(self) -> bool:
        return any(self.counts[name] for name in FAILING) or bool(self.dead_letters_without_reason)

    def lines(self) -> list[str]:
        c = self.counts
        out = [
            f"emitted={c['emitted']} (ha={c['emitted_ha']} mqtt={c['emitted_mqtt']}, "
            f"poison={c['emitted_poison']}) written={c['written']} "
            f"dead_lettered={c['dead_lettered']} unexplained={c['unexplained']} "
            f"duplicated={c['duplicated']} stray_points={c['stray_points']} "
            f"repeated_dead_letters={c['repeated_dead_letters']}",
            f"explained, not delivered: bus events HA keeps no history of="
            f"{c['bus_not_delivered']}, poison never delivered={c['poison_not_delivered']}, "
            f"MQTT never acknowledged by the broker={c['mqtt_not_acked']}; "
            f"bus events lost in a listener SIGKILL (documented limit)="
            f"{c['bus_lost_at_listener_kill']}, poison lost so="
            f"{c['poison_lost_at_listener_kill']}",
            "dead lettered by kind: "
            + ", ".join(
                f"{k[14:]}={v}" for k, v in sorted(c.items()) if k.startswith("dead_lettered_")
            ),
            f"dead letter rows={self.dead_letter_rows} (without a reason: "
            f"{self.dead_letters_without_reason}); written and also a pending dead letter="
            f"{c['written_and_dead_lettered']}",
        ]
        for name, found in self.samples.items():
            out += [f"  {name}: {item}" for item in found[:10]]
        return out


def reconcile(
    emitted: list[Emitted],
    points: Counter,
    letters: DeadLetters,
    *,
    listener_kills_ns: list[int],
    initial_ns: int | None,
    broker_outages_ns: list[int] = (),
) -> Report:
    counts: Counter = Counter(emitted=len(emitted))
    samples: dict[str, list[str]] = {}
    claimed = set()
    windows = held_windows(listener_kills_ns, broker_outages_ns)
    for item in emitted:
        counts[f"emitted_{item.source}"] += 1
        counts["emitted_poison"] += "poison" in item.kind
        claimed.add(item.time_ns)
        outcome = _outcome(item, points, letters, windows)
        counts[outcome] += 1
        if outcome == "dead_lettered":
            counts[f"dead_lettered_{item.kind}"] += 1
        if outcome in FAILING:
            samples.setdefault(outcome, []).append(f"{item.label} delivered={item.delivered}")
    for stamp, number in points.items():
        if stamp not in claimed and stamp != initial_ns:
            counts["stray_points"] += number
            samples.setdefault("stray_points", []).append(f"time={stamp} points={number}")
    return Report(counts, samples, len(letters.rows), letters.reasons_missing())


def held_windows(kills: list[int], outages: list[int]) -> list[tuple[int, int]]:
    """When the killed listener may still have held an event in memory: the flush interval
    before the kill, or, when the broker was restarting shortly before, everything since that
    restart began (no batch could be published until the broker was back)."""
    windows = []
    for kill in kills:
        recent = [s for s in outages if kill - OUTAGE_REACH_NS <= s <= kill]
        # The batch being filled when the outage began could not be published either.
        start = min([kill, *recent]) - KILL_WINDOW_NS
        windows.append((start, kill + AFTER_KILL_NS))
    return windows


def _outcome(
    item: Emitted, points: Counter, letters: DeadLetters, kills: list[tuple[int, int]]
) -> str:
    stamp = item.time_ns
    stored = points.get(stamp, 0) if stamp is not None else 0
    if stored > 1:
        return "duplicated"
    if stored == 1:
        if stamp in letters.pending_times:
            return "written_and_dead_lettered"
        return "written"
    lettered = (letters.times.get(stamp, 0) if stamp is not None else 0) or letters.holding(
        item.token
    )
    if lettered > 1:
        return "repeated_dead_letters"
    if lettered == 1:
        return "dead_lettered"
    return _why_missing(item, kills)


def _why_missing(item: Emitted, kills: list[tuple[int, int]]) -> str:
    if item.source == "mqtt":
        return "unexplained" if item.delivered else "mqtt_not_acked"
    if not item.delivered:
        if item.kind == "bus":
            return "bus_not_delivered"
        if item.kind.startswith("poison"):
            return "poison_not_delivered"
        return "unexplained"  # a state change HA's history should have filled in
    stamp = item.time_ns if item.sent_ns is None else item.sent_ns
    near_kill = stamp is not None and any(start <= stamp <= end for start, end in kills)
    if near_kill and item.kind == "bus":
        return "bus_lost_at_listener_kill"
    if near_kill and item.kind.startswith("poison"):
        # Poison has no row in the simulator's history (real HA cannot even write it as JSON):
        # like a bus event, what a killed listener held of it cannot come back.
        return "poison_lost_at_listener_kill"
    return "unexplained"


def dead_letter_rows(database_url: str) -> list[dict[str, Any]]:
    query = (
        "SELECT id, source, category, status, payload_format, payload, entity_ids, error "
        "FROM tasks_failedwrite"
    )
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=60)
        try:
            cursor = conn.execute(query)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        return list(conn.cursor(row_factory=dict_row).execute(query).fetchall())
