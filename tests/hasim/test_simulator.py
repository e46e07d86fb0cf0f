"""The Home Assistant simulator speaks HA's WebSocket protocol and accounts for what it delivered.

Driven through a real socket with the `websockets` sync client, as any HA client would talk to it.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.management import call_command
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

import hasim.load
from hasim.server import HomeAssistantSimulator
from hasim.thread import SimulatorThread
from tests.helpers import service_env, wait_until

TOKEN = "simulator-test-token-0123456789"
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
STATE_KEYS = {
    "entity_id",
    "state",
    "attributes",
    "last_changed",
    "last_reported",
    "last_updated",
    "context",
}


class Client:
    """A minimal HA WebSocket client: authenticates, numbers its commands, collects events."""

    def __init__(self, url: str) -> None:
        # An unbounded queue: a client that stops reading must still be able to close quickly.
        self.ws: ClientConnection = connect(url, max_size=None, max_queue=None, open_timeout=5)
        self.next_id = 1
        self.frames: list[Any] = []  # every parsed frame, to look at coalescing
        self.pending: list[dict[str, Any]] = []  # messages read but not consumed yet

    def authenticate(self, token: str = TOKEN) -> dict[str, Any]:
        assert json.loads(self.ws.recv(timeout=5))["type"] == "auth_required"
        self.ws.send(json.dumps({"type": "auth", "access_token": token}))
        return json.loads(self.ws.recv(timeout=5))

    def send(self, payload: dict[str, Any]) -> int:
        msg_id = payload.setdefault("id", self.next_id)
        self.next_id = max(self.next_id, msg_id) + 1
        self.ws.send(json.dumps(payload))
        return msg_id

    def receive(self, timeout: float = 5) -> dict[str, Any]:
        if not self.pending:
            frame = json.loads(self.ws.recv(timeout=timeout))
            self.frames.append(frame)
            self.pending.extend(frame if isinstance(frame, list) else [frame])
        return self.pending.pop(0)

    def call(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send a command; return its answer and the events that arrived before it."""
        msg_id = self.send(payload)
        events = []
        while True:
            message = self.receive()
            if message.get("id") == msg_id and message["type"] != "event":
                return message, events
            events.append(message)

    def events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found = []
        while len(found) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(found)} of {count} events within {timeout} s"
            message = self.receive(remaining)
            if message["type"] == "event":
                found.append(message)
        return found

    def subscribe(self, event_type: str | None = None, *, coalesce: bool = False) -> int:
        if coalesce:
            features = {"type": "supported_features", "features": {"coalesce_messages": 1}}
            assert self.call(features)[0]["success"]
        payload: dict[str, Any] = {"type": "subscribe_events"}
        if event_type:
            payload["event_type"] = event_type
        answer, _ = self.call(payload)
        assert answer == {"id": answer["id"], "type": "result", "success": True, "result": None}
        return answer["id"]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def simulator() -> Iterator:
    started: list[SimulatorThread] = []

    def make(**options: Any) -> SimulatorThread:
        options.setdefault("token", TOKEN)
        started.append(SimulatorThread(**options).start())
        return started[-1]

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def client_for() -> Iterator:
    clients: list[Client] = []

    def make(sim: SimulatorThread, *, authenticate: bool = True) -> Client:
        clients.append(Client(sim.url))
        if authenticate:
            assert clients[-1].authenticate()["type"] == "auth_ok"
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def as_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset().total_seconds() == 0 and value.endswith("+00:00"), value
    return moment


# --- authentication ---------------------------------------------------------------------------
def test_it_accepts_the_right_token(simulator, client_for):
    client = client_for(simulator(entities=5), authenticate=False)
    assert json.loads(client.ws.recv(timeout=5)) == {
        "type": "auth_required",
        "ha_version": "2025.1.0",
    }
    client.ws.send(json.dumps({"type": "auth", "access_token": TOKEN}))
    assert json.loads(client.ws.recv(timeout=5)) == {"type": "auth_ok", "ha_version": "2025.1.0"}


