"""The reconciliation itself: it must see a lost, a duplicated and a doubly dead-lettered event,
or the chaos run proves nothing."""

from __future__ import annotations

import json
from collections import Counter

from tests.chaos.reconcile import DeadLetters, Emitted, reconcile


def emitted(time_ns: int, kind: str = "state", delivered: bool = True) -> Emitted:
    token = f'"time_fired":"t{time_ns}"'
    return Emitted("ha", kind, time_ns, token, delivered, f"event {time_ns}")


def letter(payload_format: str, payload: str, status: str = "pending") -> dict:
    return {
        "payload_format": payload_format,
        "payload": payload,
        "entity_ids": "",
        "error": "a reason",
        "status": status,
    }


def run(events, points, rows, kills=()):
    return reconcile(
        events, Counter(points), DeadLetters(rows), listener_kills_ns=list(kills), initial_ns=None
    )


def test_each_event_once_in_influxdb_or_a_dead_letter_passes():
    rows = [
        letter("events", json.dumps([{"time": 2}])),
        letter("line_protocol", "m,domain=a,entity_id=b value=1 3"),
        letter("raw", '[{"event":{"time_fired":"t4"}}]'),
    ]
    report = run([emitted(n) for n in (1, 2, 3, 4)], {1: 1}, rows)
    assert not report.failed
    assert (report.counts["written"], report.counts["dead_lettered"]) == (1, 3)


def test_a_lost_event_a_duplicate_and_a_stray_point_fail():
    report = run([emitted(1), emitted(2), emitted(3)], {1: 1, 2: 2, 99: 1}, [])
    assert report.failed
    counts = report.counts
    assert (counts["unexplained"], counts["duplicated"], counts["stray_points"]) == (1, 1, 1)
    assert "event 3" in report.samples["unexplained"][0]


def test_an_event_dead_lettered_twice_fails():
    rows = [letter("events", json.dumps([{"time": 5}])) for _ in range(2)]
    assert run([emitted(5)], {}, rows).counts["repeated_dead_letters"] == 1


def test_only_what_ha_cannot_give_back_is_explained_when_missing():
    events = [
        emitted(10, "bus", delivered=False),  # HA keeps no history of bus events
        emitted(20, "state", delivered=False),  # history has it: the backfill must fill it in
        emitted(30, "bus", delivered=True),  # in the listener's memory at a SIGKILL
        emitted(10**10 + 40, "bus", delivered=True),  # long after any kill
    ]
    report = run(events, {}, [], kills=[32])
    assert report.counts["bus_not_delivered"] == 1
    assert report.counts["bus_lost_at_listener_kill"] == 1
    assert report.counts["unexplained"] == 2


def test_a_listener_killed_soon_after_a_broker_restart_held_everything_since_the_restart():
    from tests.chaos.reconcile import held_windows

    s = 10**9
    [(start, end)] = held_windows([100 * s], [88 * s])
    assert (start, end) == (83 * s, 101 * s)  # from a flush window before the outage began
    [(start, _)] = held_windows([100 * s], [50 * s])  # long before: the flush window only
    assert start == 95 * s
