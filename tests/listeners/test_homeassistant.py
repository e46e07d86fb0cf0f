"""The listener's steps, driven directly, and whole sessions against the simulator."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from hasim.server import HomeAssistantSimulator
from listeners.backoff import Backoff
from listeners.batching import Batch, Batcher
from listeners.homeassistant.client import HomeAssistantListener
from listeners.homeassistant.errors import AuthFailed
from tests.listeners.ha_sessions import run_session

TOKEN = "listener-test-token-0123456789"


def make_listener(
    url: str = "ws://127.0.0.1:9/api/websocket", token: str = TOKEN, **kwargs
) -> tuple[HomeAssistantListener, list[Batch]]:
    published: list[Batch] = []
    batcher = Batcher(published.append, size=10_000, interval=60, max_pending=10)
    return HomeAssistantListener(url, token, batcher, **kwargs), published


def event(entity_id: str = "sensor.power", state: str = "42") -> dict:
    stamp = "2026-01-02T03:04:05.000001+00:00"
    return {
        "id": 2,
        "type": "event",
        "event": {
            "event_type": "state_changed",
            "time_fired": stamp,
            "origin": "LOCAL",
            "context": {"id": "c", "parent_id": None, "user_id": None},
            "data": {
                "entity_id": entity_id,
                "old_state": None,
                "new_state": {
                    "entity_id": entity_id,
                    "state": state,
                    "attributes": {},
                    "last_updated": stamp,
                    "last_changed": stamp,
                    "last_reported": stamp,
                    "context": {"id": "c", "parent_id": None, "user_id": None},
                },
            },
        },
    }


def test_a_coalesced_array_yields_every_event_in_it():
    listener, _ = make_listener()
    frame = json.dumps([event("sensor.a"), event("sensor.b"), {"id": 9, "type": "pong"}])
    assert listener.handle_frame(frame) == 2
    assert [e["entity_id"] for e in listener.batcher.buffer] == ["sensor.a", "sensor.b"]


def test_a_frame_that_is_not_json_is_counted_and_does_not_stop_good_ones():
    listener, _ = make_listener()
    assert listener.handle_frame("{not json") == 0
    assert listener.handle_frame(json.dumps(event())) == 1
    assert listener.stats["unparseable"] == 1
    marker, good = listener.batcher.buffer
    assert (marker["event_type"], marker["payload"]) == ("__unparseable__", "{not json")
    assert good["entity_id"] == "sensor.power"


def test_frames_arrive_as_bytes_and_invalid_utf8_is_unparseable_not_fatal():
    listener, _ = make_listener()
    good = json.dumps(event("sensor.temp", "21.5 °C"), ensure_ascii=False).encode()
    assert listener.handle_frame(b'{"id": 3, "type": "event", "\xff": 1}') == 0
    assert listener.handle_frame(good) == 1
    marker, taken = listener.batcher.buffer
    assert marker["event_type"] == "__unparseable__"
    assert "\\xff" in marker["payload"]
    assert taken["state"] == "21.5 °C"


def test_an_event_without_has_shape_is_counted_as_unparseable():
    listener, _ = make_listener()
    broken = {"id": 2, "type": "event", "event": {"event_type": "state_changed", "data": 5}}
    assert listener.handle_frame(json.dumps([broken, event()])) == 1
    assert listener.stats["unparseable"] == 1


def test_a_removed_entity_is_skipped():
    listener, _ = make_listener()
    removed = event()
    removed["event"]["data"]["new_state"] = None
    assert listener.handle_frame(json.dumps(removed)) == 0
    assert listener.stats["skipped"] == 1


async def _session_with(simulator: HomeAssistantSimulator, listener: HomeAssistantListener):
    await simulator.start()
    try:
        await listener.session()
    finally:
        await simulator.stop()


def test_a_refused_token_raises_auth_failed():
    simulator = HomeAssistantSimulator(token=TOKEN, entities=5, rate=10)
    listener, _ = make_listener(token="wrong-token-0123456789")

    async def scenario() -> None:
        await simulator.start()
        listener.url = simulator.url
        try:
            with pytest.raises(AuthFailed):
                await listener.session()
        finally:
            await simulator.stop()

    asyncio.run(scenario())


def test_a_refused_token_is_retried_slowly_not_in_a_hot_loop():
    listener, _ = make_listener(backoff=Backoff(initial=0.01, maximum=0.02))

    async def refused() -> None:
        raise AuthFailed("Invalid access token or password")

    listener.session = refused
    delay = asyncio.run(listener._one_connection())
    assert delay >= HomeAssistantListener.AUTH_RETRY_MIN


def test_a_session_subscribes_and_batches_events_until_stopped():
    simulator = HomeAssistantSimulator(token=TOKEN, entities=20, rate=500, events=200)
    listener, _ = make_listener()
    run_session(listener, simulator, events=200)
    assert len(listener.batcher.buffer) == 200
    assert listener.ha_version


def test_an_event_coalesced_after_the_subscribe_result_in_one_frame_is_kept():
    """HA packs whatever is ready into one frame: our subscribe result and the first event of
    an earlier subscription can arrive together, the event after the result."""
    from websockets.asyncio.server import serve

    async def home_assistant(ws):
        await ws.send(json.dumps({"type": "auth_required"}))
        await ws.recv()
        await ws.send(json.dumps({"type": "auth_ok", "ha_version": "2025.1.0"}))
        while True:
            command = json.loads(await ws.recv())
            result = {"id": command["id"], "type": "result", "success": True, "result": None}
            if command["type"] == "subscribe_events":
                earlier = event("sensor.right_after_the_result")
                earlier["id"] = command["id"] - 1
                await ws.send(json.dumps([result, earlier]))
                await ws.close()
                return
            await ws.send(json.dumps(result))

    async def run(listener) -> None:
        async with serve(home_assistant, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            listener.url = f"ws://127.0.0.1:{port}/api/websocket"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(listener.session(), 10)

    listener, _ = make_listener()
    asyncio.run(run(listener))
    assert [e["entity_id"] for e in listener.batcher.buffer] == ["sensor.right_after_the_result"]
