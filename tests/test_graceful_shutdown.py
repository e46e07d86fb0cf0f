"""SIGTERM to every process type mid-stream: each stops within its grace period with exit 0,
and InfluxDB still ends up with every event exactly once."""

from __future__ import annotations

import signal
import sys
import time

from hasim.thread import SimulatorThread
from tests.conftest import SIMULATOR_TOKEN as TOKEN
from tests.helpers import wait_until
from tests.services import free_port, port_open
from tests.test_backfill_e2e import all_generated, assert_exactly

# The compose file's stop_grace_period for the longest of these (worker) is 60 s.
GRACE_SECONDS = 30


def stopped_cleanly(processes, process, name: str) -> None:
    started = time.monotonic()
    code = processes.stop(process, signal.SIGTERM, timeout=GRACE_SECONDS)
    elapsed = time.monotonic() - started
    assert code == 0, f"{name} exited {code} after SIGTERM:\n{processes.log(name)[-3000:]}"
    assert elapsed < GRACE_SECONDS, f"{name} took {elapsed:.1f} s to stop"


def test_every_process_type_stops_gracefully_mid_stream_and_nothing_is_lost(
    influx, processes, env_for
):
    simulator = SimulatorThread(token=TOKEN, entities=50, rate=400, events=6000, seed=9).start()
    try:
        env = env_for(simulator)
        web_port = free_port()
        web = processes.web("web", env, web_port, "--graceful-timeout", "20")
        beat = processes.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "ingestor_project",
                "beat",
                "-s",
                str(env["DATA_DIR"]) + "/beat-schedule",
            ],
            env,
        )
        worker = processes.worker("worker", env)
        listener = processes.manage("listener", ["listen_homeassistant"], env)
        wait_until(lambda: port_open(web_port), 30, "the web process")

        simulator.wait_for_delivered(1000, timeout=60)
        stopped_cleanly(processes, worker, "worker")  # warm shutdown: in-flight batch finishes
        processes.worker("worker-2", env)
        simulator.wait_for_delivered(2500, timeout=60)
        stopped_cleanly(processes, listener, "listener")  # flushes its buffer to the broker
        processes.manage("listener-2", ["listen_homeassistant"], env)  # backfills the pause
        stopped_cleanly(processes, web, "web")
        stopped_cleanly(processes, beat, "beat")

        simulator.wait_until_done(timeout=90)
        assert_exactly(influx, all_generated(simulator), timeout=120)
    finally:
        simulator.stop()
