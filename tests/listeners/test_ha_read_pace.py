"""What keeps the listener cheap at home rates: paced reads of a light stream, a seal timer that
sleeps until the oldest held event is due."""

from __future__ import annotations

from hasim.server import HomeAssistantSimulator
from listeners.batching import Batcher
from listeners.homeassistant.client import HomeAssistantListener
from listeners.homeassistant.websocket import PacedConnection
from tests.listeners.ha_sessions import run_session

TOKEN = "pace-test-token-0123456789"


def test_a_light_stream_is_read_in_gulps_and_every_event_is_kept(monkeypatch):
    # One event a frame, like a real HA at home rates: a wake per frame unless reads are paced.
    simulator = HomeAssistantSimulator(
        token=TOKEN, entities=20, rate=100, events=100, slice_seconds=0.01
    )
    batcher = Batcher(lambda batch: None, size=10_000, interval=60, max_pending=10)
    listener = HomeAssistantListener("ws://127.0.0.1:9/api/websocket", TOKEN, batcher)
    reads = []
    original = PacedConnection.data_received

    def counted(self, data: bytes) -> None:
        reads.append(len(data))
        original(self, data)

    monkeypatch.setattr(PacedConnection, "data_received", counted)

    run_session(listener, simulator, events=100)
    assert [e["entity_id"] for e in batcher.buffer] == [
        e["data"]["entity_id"] for e in simulator.generated
    ]
    # About a second of one-event frames: unpaced, that is a read per frame and then some.
    assert len(reads) < 60, len(reads)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_seal_timer_sleeps_until_the_oldest_event_is_due_and_an_interval_when_empty():
    clock = Clock()
    batcher = Batcher(lambda batch: None, size=10, interval=1.0, max_pending=10, clock=clock)
    assert batcher.seconds_until_due() == 1.0
    batcher.add({"event_type": "x"})
    clock.now += 0.3
    assert abs(batcher.seconds_until_due() - 0.7) < 1e-9
    clock.now += 5
    assert batcher.seconds_until_due() == 0.0