def test_it_refuses_a_wrong_token_and_closes_the_connection(simulator, client_for):
    client = client_for(simulator(entities=5), authenticate=False)
    answer = client.authenticate("not-the-token")
    assert answer == {"type": "auth_invalid", "message": "Invalid access token or password"}
    with pytest.raises(ConnectionClosed):
        client.ws.recv(timeout=5)


def test_it_refuses_a_command_sent_before_authentication(simulator, client_for):
    client = client_for(simulator(entities=5), authenticate=False)
    client.ws.recv(timeout=5)
    client.ws.send(json.dumps({"id": 1, "type": "ping"}))
    answer = json.loads(client.ws.recv(timeout=5))
    assert answer["type"] == "auth_invalid"
    assert answer["message"].startswith("Auth message incorrectly formatted")
    with pytest.raises(ConnectionClosed):
        client.ws.recv(timeout=5)


# --- commands -----------------------------------------------------------------------------------
def test_it_answers_ping_with_pong(simulator, client_for):
    client = client_for(simulator(entities=5))
    assert client.call({"id": 7, "type": "ping"})[0] == {"id": 7, "type": "pong"}


def test_it_rejects_a_reused_id(simulator, client_for):
    client = client_for(simulator(entities=5))
    client.call({"id": 5, "type": "ping"})
    error = {"code": "id_reuse", "message": "Identifier values have to increase."}
    for stale in (5, 4):
        answer, _ = client.call({"id": stale, "type": "ping"})
        assert answer == {"id": stale, "type": "result", "success": False, "error": error}
    assert client.call({"id": 6, "type": "ping"})[0] == {"id": 6, "type": "pong"}


def test_it_answers_an_unknown_command_with_unknown_command(simulator, client_for):
    client = client_for(simulator(entities=5))
    answer, _ = client.call({"type": "make_coffee"})
    assert answer["success"] is False
    assert answer["error"] == {"code": "unknown_command", "message": "Unknown command."}


def test_it_answers_a_command_without_an_id_with_invalid_format(simulator, client_for):
    client = client_for(simulator(entities=5))
    client.ws.send(json.dumps({"type": "ping"}))
    answer = client.receive()
    assert answer["error"]["code"] == "invalid_format"
    assert client.call({"type": "ping"})[0]["type"] == "pong"


def test_it_drops_a_client_that_sends_a_frame_that_is_not_json(simulator, client_for):
    client = client_for(simulator(entities=5))
    client.ws.send("{not json")
    with pytest.raises(ConnectionClosed):
        client.ws.recv(timeout=5)


def test_get_states_lists_every_entity_in_has_state_shape(simulator, client_for):
    client = client_for(simulator(entities=40))
    answer, _ = client.call({"type": "get_states"})
    states = {state["entity_id"]: state for state in answer["result"]}
    assert answer["success"] and len(states) == 40
    for state in states.values():
        assert set(state) == STATE_KEYS and isinstance(state["state"], str)
        assert as_time(state["last_updated"]) == as_time(state["last_changed"])
        assert ULID.match(state["context"]["id"])
    units = {s["attributes"].get("unit_of_measurement") for s in states.values()}
    assert {"°C", "%", "W", "kWh", "hPa"} <= units
    domains = {entity_id.split(".")[0] for entity_id in states}
    assert {"sensor", "switch", "binary_sensor", "climate", "light"} <= domains
    climate = states["climate.living_room_thermostat"]["attributes"]
    assert {
        "current_temperature",
        "temperature",
        "hvac_modes",
        "hvac_action",
        "preset_mode",
    } <= set(climate)
    assert states["sensor.living_room_appliance_status"]["state"] == "idle"


