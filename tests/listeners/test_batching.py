from __future__ import annotations

import threading

from listeners.batching import Batch, Batcher, PublisherThread


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> dict:
    return {"event_type": "state_changed", "n": n}


def make(publish=None, size=3, interval=1.0, clock=None) -> tuple[Batcher, list[Batch]]:
    published: list[Batch] = []
    batcher = Batcher(
        publish or published.append,
        size=size,
        interval=interval,
        max_pending=2,
        clock=clock or Clock(),
    )
    return batcher, published


def test_a_full_buffer_is_sealed_into_one_batch():
    batcher, published = make()
    for n in range(4):
        batcher.add(event(n))
    assert batcher.publish_next() is True
    assert [e["n"] for e in published[0].events] == [0, 1, 2]
    assert batcher.buffer == [event(3)]


def test_a_partial_buffer_is_sealed_after_the_flush_interval():
    clock = Clock()
    batcher, published = make(clock=clock)
    batcher.add(event(1))
    batcher.tick()
    assert not batcher.pending
    clock.now = 1.0
    batcher.tick()
    assert batcher.publish_next() is True
    assert published[0].events == [event(1)]


def test_a_failed_publish_keeps_the_batch_for_the_next_attempt():
    attempts = []

    def flaky(batch: Batch) -> None:
        attempts.append(batch.batch_id)
        if len(attempts) == 1:
            raise ConnectionError("broker away")

    batcher, _ = make(publish=flaky, size=1)
    batcher.backoff.initial = 0.001
    batcher.add(event(1))
    assert batcher.publish_next() is False
    assert batcher.publish_next() is True
    assert attempts[0] == attempts[1]
    assert batcher.published_events == 1


def test_the_pending_queue_is_bounded_for_backpressure():
    batcher, _ = make(size=1)
    batcher.add(event(1))
    assert batcher.has_room()
    batcher.add(event(2))
    assert not batcher.has_room()


def test_drain_publishes_everything_through_the_publisher_thread():
    published: list[Batch] = []
    lock = threading.Lock()

    def publish(batch: Batch) -> None:
        with lock:
            published.append(batch)

    batcher = Batcher(publish, size=10, interval=60, max_pending=100)
    thread = PublisherThread(batcher)
    thread.start()
    for n in range(25):
        batcher.add(event(n))
    assert batcher.drain(timeout=10) is True
    thread.stop()
    assert sorted(e["n"] for b in published for e in b.events) == list(range(25))
