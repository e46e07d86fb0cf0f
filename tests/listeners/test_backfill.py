"""Backfill pieces: history rows to events, request windows, the high-water mark's holds,
and a listener that keeps reading through a slow broker."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from events.times import seconds_to_ns
from hasim.server import HomeAssistantSimulator
from listeners.batching import Batch, Batcher, PublisherThread
from listeners.homeassistant.backfill import BackfillPolicy, history_command, history_events
from listeners.homeassistant.client import HomeAssistantListener
from listeners.homeassistant.cursor import HighWaterMark
from listeners.homeassistant.normalise import iso_to_ns


def test_history_seconds_round_trip_to_the_exact_live_timestamp():
    stamp = "2026-11-29T04:55:12.345679+00:00"
    as_float = iso_to_ns(stamp) / 1e9
    assert seconds_to_ns(as_float) == iso_to_ns(stamp)


def test_rows_become_state_events_with_their_attributes():
    rows = [
        {"s": "21.5", "a": {"unit_of_measurement": "°C"}, "lu": 1767323045.123456},
        {"s": "22.0", "a": {"unit_of_measurement": "°C"}, "lu": 1767323046.5, "lc": 1767323046.5},
        {"bad": "row"},
    ]
    bad = []
    events = list(history_events("sensor.t", rows, lambda row, reason: bad.append(reason)))
    assert bad == ["sensor.t: history row has no state string (s)"]
    assert [(e["time"], e["state"]) for e in events] == [
        (1767323045123456000, "21.5"),
        (1767323046500000000, "22.0"),
    ]
    assert events[0]["attributes"] == {"unit_of_measurement": "°C"}
    assert events[0]["event_type"] == "state_changed" and events[0]["backfilled"] is True


def test_requests_are_windowed_and_chunked_and_ask_for_every_change():
    policy = BackfillPolicy(chunk_entities=2, window_ns=10)
    assert list(policy.windows(0, 25)) == [(0, 10), (10, 20), (20, 25)]
    assert list(policy.chunks(["a", "b", "c"])) == [["a", "b"], ["c"]]
    command = history_command(["sensor.a"], 10**9, 2 * 10**9)
    assert command["significant_changes_only"] is False
    assert command["include_start_time_state"] is False
    # HA's start is exclusive: a microsecond earlier, so a state on a window boundary is read.
    assert command["start_time"] == "1970-01-01T00:00:00.999999+00:00"
    assert command["end_time"] == "1970-01-01T00:00:02.000000+00:00"


@pytest.mark.django_db
def test_the_mark_never_passes_a_backfill_in_flight_and_survives_a_restart():
    mark = HighWaterMark("test:ha")
    assert mark.load() is None
    mark.confirm(100)
    mark.hold(1, 40)
    mark.confirm(200)
    mark.save()
    assert mark.position() == 40
    assert HighWaterMark("test:ha").load() == 40
    mark.release(1)
    mark.save()
    assert HighWaterMark("test:ha").load() == 200


def test_a_burst_while_the_broker_is_slow_does_not_get_the_listener_disconnected():
    """HA drops a client with too many messages queued for it; a slow broker must be absorbed
    by the listener's buffer, never by HA's queue."""
    published: list[Batch] = []
    lock = threading.Lock()

    def slow_broker(batch: Batch) -> None:
        # The broker stalls for 6 s on the first batch (a RabbitMQ hiccup): 12,000 events
        # arrive meanwhile, far more than the 4,096 HA queues for a client before it drops it.
        time.sleep(6.0 if not published else 0.01)
        with lock:
            published.append(batch)

    batcher = Batcher(slow_broker, size=500, interval=0.1, max_pending=10_000)
    publisher = PublisherThread(batcher)
    publisher.start()
    simulator = HomeAssistantSimulator(
        token="burst-token-0123456789",
        entities=50,
        rate=2000,
        events=16_000,
        max_pending=4096,
        compression=False,
        max_recorded=0,
    )
    listener = HomeAssistantListener("", "burst-token-0123456789", batcher)

    async def scenario() -> None:
        await simulator.start()
        listener.url = simulator.url
        task = asyncio.create_task(listener.run())
        await simulator.wait_for(lambda: simulator.done, 60, "the burst")
        listener.request_stop()
        await asyncio.wait_for(task, 10)
        await simulator.stop()

    asyncio.run(scenario())
    assert batcher.drain(timeout=120)
    publisher.stop()
    assert simulator.connection_count == 1, "the listener was dropped and came back"
    assert listener.stats["reconnects"] == 0
    assert sum(len(b.events) for b in published) == 16_000
