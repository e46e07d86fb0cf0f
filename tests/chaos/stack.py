"""The chaos run's stack: private services, the simulator, and the product's processes.

Every service here is a private instance (own port, own data directory) and every process a
child of the run, so a fault is injected by pid and nothing shared on the machine is touched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from hasim.thread import SimulatorThread
from tests.helpers import ROOT, InfluxV1, migrate, service_env, wait_until
from tests.services import PrivateInfluxDB, PrivateMosquitto, PrivatePostgres, PrivateRabbitMQ

TOKEN = "chaos-token-0123456789abcdef"
QUEUE = "ingest-chaos"
INFLUX_DB = "chaos"
MQTT_TOPICS = "chaos/z/+"
# Bus events are stored too: they are the events HA keeps no history of.
HA_EVENT_TYPES = "state_changed,call_service,automation_triggered"


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        database: str,
        seed: int,
        ha_rate: float,
        poison: float,
        poison_kinds: tuple[str, ...],
    ) -> None:
        self.workdir, self.database = workdir, database
        self.influx = PrivateInfluxDB(workdir / "influx")
        self.rabbit = PrivateRabbitMQ()
        self.mosquitto = PrivateMosquitto()
        self.postgres = PrivatePostgres() if database == "postgres" else None
        self.sqlite_path = workdir / "db.sqlite3"
        self.sim = SimulatorThread(
            token=TOKEN,
            entities=80,
            rate=ha_rate,
            seed=seed,
            other_events_ratio=0.15,
            poison_ratio=poison,
            poison_kinds=poison_kinds,
            compression=False,
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self.env: dict[str, str] = {}

    # --- start and stop ----------------------------------------------------------------------
    def start(self) -> None:
        self.influx.start()
        self.rabbit.start()
        self.mosquitto.start()
        if self.postgres is not None:
            self.postgres.start()
        self.sim.start()
        self.env = self._env()
        migrate(self.env)
        self.db.query(f'CREATE DATABASE "{INFLUX_DB}"', database=False)
        self.spawn("worker")
        self.spawn("listen_mqtt")
        self.spawn("listen_homeassistant")
        self.sim.wait_for_subscribers(1, timeout=60)
        self.wait_mqtt_subscribed()

    def _env(self) -> dict[str, str]:
        sqlite = f"sqlite:///{self.sqlite_path}"
        url = self.postgres.url if self.postgres is not None else sqlite
        return service_env(
            DATABASE_URL=url,
            DATA_DIR=str(self.workdir),
            PROMETHEUS_MULTIPROC_DIR=str(self.workdir / "metrics"),
            LOG_FORMAT="json",
            CELERY_BROKER_URL=self.rabbit.url,
            CELERY_INGEST_QUEUE=QUEUE,
            CELERY_MAINTENANCE_QUEUE=QUEUE + "-maintenance",
            INFLUX_URL=self.influx.url,
            INFLUX_DATABASE=INFLUX_DB,
            INFLUX_TIMEOUT="3",
            HA_URL=self.sim.url,
            HA_TOKEN=TOKEN,
            HA_INSTANCE="chaos-home",
            HA_EVENT_TYPES=HA_EVENT_TYPES,
            HA_PING_INTERVAL="5",
            HA_PING_TIMEOUT="5",
            INGEST_BATCH_SIZE="200",
            INGEST_FLUSH_INTERVAL="0.2",
            BREAKER_THRESHOLD="3",
            BREAKER_COOLDOWN="2",
            BREAKER_PARK_SECONDS="3",
            WRITE_RETRY_BACKOFF="1",
            WRITE_RETRY_BACKOFF_MAX="5",
            MQTT_URL=f"mqtt://127.0.0.1:{self.mosquitto.port}",
            MQTT_CLIENT_ID="chaos-listener",
            MQTT_SESSION_EXPIRY="3600",
            MQTT_SUBSCRIPTIONS=f"{MQTT_TOPICS}=json",
            READY_LISTENERS="homeassistant,mqtt",
        )

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        self.sim.stop()
        self.mosquitto.remove()
        self.rabbit.remove()
        self.influx.stop()
        if self.postgres is not None:
            self.postgres.remove()

    @property
    def db(self) -> InfluxV1:
        return InfluxV1(self.influx.url, INFLUX_DB)

    # --- the product's processes -----------------------------------------------------------
    def spawn(self, name: str) -> subprocess.Popen:
        count = self.restarts[name] = self.restarts.get(name, -1) + 1
        if name == "worker":
            args = [sys.executable, "-m", "celery", "-A", "ingestor_project", "worker", "-Q"]
            args += [QUEUE, "-c", "2", "-l", "INFO", "--without-gossip", "--without-mingle"]
            args += ["-n", f"chaos{count}-{os.getpid()}@%h"]
        else:
            args = [sys.executable, "manage.py", name]
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - lives with the process
        self.procs[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.procs[name]

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.{self.restarts.get(name, 0)}.log"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """The whole process group: a worker's pool children die with it."""
        process = self.procs.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        except ProcessLookupError:
            pass

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code (None while running): no input may end a process."""
        return {name: process.poll() for name, process in self.procs.items()}

    def wait_mqtt_subscribed(self, timeout: float = 60) -> None:
        path = self.log_path("listen_mqtt")
        wait_until(
            lambda: path.exists() and b'"mqtt_subscribed"' in path.read_bytes(),
            timeout,
            "the MQTT listener to subscribe",
            interval=0.2,
        )

    # --- the SQLite variant's database fault -------------------------------------------------
    def hold_sqlite_lock(self, seconds: float) -> threading.Thread:
        """Another connection holds the write lock (BEGIN IMMEDIATE) for `seconds`."""
        held = threading.Event()

        def hold() -> None:
            conn = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                held.set()
                time.sleep(seconds)
                conn.execute("ROLLBACK")
            finally:
                conn.close()

        thread = threading.Thread(target=hold, name="sqlite-lock", daemon=True)
        thread.start()
        held.wait(60)
        return thread
