"""The simulator command serves HA's protocol until SIGTERM, then exits 0."""

from __future__ import annotations

import json
import signal

from websockets.sync.client import connect

from tests.helpers import service_env, wait_until
from tests.services import free_port, port_open


def test_simulate_homeassistant_serves_events_and_stops_on_sigterm(processes):
    port = free_port()
    env = service_env(SIMULATOR_TOKEN="command-test-token")
    command = ["simulate_homeassistant", "--port", str(port), "--rate", "200", "--events", "50"]
    server = processes.manage("simulator", command, env)
    wait_until(lambda: port_open(port), 30, "the simulator to listen")

    with connect(f"ws://127.0.0.1:{port}/api/websocket") as ws:
        assert json.loads(ws.recv())["type"] == "auth_required"
        ws.send(json.dumps({"type": "auth", "access_token": "command-test-token"}))
        assert json.loads(ws.recv())["type"] == "auth_ok"
        ws.send(json.dumps({"id": 1, "type": "subscribe_events", "event_type": "state_changed"}))
        assert json.loads(ws.recv())["success"] is True
        events = [json.loads(ws.recv(timeout=10)) for _ in range(50)]
    assert {e["event"]["event_type"] for e in events} == {"state_changed"}

    assert processes.stop(server, signal.SIGTERM) == 0
    assert "command-test-token" not in processes.log("simulator")
