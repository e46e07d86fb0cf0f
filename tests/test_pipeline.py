"""End to end on real services: HA simulator -> listener -> RabbitMQ -> Celery worker -> InfluxDB.

Checked by querying InfluxDB, never by trusting our own counters. The expected points are
derived here, independently of the code under test, from what the simulator actually delivered.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import datetime

import pytest

from hasim.thread import SimulatorThread
from tests.helpers import TEST_INFLUX_URL, migrate, service_env, wait_until

TOKEN = "pipeline-test-token-0123456789"
EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def expected_point(entity_id: str, state: dict) -> tuple[tuple, dict] | None:
    """HA influxdb integration basics: unit (else entity id) as measurement, domain and object
    id as tags, the numeric state as `value`, text as `state`, time = last_updated."""
    if state["state"] in ("unknown", "unavailable", ""):
        return None
    domain, object_id = entity_id.split(".", 1)
    measurement = state["attributes"].get("unit_of_measurement") or entity_id
    delta = datetime.fromisoformat(state["last_updated"]) - EPOCH
    time_ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    try:
        fields = {"value": float(state["state"])}
    except ValueError:
        fields = {"state": state["state"]}
    return (measurement, domain, object_id, time_ns), fields


def expected_points(delivered) -> dict[tuple, dict]:
    points = {}
    for entity_id, state in delivered:
        item = expected_point(entity_id, state)
        if item:
            assert item[0] not in points, "the simulator repeated a timestamp for one entity"
            points[item[0]] = item[1]
    return points


def stored_points(influx) -> dict[tuple, dict]:
    stored = {}
    for row in influx.points():
        key = (row["measurement"], row["domain"], row["entity_id"], row["time"])
        assert key not in stored
        stored[key] = row
    return stored


def assert_every_point_once(influx, expected: dict[tuple, dict]) -> None:
    wait_until(lambda: influx.count() >= len(expected), 120, f"{len(expected)} points in InfluxDB")
    stored = stored_points(influx)
    assert len(stored) == len(expected), "InfluxDB holds points nobody sent"
    for key, fields in expected.items():
        assert key in stored, f"missing point {key}"
        for name, value in fields.items():
            assert stored[key][name] == value, (key, name)


@pytest.fixture
def pipeline_env(influx, ingest_queue, tmp_path, postgres_url):
    def make(simulator: SimulatorThread, **extra: str) -> dict[str, str]:
        env = service_env(
            DATABASE_URL=postgres_url,
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=f"{ingest_queue}-maintenance",
            INFLUX_URL=TEST_INFLUX_URL,
            INFLUX_DATABASE=influx.database,
            HA_URL=simulator.url,
            HA_TOKEN=TOKEN,
            INGEST_BATCH_SIZE="500",
            INGEST_FLUSH_INTERVAL="0.2",
            DATA_DIR=str(tmp_path),
            # Without backfill the points are exactly what was delivered live; with it (the
            # default) the gaps are filled too: tests/test_backfill_e2e.py.
            BACKFILL_ENABLED="false",
            **extra,
        )
        migrate(env)
        return env

    return make


@pytest.fixture
def simulator_factory() -> Iterator:
    started: list[SimulatorThread] = []

    def make(**options) -> SimulatorThread:
        simulator = SimulatorThread(token=TOKEN, **options)
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


def test_5000_state_changes_over_200_entities_arrive_once_each(
    influx, processes, pipeline_env, simulator_factory
):
    simulator = simulator_factory(entities=200, rate=2500, events=5000, seed=1)
    env = pipeline_env(simulator)
    processes.worker("worker", env)
    listener = processes.manage("listener", ["listen_homeassistant"], env)
    simulator.wait_until_done(timeout=60)

    delivered = simulator.delivered_state_changes()
    assert len(delivered) == 5000
    assert len({entity_id for entity_id, _ in delivered}) == 200
    assert_every_point_once(influx, expected_points(delivered))

    assert processes.stop(listener, signal.SIGTERM) == 0, processes.log("listener")


def test_the_listener_reconnects_after_two_drops_and_loses_nothing_it_was_sent(
    influx, processes, pipeline_env, simulator_factory
):
    simulator = simulator_factory(entities=50, rate=1000, events=4000, seed=2)
    env = pipeline_env(simulator)
    processes.worker("worker", env)
    processes.manage("listener", ["listen_homeassistant"], env)

    for drop, after in enumerate((1200, 2400), start=1):
        wait_until(
            lambda after=after: len(simulator.delivered_state_changes()) >= after,
            60,
            f"{after} events delivered",
        )
        simulator.drop_connections()
        wait_until(
            lambda drop=drop: simulator.connection_count >= drop + 1
            and simulator.subscriber_count == 1,
            30,
            "the listener to re-subscribe",
        )
    simulator.wait_until_done(timeout=60)

    delivered = simulator.delivered_state_changes()
    assert 2400 < len(delivered) < 4000, "the drops should have cost the undelivered events"
    assert_every_point_once(influx, expected_points(delivered))
    assert processes.log("listener").count("ha_connected") == 3
