from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from tests.helpers import TEST_BROKER_URL, TEST_INFLUX_URL, InfluxV1, Processes, influx_reachable


@pytest.fixture
def influx() -> Iterator[InfluxV1]:
    """A fresh database on the test InfluxDB 1.x (started by `make test`)."""
    if not influx_reachable(TEST_INFLUX_URL):
        pytest.fail(
            f"InfluxDB is not answering at {TEST_INFLUX_URL}: run the tests with "
            "`make test`, which starts it (scripts/influxdb.sh)"
        )
    db = InfluxV1(TEST_INFLUX_URL, f"test_{uuid.uuid4().hex[:12]}")
    db.query(f'CREATE DATABASE "{db.database}"', database=False)
    yield db
    db.query(f'DROP DATABASE "{db.database}"', database=False)


@pytest.fixture
def ingest_queue() -> Iterator[str]:
    """A queue of the test's own on the machine's RabbitMQ, deleted afterwards."""
    name = f"ingest-test-{uuid.uuid4().hex[:10]}"
    try:
        with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the broker fails the test
        pytest.fail(f"RabbitMQ is not reachable at 127.0.0.1:5672: {exc!r}")
    yield name
    with Connection(TEST_BROKER_URL) as conn:
        channel = conn.channel()
        channel.queue_delete(name)
        channel.exchange_delete(name)


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def victoria_metrics(tmp_path) -> Iterator[str]:
    """A private VictoriaMetrics (Debian's package): a real server speaking /api/v2/write."""
    import shutil
    import socket
    import subprocess

    from tests.helpers import wait_until

    binary = shutil.which("victoria-metrics")
    if binary is None:
        pytest.fail("victoria-metrics is not installed: `make test` installs Debian's package")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        from urllib.request import urlopen

        try:
            with urlopen(f"{url}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(healthy, 30, "victoria-metrics to answer /health")
        yield url
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of the test's own on the machine's PostgreSQL, for worker subprocesses."""
    import psycopg

    name = f"ingestor_test_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SIMULATOR_TOKEN = "backfill-test-token-0123456789"


@pytest.fixture
def env_for(influx, ingest_queue, postgres_url, tmp_path):
    """Environment for listener/worker subprocesses against a simulator, with a migrated
    PostgreSQL database of the test's own."""

    from tests.helpers import TEST_INFLUX_URL, migrate, service_env

    def make(simulator, **extra: str) -> dict[str, str]:
        env = service_env(
            DATABASE_URL=postgres_url,
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
            DATA_DIR=str(tmp_path),
            INFLUX_URL=TEST_INFLUX_URL,
            INFLUX_DATABASE=influx.database,
            HA_URL=simulator.url,
            HA_TOKEN=SIMULATOR_TOKEN,
            INGEST_BATCH_SIZE="200",
            INGEST_FLUSH_INTERVAL="0.2",
            HA_INSTANCE="test-home",
            **extra,
        )
        migrate(env)
        return env

    return make
