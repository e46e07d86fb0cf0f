"""No gaps: whatever the listener missed comes back from Home Assistant's history.

Real RabbitMQ, PostgreSQL and InfluxDB; the simulator keeps the history HA's recorder would.
The expected points are every state change the simulator generated, delivered live or not.
"""

from __future__ import annotations

import signal
import time

from hasim.thread import SimulatorThread
from tests.conftest import SIMULATOR_TOKEN as TOKEN
from tests.helpers import InfluxV1, wait_until
from tests.services import PrivateRabbitMQ
from tests.test_pipeline import expected_point


def all_generated(simulator: SimulatorThread) -> dict[tuple, dict]:
    points = {}
    for event in simulator.generated:
        if event["event_type"] == "state_changed":
            item = expected_point(event["data"]["entity_id"], event["data"]["new_state"])
            if item:
                points[item[0]] = item[1]
    return points


def assert_exactly(influx: InfluxV1, expected: dict[tuple, dict], timeout: float) -> None:
    wait_until(
        lambda: influx.count() >= len(expected),
        timeout,
        f"{len(expected)} points in InfluxDB",
        interval=0.5,
    )
    stored = {
        (p["measurement"], p["domain"], p["entity_id"], p["time"]): p for p in influx.points()
    }
    missing = sorted(set(expected) - set(stored))
    assert missing == [], f"{len(missing)} missing, first {missing[:3]}"
    assert len(stored) == len(expected), "InfluxDB holds points nobody generated"
    for key, fields in expected.items():
        for name, value in fields.items():
            assert stored[key][name] == value


def test_a_listener_killed_for_10_s_backfills_every_change_exactly_once(influx, processes, env_for):
    simulator = SimulatorThread(token=TOKEN, entities=60, rate=150, events=3000, seed=3).start()
    try:
        env = env_for(simulator)
        processes.worker("worker", env)
        listener = processes.manage("listener", ["listen_homeassistant"], env)
        simulator.wait_for_delivered(600, timeout=60)
        processes.stop(listener, signal.SIGKILL)
        time.sleep(10)  # the outage itself: the simulator keeps changing states meanwhile
        processes.manage("listener-again", ["listen_homeassistant"], env)
        simulator.wait_until_done(timeout=60)
        assert_exactly(influx, all_generated(simulator), timeout=90)
        assert "ha_backfill_done" in processes.log("listener-again")
    finally:
        simulator.stop()


def test_drops_and_a_slow_consumer_disconnect_leave_no_gaps(influx, processes, env_for, tmp_path):
    broker = PrivateRabbitMQ()
    broker.start()
    # HA drops a client with too many messages queued; here the limit is 1,000.
    simulator = SimulatorThread(
        token=TOKEN,
        entities=40,
        rate=800,
        events=16_000,
        seed=4,
        max_pending=1000,
        compression=False,
    ).start()
    try:
        env = env_for(simulator, CELERY_BROKER_URL=broker.url, INGEST_MAX_PENDING_BATCHES="2")
        processes.worker("worker", env)
        processes.manage("listener", ["listen_homeassistant"], env)
        simulator.wait_for_delivered(2000, timeout=60)
        simulator.drop_connections()  # HA restarts
        wait_until(lambda: simulator.connection_count >= 2, 30, "a reconnect after the drop")
        # The broker freezes: the listener's buffer fills, it stops reading, HA's queue for it
        # overflows and HA disconnects it as a slow consumer.
        broker.pause()
        try:
            wait_until(
                lambda: simulator.open_connections == 0,
                60,
                "the listener to be dropped as a slow consumer",
            )
        finally:
            broker.resume()
        simulator.wait_until_done(timeout=90)
        assert_exactly(influx, all_generated(simulator), timeout=120)
        assert simulator.connection_count >= 3
    finally:
        simulator.stop()
        broker.remove()
