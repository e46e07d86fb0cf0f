"""Shared test plumbing: waiting on conditions, InfluxDB queries, our own child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
TEST_INFLUX_URL = os.environ.get("TEST_INFLUX_URL", "http://127.0.0.1:18086")
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def wait_until(
    predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.1
) -> Any:
    """Poll until predicate() is truthy; fail with message (and the last value) at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message} (last: {str(last)[:300]})")


class InfluxV1:
    """The bits of InfluxDB 1.x's HTTP API the tests need."""

    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url.rstrip("/"), database

    def query(self, q: str, *, database: bool = True) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = self.database
        request = Request(f"{self.url}/query", data=urlencode(params).encode(), method="POST")
        with urlopen(request, timeout=30) as response:
            return json.load(response)

    def points(self, measurement_regex: str = "/.*/") -> list[dict[str, Any]]:
        """Every point of every series as a dict (measurement, time, tags and fields)."""
        result = self.query(f"SELECT * FROM {measurement_regex}")["results"][0]
        rows = []
        for series in result.get("series", []):
            columns = series["columns"]
            for values in series["values"]:
                row = {k: v for k, v in zip(columns, values, strict=True) if v is not None}
                row["measurement"] = series["name"]
                rows.append(row)
        return rows

    def count(self) -> int:
        return len(self.points())

    def write(self, body: str) -> int:
        request = Request(
            f"{self.url}/write?db={self.database}&precision=ns", data=body.encode(), method="POST"
        )
        with urlopen(request, timeout=30) as response:
            return response.status


def influx_reachable(url: str) -> bool:
    try:
        with urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 204
    except OSError:
        return False


def service_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ingestor_project.settings",
            "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
            "LOG_FORMAT": "console",
            "LOG_LEVEL": "INFO",
            "CELERY_BROKER_URL": TEST_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class Processes:
    """Child processes a test started; ends only those, by pid, at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, process))
        return process

    def manage(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        return self.start(name, [sys.executable, "manage.py", *command], env)

    def worker(self, name: str, env: dict[str, str], concurrency: int = 2) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ingestor_project",
            "worker",
            "-Q",
            env["CELERY_INGEST_QUEUE"],
            "-c",
            str(concurrency),
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ]
        return self.start(name, args, env)

    def web(self, name: str, env: dict[str, str], port: int, *extra: str) -> subprocess.Popen:
        """gunicorn as the Procfile runs it (two sync workers), on 127.0.0.1:port."""
        args = [sys.executable, "-m", "gunicorn", "ingestor_project.wsgi"]
        return self.start(name, [*args, "-b", f"127.0.0.1:{port}", "-w", "2", *extra], env)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(
        self, process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0
    ) -> int:
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return process.returncode

    def stop_all(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for _name, process in self.children:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def migrate(env: dict[str, str]) -> None:
    """Migrate the database a subprocess environment points at (workers need their tables)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