# --- events -----------------------------------------------------------------------------------
def test_state_changed_events_have_has_shape(simulator, client_for):
    sim = simulator(entities=30, rate=3000, events=900, seed=3)
    client = client_for(sim)
    current = {s["entity_id"]: s for s in client.call({"type": "get_states"})[0]["result"]}
    sub_id = client.subscribe("state_changed", coalesce=True)
    for message in client.events(900):
        assert message["id"] == sub_id
        event = message["event"]
        assert set(event) == {"event_type", "data", "origin", "time_fired", "context"}
        assert (event["event_type"], event["origin"]) == ("state_changed", "LOCAL")
        data = event["data"]
        new, old = data["new_state"], data["old_state"]
        assert set(data) == {"entity_id", "old_state", "new_state"} and set(new) == STATE_KEYS
        assert old == current[data["entity_id"]], "old_state is the state before this change"
        assert new["last_updated"] == new["last_reported"] == event["time_fired"]
        assert new["context"] == event["context"] and ULID.match(event["context"]["id"])
        assert as_time(new["last_updated"]) > as_time(old["last_updated"])
        moved = new["state"] != old["state"]
        assert new["last_changed"] == (new["last_updated"] if moved else old["last_changed"])
        current[data["entity_id"]] = new
    sim.wait_until_done(timeout=10)
    assert sim.delivered_count == 900


def test_events_on_the_wire_are_the_recorded_events(simulator, client_for):
    sim = simulator(entities=20, rate=3000, events=300, seed=4, other_events_ratio=0.2)
    client = client_for(sim)
    client.subscribe(coalesce=True)
    received = [m["event"] for m in client.events(300)]
    sim.wait_until_done(timeout=10)
    assert received == sim.generated == sim.delivered_events()
    changes = [
        (e["data"]["entity_id"], e["data"]["new_state"])
        for e in received
        if e["event_type"] == "state_changed"
    ]
    assert sim.delivered_state_changes() == changes


def test_timestamps_stay_unique_per_entity_when_the_clock_does_not_move(monkeypatch):
    monkeypatch.setattr(hasim.load, "now_us", lambda: 1_767_225_600_000_000)
    sim = HomeAssistantSimulator(entities=3, rate=1, wait_for_subscriber=False)
    sim.emit(1000)
    last: dict[str, datetime] = {}
    for event in sim.generated:
        entity_id, updated = event["data"]["entity_id"], as_time(event["time_fired"])
        assert updated > last.get(entity_id, datetime.min.replace(tzinfo=updated.tzinfo))
        last[entity_id] = updated


def test_the_same_seed_gives_the_same_changes_however_they_are_sliced():
    def changes(sim: HomeAssistantSimulator) -> list[tuple[str, str, dict]]:
        return [
            (
                e["data"]["entity_id"],
                e["data"]["new_state"]["state"],
                e["data"]["new_state"]["attributes"],
            )
            for e in sim.generated
        ]

    whole = HomeAssistantSimulator(entities=50, seed=7, other_events_ratio=0.0)
    whole.emit(300)
    sliced = HomeAssistantSimulator(entities=50, seed=7, other_events_ratio=0.0)
    for _ in range(3):
        sliced.emit(100)
    other = HomeAssistantSimulator(entities=50, seed=8)
    other.emit(300)
    assert changes(whole) == changes(sliced) != changes(other)


def test_events_are_one_object_per_frame_without_coalescing(simulator, client_for):
    client = client_for(simulator(entities=20, rate=5000, events=400))
    client.subscribe()
    client.events(400)
    assert client.frames and all(isinstance(frame, dict) for frame in client.frames)


def test_events_come_in_arrays_once_coalescing_is_supported(simulator, client_for):
    client = client_for(simulator(entities=20, rate=5000, events=400))
    client.subscribe(coalesce=True)
    client.events(400)
    arrays = [frame for frame in client.frames if isinstance(frame, list)]
    assert arrays and max(len(frame) for frame in arrays) > 1
    assert all(isinstance(m, dict) for frame in arrays for m in frame)


