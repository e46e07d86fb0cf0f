"""The benchmarked process stack (simulator, listener, worker, web) and what its processes cost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.influx import INFLUX, influx_query

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BROKER = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "bench-token-0123456789abcdef"
# The machine's shared services, by process name (/proc/PID/comm).
SERVICES = {"rabbitmq": "beam.smp", "influxdb": "influxd", "postgresql": "postgres"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tree(pid: int) -> list[int]:
    """A process and all its descendants: a worker's pool, gunicorn's workers."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            found.append(int(child))
            frontier.append(int(child))
    return found


def proc_stats(pids: list[int]) -> dict[int, dict]:
    """CPU seconds so far and peak RSS of each process still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        stats[pid] = {
            "cpu_s": (int(fields[11]) + int(fields[12])) / tick,
            "peak_rss_mib": hwm / 1024,
        }
    return stats


def service_pids() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {name: [] for name in SERVICES}
    by_command = {command: name for name, command in SERVICES.items()}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if command in by_command:
                found[by_command[command]].append(int(entry.name))
    return found


class Stack:
    """Simulator, listener, worker and web as child processes, ended by pid.

    ``source="mqtt"`` runs ``listen_mqtt`` instead of the HA listener, and no simulator: the
    caller sets the MQTT variables in ``env`` and spawns its own publisher (bench/mqtt_path.py).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        rate: float,
        metrics: bool,
        events: int | None,
        concurrency: int,
        batch_size: int,
        flush: float,
        source: str = "homeassistant",
    ) -> None:
        self.workdir, self.children, self.source = workdir, {}, source
        self.db = f"bench_{uuid.uuid4().hex[:8]}"
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.sim_port, self.web_port = free_port(), free_port()
        self.pg = f"bench_{uuid.uuid4().hex[:8]}"
        self.rate, self.events, self.concurrency = rate, events, concurrency
        metrics_dir = workdir / f"metrics-{self.db}"
        metrics_dir.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
            "DJANGO_SETTINGS_MODULE": "ingestor_project.settings",
            "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "CELERY_BROKER_URL": BROKER,
            "CELERY_INGEST_QUEUE": self.queue,
            "CELERY_MAINTENANCE_QUEUE": self.queue + "-m",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.pg}",
            "INFLUX_URL": INFLUX,
            "INFLUX_DATABASE": self.db,
            "HA_URL": f"ws://127.0.0.1:{self.sim_port}/api/websocket",
            "HA_TOKEN": TOKEN,
            "INGEST_BATCH_SIZE": str(batch_size),
            "INGEST_FLUSH_INTERVAL": str(flush),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "METRICS_ENABLED": "true" if metrics else "false",
            "READY_LISTENERS": source,
            "BACKFILL_ENABLED": "false",
        }

    def start(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg}"')
        influx_query(f'CREATE DATABASE "{self.db}"')
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], env=self.env, cwd=ROOT, check=True)
        if self.source == "homeassistant":
            self._start_simulator()
        self.spawn(
            "worker",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "ingestor_project",
                "worker",
                "-Q",
                self.queue,
                "-c",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
                "-n",
                f"{self.queue}@%h",
            ],
        )
        self.spawn(
            "web",
            [
                PY,
                "-m",
                "gunicorn",
                "ingestor_project.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "2",
            ],
        )
        self.spawn("listener", [PY, "manage.py", f"listen_{self.source}"])
        wait(lambda: port_open(self.web_port), 30, "web")

    def _start_simulator(self) -> None:
        sim = [
            "manage.py",
            "simulate_homeassistant",
            "--port",
            str(self.sim_port),
            "--token",
            TOKEN,
            "--entities",
            "200",
            "--rate",
            str(self.rate),
            "--max-recorded",
            "0",
            "--no-compression",
            # At the maximum rate, generate as fast as the listener reads (not a backlog).
            "--max-outbox",
            "4096",
            *(["--events", str(self.events)] if self.events else []),
        ]
        self.spawn("simulator", [PY, *sim])
        wait(lambda: port_open(self.sim_port), 30, "simulator")

    def spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.children[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stats(self) -> dict[str, dict]:
        out = {}
        groups = {
            name: (tree(proc.pid) if proc.poll() is None else [])
            for name, proc in self.children.items()
        }
        # The machine's services do part of the work: their CPU counts against the same cores
        # (every process of theirs, so other work on the machine shows up here too).
        groups.update(service_pids())
        for name, pids in groups.items():
            per_pid = proc_stats(pids)
            out[name] = {
                "processes": len(per_pid),
                "cpu_s": round(sum(p["cpu_s"] for p in per_pid.values()), 2),
                "peak_rss_mib_max": round(
                    max((p["peak_rss_mib"] for p in per_pid.values()), default=0), 1
                ),
            }
        return out

    def stop(self) -> None:
        import psycopg

        for proc in self.children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.children.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        influx_query(f'DROP DATABASE "{self.db}"')
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pg}" WITH (FORCE)')
        from kombu import Connection

        with Connection(BROKER) as conn:
            channel = conn.channel()
            for queue in (self.queue, self.queue + "-m"):
                channel.queue_delete(queue)
