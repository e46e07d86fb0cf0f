"""No input ends the Home Assistant listener or wedges its publisher: hostile frames, values JSON
cannot carry, batches bigger than the broker takes, stamps from the far future."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection

from events.codec import pack_capped, unpack_events
from events.contract import UNPARSEABLE
from listeners.batching import Batcher
from listeners.homeassistant.backfill import BackfillPolicy
from listeners.homeassistant.cursor import CLOCK_SKEW_NS, HighWaterMark
from listeners.homeassistant.gapfill import GapFill
from listeners.instrumentation import ListenerMetrics
from listeners.publish import CeleryPublisher
from tests import streams
from tests.helpers import TEST_BROKER_URL, wait_until
from tests.listeners.test_homeassistant import event, make_listener


def nested(depth: int, leaf=1):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def markers(buffer: list[dict]) -> list[dict]:
    return [e for e in buffer if e["event_type"] == UNPARSEABLE]


# --- frames --------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [200, 1000, 5000])
def test_a_deeply_nested_frame_is_a_dead_letter_not_a_crash(depth):
    listener, _ = make_listener()
    frame = '{"id": 1, "type": "event", "event": ' + "[" * depth + "]" * depth + "}"
    assert listener.handle_frame(frame.encode()) == 0
    assert listener.handle_frame(json.dumps(event()).encode()) == 1
    (marker,) = markers(listener.batcher.buffer)
    assert marker["source"] == "homeassistant" and marker["error"]


def test_an_attribute_nested_1000_deep_reaches_the_batch_and_the_publisher_sets_it_aside():
    listener, _ = make_listener()
    deep = json.dumps(event("sensor.deep")).replace(
        '"attributes": {}', '"attributes": {"x": ' + "[" * 1000 + "]" * 1000 + "}"
    )
    frame = ("[" + deep + "," + json.dumps(event("sensor.ok")) + "]").encode()
    assert listener.handle_frame(frame) == 2
    parts = pack_capped(listener.batcher.buffer, exact_orjson=True, max_bytes=1 << 20)
    events = [e for _, packed in parts for e in unpack_events(packed)]
    assert [e.get("entity_id") for e in events if e["event_type"] != UNPARSEABLE] == ["sensor.ok"]
    (marker,) = markers(events)
    assert marker["context"].startswith("sensor.deep ")


def test_a_result_whose_id_is_a_list_or_object_is_ignored():
    listener, _ = make_listener()
    for odd in ([1, 2], {"a": 1}, None, "7", 2.5, True):
        frame = json.dumps({"id": odd, "type": "result", "success": False, "error": odd})
        assert listener.handle_frame(frame) == 0
    assert listener.handle_frame(json.dumps(event())) == 1


@pytest.mark.parametrize(
    "bad_value", ["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800 lone surrogate"']
)
def test_one_bad_value_in_a_coalesced_frame_sets_aside_only_its_own_event(bad_value):
    listener, _ = make_listener()
    events = [event(f"sensor.n{i}", str(i)) for i in range(300)]
    texts = [json.dumps(e) for e in events]
    poisoned = json.dumps(event("sensor.poisoned"))
    texts[150] = poisoned.replace('"attributes": {}', '"attributes": {"x": ' + bad_value + "}")
    frame = ("[" + ",".join(texts) + "]").encode()
    assert listener.handle_frame(frame) == 299
    taken = [e["entity_id"] for e in listener.batcher.buffer if e["event_type"] != UNPARSEABLE]
    assert taken == [f"sensor.n{i}" for i in range(300) if i != 150]
    (marker,) = markers(listener.batcher.buffer)
    assert "sensor.poisoned" in marker["payload"]
    # What is set aside can still be packed: the batch travels.
    parts = pack_capped(listener.batcher.buffer, exact_orjson=True, max_bytes=1 << 22)
    assert sum(len(unpack_events(p)) for _, p in parts) == 300


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
frame_like = st.fixed_dictionaries(
    {"id": json_values, "type": st.sampled_from(["event", "result", "pong", "x"])},
    optional={"event": json_values, "success": json_values, "error": json_values},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, frame_like, st.lists(frame_like, max_size=5)))
def test_no_json_value_makes_handle_frame_raise(value):
    listener, _ = make_listener()
    listener.handle_frame(json.dumps(value))
    parts = pack_capped(listener.batcher.buffer, exact_orjson=True, max_bytes=1 << 20)
    assert sum(len(unpack_events(p)) for _, p in parts) == len(listener.batcher.buffer)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_make_handle_frame_raise(raw):
    listener, _ = make_listener()
    listener.handle_frame(raw)


# --- publishing ----------------------------------------------------------------------------
def test_a_batch_over_the_cap_is_split_and_an_event_over_it_alone_is_a_dead_letter():
    normalised = {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": 1,
        "state": "1",
        "attributes": {"blob": "x" * 300_000},
    }
    events = [dict(normalised, entity_id=f"sensor.n{i}") for i in range(20)]
    events.append(dict(normalised, entity_id="sensor.huge", attributes={"blob": "y" * 3_000_000}))
    parts = pack_capped(events, exact_orjson=True, max_bytes=1_000_000)
    assert all(len(packed.encode()) <= 1_000_000 for _, packed in parts)
    unpacked = [e for _, packed in parts for e in unpack_events(packed)]
    assert [e["entity_id"] for e in unpacked if "entity_id" in e] == [
        f"sensor.n{i}" for i in range(20)
    ]
    (marker,) = markers(unpacked)
    assert (
        marker["category"] == "too_large"
        and marker["context"] == "sensor.huge 1970-01-01T00:00:00.000000+00:00"
    )


def test_a_batch_the_broker_would_refuse_is_published_in_parts(ingest_queue):
    """140 events of 1 MB: one 147 MB message is over RabbitMQ's max_message_size; in parts
    under the cap every event arrives."""
    blob = "z" * 1_000_000
    events = [
        {
            "source": "homeassistant",
            "event_type": "state_changed",
            "time": i,
            "entity_id": f"sensor.big{i}",
            "state": "1",
            "attributes": {"blob": blob},
        }
        for i in range(140)
    ]
    events.append(dict(events[0], entity_id="sensor.deep", attributes={"x": nested(1000)}))
    app = streams.celery_app(TEST_BROKER_URL, ingest_queue)  # a connection of the test's own
    publisher = CeleryPublisher(app, ingest_queue, "json", max_bytes=8 * 1024 * 1024)
    batcher = Batcher(publisher, size=10**6, interval=60, max_pending=10)
    for item in events:
        batcher.add(item)
    batcher.seal()
    # As the listener does: a failed publish (a loaded broker resetting the connection) is retried.
    wait_until(batcher.publish_next, 120, "the batch published in parts", interval=0.5)
    received = []
    with Connection(TEST_BROKER_URL) as conn:
        queue = conn.SimpleQueue(ingest_queue)
        try:
            deadline = time.monotonic() + 60
            while len(received) < len(events) and time.monotonic() < deadline:
                message = queue.get(timeout=10)
                received.extend(unpack_events(message.decode()[0][0]))
                message.ack()
        finally:
            queue.close()
    assert len(received) >= len(events)  # a retried publish may send a part twice
    assert {e["entity_id"] for e in received if "entity_id" in e} == {
        f"sensor.big{i}" for i in range(140)
    }
    marker = markers(received)[0]
    assert marker["context"].startswith("sensor.deep")


# --- the high-water mark -------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("year", [2200, 9999])
def test_a_future_stamp_never_moves_the_mark_past_now_and_saving_still_works(year):
    mark = HighWaterMark(f"future-{year}")
    far = (year - 1970) * 365 * 24 * 3600 * 10**9
    before = time.time_ns()
    mark.confirm(far)
    mark.save()
    assert before <= mark.position() <= time.time_ns()
    again = HighWaterMark(f"future-{year}")
    assert again.load() == mark.position()


# --- backfill -------------------------------------------------------------------------------
class FakeHA:
    """Answers get_states and history requests with what a test gives it."""

    def __init__(self, states, history) -> None:
        self.states, self.history = states, history

    async def __call__(self, payload, timeout):
        return self.states if payload["type"] == "get_states" else self.history


@pytest.mark.django_db
def test_malformed_states_and_history_rows_are_dead_letters_and_the_fill_goes_on():
    listener, _ = make_listener()
    cursor = HighWaterMark("gapfill-hostile")
    cursor.confirmed = 1_000 * 10**9
    gapfill = GapFill(
        listener.batcher,
        cursor,
        BackfillPolicy(),
        None,
        ListenerMetrics("homeassistant"),
        listener.stats,
    )
    states = [{"entity_id": "sensor.ok"}, {"state": "no id"}, "not an object", {"entity_id": 5}]
    history = {
        "sensor.ok": [
            {"s": "1", "a": {}, "lu": 1_000.5},
            {"s": "2", "lu": "yesterday"},
            {"s": "3", "lu": 1_001.5},
            7,
        ],
        "sensor.broken": {"not": "a list"},
    }
    asyncio.run(gapfill.fill(FakeHA(states, history), 1_002 * 10**9))
    buffer = [e for batch in listener.batcher.pending for e in batch.events]
    assert [e["state"] for e in buffer if e["event_type"] == "state_changed"] == ["1", "3"]
    assert len(markers(buffer)) == 3 + 2 + 1


# --- before authentication ----------------------------------------------------------------
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_deeply_nested_frame_before_auth_is_a_connection_error_not_a_crash(depth):
    from websockets.asyncio.server import serve

    async def hostile(ws):
        await ws.send("[" * depth + "]" * depth)
        await ws.wait_closed()

    async def run() -> float:
        async with serve(hostile, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            listener, _ = make_listener(f"ws://127.0.0.1:{port}/api/websocket")
            return await asyncio.wait_for(listener._one_connection(), 30)

    assert asyncio.run(run()) > 0  # a reconnect after a backoff, the process goes on


@pytest.mark.django_db
def test_a_mark_saved_in_the_future_by_an_older_version_starts_from_now():
    from listeners.models import SourceCursor

    SourceCursor.objects.create(name="old", position_ns=time.time_ns() + 10 * CLOCK_SKEW_NS)
    before = time.time_ns()
    assert before <= HighWaterMark("old").load() <= time.time_ns()