def test_a_subscription_without_event_type_gets_every_event_type(simulator, client_for):
    sim = simulator(entities=20, rate=4000, events=500, other_events_ratio=0.3)
    client = client_for(sim)
    client.subscribe(coalesce=True)
    kinds = {m["event"]["event_type"] for m in client.events(500)}
    assert kinds == {"state_changed", "call_service", "automation_triggered"}


def test_a_subscription_to_one_event_type_gets_only_that_type(simulator, client_for):
    sim = simulator(entities=20, rate=4000, events=500, other_events_ratio=0.3)
    client = client_for(sim)
    sub_id = client.subscribe("call_service", coalesce=True)
    sim.wait_until_done(timeout=10)
    expected = [e for e in sim.generated if e["event_type"] == "call_service"]
    received = client.events(len(expected))
    assert expected and [m["event"] for m in received] == expected
    assert {m["id"] for m in received} == {sub_id}
    assert client.call({"type": "ping"})[0]["type"] == "pong"  # and nothing else is queued


def test_unsubscribing_stops_the_events(simulator, client_for):
    sim = simulator(entities=20, rate=2000)
    client = client_for(sim)
    sub_id = client.subscribe(coalesce=True)
    client.events(50)
    answer, _ = client.call({"type": "unsubscribe_events", "subscription": sub_id})
    assert answer["success"] is True
    generated = sim.generated_count
    sim.wait_for(lambda: sim.sim.generated_count > generated + 50, 10, "more events")
    pong, late = client.call({"type": "ping"})
    assert pong["type"] == "pong" and late == []


def test_unsubscribing_an_unknown_subscription_is_not_found(simulator, client_for):
    client = client_for(simulator(entities=5))
    answer, _ = client.call({"type": "unsubscribe_events", "subscription": 99})
    assert answer["error"] == {"code": "not_found", "message": "Subscription not found."}


# --- load, pacing, accounting ----------------------------------------------------------------
def test_generation_waits_for_the_first_subscriber(simulator, client_for):
    sim = simulator(entities=10, rate=2000, events=100)
    client = client_for(sim)
    client.subscribe()
    first = client.events(1)[0]["event"]
    assert first == sim.generated[0] and sim.delivered[0] is True


def test_it_stops_after_the_requested_number_of_events(simulator, client_for):
    sim = simulator(entities=10, rate=5000, events=250)
    client = client_for(sim)
    client.subscribe(coalesce=True)
    client.events(250)
    sim.wait_until_done(timeout=10)
    pong, late = client.call({"type": "ping"})
    assert pong["type"] == "pong" and late == []
    assert sim.generated_count == sim.delivered_count == 250


def test_the_rate_is_paced_not_bursted(simulator, client_for):
    sim = simulator(entities=50, rate=1000, events=2000)
    client = client_for(sim)
    client.subscribe(coalesce=True)
    started = time.monotonic()
    client.events(2000, timeout=15)
    elapsed = time.monotonic() - started
    # 2 s at the nominal rate; bounds generous enough for a busy 2-core machine.
    assert 1.5 < elapsed < 12, elapsed


def test_dropping_connections_cuts_clients_off_and_counts_only_what_was_written(
    simulator, client_for
):
    sim = simulator(entities=20, rate=3000)
    first = client_for(sim)
    first.subscribe("state_changed", coalesce=True)
    received = [m["event"] for m in first.events(300)]
    assert sim.drop_connections() == 1
    with pytest.raises(ConnectionClosedError) as closed:
        while True:
            message = first.receive()
            if message["type"] == "event":
                received.append(message["event"])
    assert closed.value.rcvd is None, "an abrupt cut, not a close handshake"
    # Delivered is exactly what the client got: nothing more, nothing less.
    assert sim.delivered_events() == received
    assert sim.subscriber_count == 0
    generated = sim.generated_count
    sim.wait_for(
        lambda: sim.sim.generated_count > generated + 100, 10, "events while no one listens"
    )

    second = client_for(sim)
    second.subscribe("state_changed", coalesce=True)
    again = second.events(100)
    assert sim.connection_count == 2 and sim.subscriber_count == 1
    # time_fired is unique over all events: it locates each received event in the record.
    position = {event["time_fired"]: i for i, event in enumerate(sim.generated)}
    last_before = position[received[-1]["time_fired"]]
    after = [position[m["event"]["time_fired"]] for m in again]
    flags = sim.delivered
    assert after[0] > last_before + 100 and not any(flags[last_before + 1 : after[0]])
    assert all(flags[i] for i in after)


