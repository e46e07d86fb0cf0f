"""Fault injection on the write path, against real services; InfluxDB is checked by query.

Each test starts what it breaks (a private InfluxDB or RabbitMQ on its own port and data
directory) and ends only the processes it started.
"""

from __future__ import annotations

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import pytest

from tests import streams
from tests.helpers import TEST_BROKER_URL, InfluxV1, migrate, service_env, wait_until
from tests.services import PrivateInfluxDB, PrivateRabbitMQ


def breaker_state(postgres_url: str) -> str | None:
    import psycopg

    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://")) as conn:
        row = conn.execute("SELECT state FROM tasks_breakerstate WHERE name='influxdb'").fetchone()
    return row[0] if row else None


def assert_all_points_once(db: InfluxV1, items: list[dict], timeout: float) -> None:
    wait_until(
        lambda: db.count() >= len(items), timeout, f"{len(items)} points in InfluxDB", interval=1.0
    )
    stored = sorted(p["time"] for p in db.points())
    assert stored == sorted(e["time"] for e in items)


class CountingProxy(ThreadingHTTPServer):
    """Forwards to InfluxDB and remembers when each write arrived; answers 502 while the
    upstream is down (as a load balancer would), and can hold writes to keep them in flight."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream, self.writes, self.delay = upstream, [], 0.0
        self.url = f"http://127.0.0.1:{self.server_port}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: CountingProxy

    def log_message(self, *_args) -> None:
        pass

    def _forward(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        if self.path.startswith("/write"):
            self.server.writes.append(time.monotonic())
            time.sleep(self.server.delay)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() in ("content-type", "content-encoding", "authorization")
        }
        try:
            with urlopen(
                Request(
                    self.server.upstream + self.path, data=body, headers=headers, method=method
                ),
                timeout=10,
            ) as response:
                status, payload = response.status, response.read()
        except HTTPError as exc:
            status, payload = exc.code, exc.read()
        except (URLError, OSError):
            status, payload = 502, b'{"error":"upstream unreachable"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self._forward("POST")

    def do_GET(self) -> None:
        self._forward("GET")


@pytest.fixture
def private_influx(tmp_path):
    influx = PrivateInfluxDB(tmp_path / "influx")
    influx.start()
    yield influx
    influx.stop()


def worker_env(postgres_url, queue, influx_url, database, tmp_path, **extra) -> dict[str, str]:
    env = service_env(
        DATABASE_URL=postgres_url,
        CELERY_INGEST_QUEUE=queue,
        CELERY_MAINTENANCE_QUEUE=f"{queue}-maintenance",
        INFLUX_URL=influx_url,
        INFLUX_DATABASE=database,
        DATA_DIR=str(tmp_path),
        INFLUX_TIMEOUT="3",
        BREAKER_THRESHOLD="3",
        BREAKER_COOLDOWN="5",
        BREAKER_PARK_SECONDS="3",
        WRITE_RETRY_BACKOFF="1",
        WRITE_RETRY_BACKOFF_MAX="4",
    )
    env.update(extra)
    migrate(env)
    return env


def test_influxdb_down_for_60_s_loses_nothing_and_the_breaker_stops_the_requests(
    private_influx, ingest_queue, postgres_url, processes, tmp_path
):
    db = InfluxV1(private_influx.url, "ha")
    db.query('CREATE DATABASE "ha"', database=False)
    proxy = CountingProxy(private_influx.url)
    env = worker_env(postgres_url, ingest_queue, proxy.url, "ha", tmp_path)
    processes.worker("worker", env)
    items = streams.events(10_000)
    stream = streams.Stream(TEST_BROKER_URL, ingest_queue, items, rate=250).start()

    wait_until(lambda: db.count() >= 500, 60, "the first points before the outage")
    private_influx.stop()
    outage_started = time.monotonic()
    wait_until(lambda: breaker_state(postgres_url) == "open", 60, "the breaker to open")
    opened_at = time.monotonic()
    time.sleep(max(0.0, 60 - (opened_at - outage_started)))  # the outage itself: 60 s
    private_influx.start()
    restarted = time.monotonic()

    stream.finish(timeout=120)
    assert_all_points_once(db, items, timeout=180)
    wait_until(lambda: breaker_state(postgres_url) == "closed", 60, "the breaker to close")
    # While open, only one probe per 5 s cooldown reaches InfluxDB (plus one in flight when
    # it opened): a retry storm would be hundreds.
    while_open = [t for t in proxy.writes if opened_at + 0.5 < t < restarted]
    assert len(while_open) <= (restarted - opened_at) / 5 + 2, len(while_open)


def test_a_worker_killed_mid_batch_loses_nothing(
    private_influx, ingest_queue, postgres_url, processes, tmp_path
):
    db = InfluxV1(private_influx.url, "ha")
    db.query('CREATE DATABASE "ha"', database=False)
    proxy = CountingProxy(private_influx.url)
    proxy.delay = 0.5  # writes stay in flight long enough to be killed
    env = worker_env(postgres_url, ingest_queue, proxy.url, "ha", tmp_path)
    worker = processes.worker("worker", env)
    items = streams.events(3_000)
    stream = streams.Stream(TEST_BROKER_URL, ingest_queue, items, rate=1000).start()

    wait_until(lambda: len(proxy.writes) >= 3, 60, "writes in flight")
    processes.stop(worker, signal.SIGKILL)  # the whole process group: main and pool children
    proxy.delay = 0.0
    processes.worker("worker2", env)

    stream.finish(timeout=60)
    assert_all_points_once(db, items, timeout=120)


def test_a_rabbitmq_restart_mid_stream_loses_nothing(
    private_influx, ingest_queue, postgres_url, processes, tmp_path
):
    broker = PrivateRabbitMQ()
    broker.start()
    try:
        db = InfluxV1(private_influx.url, "ha")
        db.query('CREATE DATABASE "ha"', database=False)
        env = worker_env(
            postgres_url,
            ingest_queue,
            private_influx.url,
            "ha",
            tmp_path,
            CELERY_BROKER_URL=broker.url,
        )
        processes.worker("worker", env)
        items = streams.events(6_000)
        stream = streams.Stream(broker.url, ingest_queue, items, rate=500).start()

        wait_until(lambda: db.count() >= 1000, 60, "points before the restart")
        broker.stop()
        assert not broker.accepts_sessions(), "the broker is still up"
        time.sleep(2)  # a real restart: the broker is away for a moment
        broker.start()

        stream.finish(timeout=120)
        assert_all_points_once(db, items, timeout=120)
    finally:
        broker.remove()
