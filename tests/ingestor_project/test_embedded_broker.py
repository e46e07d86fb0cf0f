"""The embedded (no-server) broker: nothing lost, duplicated or half-read under concurrent
producers and consumers; claims of a dead consumer come back; broadcasts expire."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kombu import Consumer, Producer

from bench.broker_stress import QUEUE, connection, stress
from ingestor_project import embedded_broker
from tests.helpers import ROOT, wait_until


def test_ten_thousand_messages_from_three_producers_to_three_consumers_exactly_once(tmp_path):
    result = stress("embedded", 10_000, 3, 3, tmp_path, deadline=50)
    assert (result.received, result.lost, result.duplicated) == (9_999, 0, 0), result


def publish(folder: Path, body: dict) -> None:
    with connection("embedded", folder) as conn:
        Producer(conn.channel(), exchange=QUEUE.exchange, routing_key="stress").publish(
            body, serializer="json", delivery_mode=2, declare=[QUEUE]
        )


def test_a_message_is_visible_only_once_completely_written(tmp_path):
    publish(tmp_path, {"n": 1})
    names = [p.name for p in tmp_path.iterdir() if p.is_file()]
    assert len(names) == 1 and names[0].endswith(".stress.msg")
    assert json.loads((tmp_path / names[0]).read_text())["body"]
    # A writer caught mid-write leaves only a temporary name, which no reader lists.
    (tmp_path / f".{time.time_ns():019d}-x.stress.msg.tmp").write_text('{"half')
    with connection("embedded", tmp_path) as conn:
        channel = conn.channel()
        assert channel._size("stress") == 1


def test_claims_of_a_consumer_that_died_are_delivered_again(tmp_path):
    publish(tmp_path, {"n": 7})
    # A consumer takes the message and is killed before it acknowledges it.
    take = (
        "import os, sys; from bench.broker_stress import connection, QUEUE; "
        "conn = connection('embedded', __import__('pathlib').Path(sys.argv[1])); "
        "message = QUEUE(conn.channel()).get(); assert message is not None; os._exit(9)"
    )
    dead = subprocess.run([sys.executable, "-c", take, str(tmp_path)], cwd=ROOT, check=False)
    assert dead.returncode == 9
    assert len(list((tmp_path / "processing").iterdir())) == 1
    got = []
    with connection("embedded", tmp_path) as conn:
        consumer = Consumer(conn.channel(), queues=[QUEUE], accept=["json"])
        consumer.register_callback(lambda body, message: (got.append(body), message.ack()))
        with consumer:
            conn.drain_events(timeout=5)
    assert got == [{"n": 7}]
    assert list((tmp_path / "processing").iterdir()) == []


def test_transient_messages_nobody_reads_expire(tmp_path, monkeypatch):
    with connection("embedded", tmp_path) as conn:
        channel = conn.channel()
        old = time.time_ns() - int(2 * embedded_broker.TRANSIENT_TTL_SECONDS * 1e9)
        stale = tmp_path / f"{old:019d}-abc~t.celeryev.gone.msg"
        stale.write_text("{}")
        durable = tmp_path / f"{old:019d}-def.ingest.msg"
        durable.write_text("{}")
        channel._put("celeryev.alive", {"properties": {"delivery_mode": 1}})
        channel.next_sweep = 0
        channel.sweep_transient()
    assert not stale.exists()
    assert durable.exists()
    assert [p.name for p in tmp_path.glob("*celeryev.alive.msg")]


def test_the_default_broker_is_the_embedded_one(tmp_path):
    code = (
        "import django; django.setup(); from ingestor_project.celery import app; "
        "print(type(app.connection_for_write().transport).__module__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(DJANGO_SETTINGS_MODULE="ingestor_project.settings", DATA_DIR=str(tmp_path))
    env.update(SECRET_KEY="x" * 50)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "ingestor_project.embedded_broker"


def test_a_consumer_holding_an_unacked_message_gets_control_back_to_ack_it(tmp_path):
    # Celery's loop for a polling transport performs deferred acks only between two calls of
    # drain_events(timeout=2.0): blocking for the whole timeout while a message waits for its
    # ack held a one-process worker's next task back ~2 s. Asked to wait 60 s here, the call
    # must return at once while the message is held, and wait again once it is acked.
    publish(tmp_path, {"n": 1})
    held = []
    with connection("embedded", tmp_path) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=1)
        consumer = Consumer(channel, queues=[QUEUE], accept=["json"])
        consumer.register_callback(lambda body, message: held.append(message))
        with consumer:
            conn.drain_events(timeout=5)
            assert len(held) == 1
            returned = threading.Event()

            def drain_while_holding() -> None:
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=60)
                returned.set()

            threading.Thread(target=drain_while_holding, daemon=True).start()
            assert returned.wait(10), "drain_events blocked while a message waited for its ack"
            held[0].ack()
            assert not channel.qos.holding()
            with pytest.raises(TimeoutError):
                conn.drain_events(timeout=0.3)  # nothing held: it waits for the timeout


def test_a_waiting_consumer_wakes_when_a_message_arrives_not_by_polling(tmp_path, monkeypatch):
    # Nothing rescans the folder within the test: only the rename of the message wakes the wait.
    monkeypatch.setattr(embedded_broker.Transport, "RESCAN_SECONDS", 600.0)
    got = []
    with connection("embedded", tmp_path) as conn:
        consumer = Consumer(conn.channel(), queues=[QUEUE], accept=["json"])
        consumer.register_callback(lambda body, message: (got.append(body), message.ack()))
        with consumer:
            waiting = threading.Thread(target=conn.drain_events, kwargs={"timeout": 600})
            waiting.start()
            wait_until(lambda: conn.transport.watch is not None, 10, "the consumer to wait")
            publish(tmp_path, {"n": 3})  # another connection, as another process would
            waiting.join(10)
            assert not waiting.is_alive(), "the arriving message did not wake the consumer"
    assert got == [{"n": 3}]


def test_closing_a_connection_closes_its_folder_watch(tmp_path):
    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_descriptors()
    for _ in range(200):  # /ready opens a connection per check: a leak would exhaust inotify
        with connection("embedded", tmp_path) as conn:
            with pytest.raises(TimeoutError):
                conn.drain_events(timeout=0.001)
            assert conn.transport.watch is not None
    assert open_descriptors() <= before + 2