def test_drop_every_cuts_clients_off_periodically(simulator, client_for):
    sim = simulator(entities=5, rate=100, drop_every=0.2)
    client = client_for(sim)
    client.subscribe()
    with pytest.raises(ConnectionClosedError):
        while True:
            client.receive(timeout=5)
    sim.wait_for(lambda: sim.sim.dropped_count >= 1, 5, "a periodic drop")


def test_a_client_too_far_behind_is_disconnected_like_ha_does(simulator, client_for):
    sim = simulator(entities=20, rate=5000, max_pending=10)
    client = client_for(sim)
    client.subscribe()
    with pytest.raises(ConnectionClosed):
        while True:
            client.receive(timeout=5)
    assert sim.open_connections == 0


def test_a_simulator_that_cannot_listen_fails_to_start(simulator):
    taken = simulator(entities=5).port
    with pytest.raises(RuntimeError, match="failed to start"):
        SimulatorThread(port=taken, entities=5).start()


def test_history_during_period_returns_has_compressed_rows(simulator, client_for):
    sim = simulator(entities=10, rate=4000, events=400, wait_for_subscriber=False)
    sim.wait_until_done(timeout=10)
    entity_id = "sensor.living_room_temperature"
    changes = [
        event["data"]["new_state"]
        for event in sim.generated
        if event["data"]["entity_id"] == entity_id
    ]
    client = client_for(sim)
    answer, _ = client.call(
        {
            "type": "history/history_during_period",
            "start_time": "2020-01-01T00:00:00+00:00",
            "entity_ids": [entity_id, "sensor.does_not_exist"],
        }
    )
    rows = answer["result"][entity_id]
    assert list(answer["result"]) == [entity_id]
    assert [row["s"] for row in rows[1:]] == [s["state"] for s in changes]
    assert rows[-1]["a"] == changes[-1]["attributes"]
    last = as_time(changes[-1]["last_updated"])
    assert round(rows[-1]["lu"] * 1_000_000) == round(last.timestamp() * 1_000_000)


# --- the management command ------------------------------------------------------------------
def test_simulate_homeassistant_runs_until_its_events_are_done():
    call_command(
        "simulate_homeassistant",
        "--port=0",
        "--entities=5",
        "--rate=2000",
        "--events=50",
        "--no-wait-for-subscriber",
        "--exit-when-done",
    )


def test_simulate_homeassistant_serves_until_sigterm_and_never_logs_the_token(processes):
    token = "command-test-token-0123456789"
    env = service_env(SIMULATOR_TOKEN=token)
    command = ["simulate_homeassistant", "--port=0", "--entities=5", "--rate=200"]
    process = processes.manage("simulator", command, env)
    found = wait_until(
        lambda: re.search(r"url=(ws://\S+)", processes.log("simulator")), 20, "simulator_listening"
    )
    client = Client(found.group(1))
    try:
        assert client.authenticate(token)["type"] == "auth_ok"
        client.subscribe()
        client.events(5)
    finally:
        client.close()
    assert processes.stop(process, signal.SIGTERM) == 0, processes.log("simulator")
    assert "simulator_stopped" in processes.log("simulator")
    assert token not in processes.log("simulator")
