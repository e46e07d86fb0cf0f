"""The Django database unavailable or locked while batches flow: nothing is acknowledged before it
is a point or a dead letter, and nothing is recorded twice.

The worker needs the database for the breaker (an optimisation: ignored when unreachable) and for
dead letters (not optional: a batch whose dead letters cannot be kept goes back to the broker).
"""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg
import pytest

from events.contract import unparseable_event
from tests import streams
from tests.helpers import TEST_BROKER_URL, TEST_INFLUX_URL, migrate, service_env, wait_until


def admin_sql(sql: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql)


def set_connectable(name: str, allowed: bool) -> None:
    """PostgreSQL refuses every new connection to the database (and drops the open ones), as
    if its server were away, while the machine's shared server keeps running for others."""
    admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
    if not allowed:
        admin_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )


def dead_letters_pg(postgres_url: str) -> list[tuple]:
    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT category, payload, batch_id FROM tasks_failedwrite ORDER BY id"
        ).fetchall()


def with_markers(items: list[dict], every: int) -> tuple[list[dict], int]:
    """The events with a poison marker after every ``every``-th: what a listener sends when it
    set messages aside."""
    mixed, markers = [], 0
    for n, item in enumerate(items):
        mixed.append(item)
        if n % every == every - 1:
            mixed.append(unparseable_event("mqtt", f"poison {n}", "not JSON", f"topic/{n}"))
            markers += 1
    return mixed, markers


def worker_env(tmp_path, queue: str, database: str, **extra: str) -> dict[str, str]:
    env = service_env(
        CELERY_INGEST_QUEUE=queue,
        CELERY_MAINTENANCE_QUEUE=f"{queue}-maintenance",
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=database,
        DATA_DIR=str(tmp_path),
        WRITE_RETRY_BACKOFF="1",
        WRITE_RETRY_BACKOFF_MAX="3",
        **extra,
    )
    migrate(env)
    return env


def assert_points_once(influx, items: list[dict]) -> None:
    wait_until(lambda: influx.count() >= len(items), 120, f"{len(items)} points", interval=0.5)
    assert sorted(p["time"] for p in influx.points()) == sorted(e["time"] for e in items)


def test_postgresql_unavailable_keeps_every_batch_until_its_dead_letters_are_stored(
    influx, ingest_queue, postgres_url, processes, tmp_path
):
    name = postgres_url.rsplit("/", 1)[1]
    env = worker_env(tmp_path, ingest_queue, influx.database, DATABASE_URL=postgres_url)
    processes.worker("worker", env)
    items = streams.events(2_000)
    mixed, markers = with_markers(items, 200)
    try:
        set_connectable(name, False)
        streams.Stream(TEST_BROKER_URL, ingest_queue, mixed, rate=1000).start().finish(60)
        # Points need no database (the breaker is ignored while unreachable) ...
        assert_points_once(influx, items)
        # ... but the batches holding poison stay in the broker, retried, until it is back.
        wait_until(
            lambda: "batch_failed_unexpectedly" in processes.log("worker"), 60, "a retried batch"
        )
    finally:
        set_connectable(name, True)
    letters = wait_until(
        lambda: len(rows := dead_letters_pg(postgres_url)) >= markers and rows,
        120,
        f"{markers} dead letters once the database is back",
        interval=0.5,
    )
    time.sleep(2)  # a copy recorded by a late retry would show up now
    letters = dead_letters_pg(postgres_url)
    assert sorted(payload for _, payload, _ in letters) == sorted(
        f"poison {n}" for n in range(199, 2_000, 200)
    )
    assert {category for category, _, _ in letters} == {"unparseable"}
    assert_points_once(influx, items)


def hold_sqlite_lock(path, seconds: float, started: threading.Event) -> threading.Thread:
    def hold() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        started.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("lock_seconds", [3, 25])
def test_an_sqlite_lock_held_for_seconds_loses_nothing(
    influx, ingest_queue, processes, tmp_path, lock_seconds
):
    """The embedded default: several processes share one SQLite file. A writer that holds it
    for longer than the busy timeout (20 s) must not cost a batch."""
    env = worker_env(tmp_path, ingest_queue, influx.database)
    processes.worker("worker", env)
    items = streams.events(3_000)
    mixed, markers = with_markers(items, 300)
    stream = streams.Stream(TEST_BROKER_URL, ingest_queue, mixed, rate=500).start()
    wait_until(lambda: influx.count() >= 300, 60, "points before the lock")
    locked = threading.Event()
    holder = hold_sqlite_lock(tmp_path / "db.sqlite3", lock_seconds, locked)
    assert locked.wait(30), "the test could not take the SQLite lock"
    stream.finish(120)
    holder.join(lock_seconds + 30)
    assert_points_once(influx, items)

    def letters() -> list[str]:
        with sqlite3.connect(tmp_path / "db.sqlite3", timeout=30) as conn:
            return [row[0] for row in conn.execute("SELECT payload FROM tasks_failedwrite")]

    wait_until(lambda: len(letters()) >= markers, 120, f"{markers} dead letters", interval=0.5)
    time.sleep(2)
    assert sorted(letters()) == sorted(f"poison {n}" for n in range(299, 3_000, 300))
