"""History import end to end on real services: the simulator's recorder holds 100k+ states;
import_history -> RabbitMQ -> worker -> InfluxDB. Every state lands exactly once, through a
SIGKILL mid-way and a resume, and a re-run changes nothing. Checked by querying InfluxDB."""

from __future__ import annotations

import signal

import psycopg

from events.times import ns_to_iso
from hasim.preload import preload_history
from hasim.thread import SimulatorThread
from tests.conftest import SIMULATOR_TOKEN as TOKEN
from tests.helpers import InfluxV1, wait_until
from tests.test_backfill_e2e import all_generated, assert_exactly
from tests.test_pipeline import expected_point

STATES = 100_000
NAME = "import:test-home"


def with_start_states(simulator: SimulatorThread) -> dict[tuple, dict]:
    """Every generated state change, and the states at start-up (history rows too)."""
    expected = all_generated(simulator)
    for entity_id, state in simulator.call(lambda: dict(simulator.sim.recorder.initial)).items():
        item = expected_point(entity_id, state)
        if item:
            expected[item[0]] = item[1]
    return expected


def cursor_rows(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT name, position_ns FROM listeners_sourcecursor WHERE name LIKE 'import:%%'"
        ).fetchall()
    return dict(rows)


def fraction_done(database_url: str) -> float:
    rows = cursor_rows(database_url)
    if len(rows) < 3:
        return 0.0
    start, end = rows[f"{NAME}:start"], rows[f"{NAME}:end"]
    return (rows[NAME] - start) / (end - start)


def test_100k_states_imported_exactly_once_through_a_kill_a_resume_and_a_rerun(
    influx: InfluxV1, processes, env_for, postgres_url
):
    simulator = SimulatorThread(token=TOKEN, entities=80, rate=0, seed=7).start()
    try:
        simulator.call(lambda: preload_history(simulator.sim, STATES, days=8, seed=7))
        expected = with_start_states(simulator)
        assert len(expected) > STATES
        env = {**env_for(simulator), "INGEST_BATCH_SIZE": "2000"}  # the production default
        processes.worker("worker", env)
        command = ["import_history", "--since", "9d", "--rate", "8000", "--window", "6h"]
        first = processes.manage("import-1", command, env)
        wait_until(lambda: fraction_done(postgres_url) > 0.25, 120, "a quarter imported")
        processes.stop(first, signal.SIGKILL)
        position = cursor_rows(postgres_url)[NAME]
        assert fraction_done(postgres_url) < 0.9, "killed too late to prove a resume"

        second = processes.manage("import-2", command, env)
        assert second.wait(180) == 0, processes.log("import-2")
        assert f"start={ns_to_iso(position)}" in processes.log("import-2"), "did not resume"
        assert_exactly(influx, expected, timeout=180)
        assert "history_import_progress" in processes.log("import-2")

        third = processes.manage("import-3", command, env)
        assert third.wait(60) == 0, processes.log("import-3")
        assert "events=0" in processes.log("import-3") or "already_done" in processes.log(
            "import-3"
        )
        assert_exactly(influx, expected, timeout=30)
    finally:
        simulator.stop()


def test_the_first_start_imports_history_in_the_background_once(influx, processes, env_for):
    simulator = SimulatorThread(token=TOKEN, entities=40, rate=100, events=800, seed=8).start()
    try:
        simulator.call(lambda: preload_history(simulator.sim, 5000, days=2, seed=8))
        env = env_for(simulator, HA_IMPORT_HISTORY_ON_FIRST_START="3d")
        processes.worker("worker", env)
        listener = processes.manage("listener", ["listen_homeassistant"], env)
        simulator.wait_until_done(timeout=60)
        # Live changes and the whole past, each exactly once, beside each other.
        assert_exactly(influx, with_start_states(simulator), timeout=120)
        wait_until(
            lambda: "history_import_done" in processes.log("listener"), 60, "the import to end"
        )
        assert processes.log("listener").count("history_import_launched") == 1
        assert processes.stop(listener) == 0

        processes.manage("listener-again", ["listen_homeassistant"], env)
        wait_until(lambda: simulator.connection_count >= 3, 30, "the listener back")
        assert "history_import_launched" not in processes.log("listener-again")
    finally:
        simulator.stop()
