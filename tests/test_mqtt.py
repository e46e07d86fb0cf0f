"""The MQTT listener on real services: ``listen_mqtt`` refusing bad settings, the ingest client
against paho on the machine's Mosquitto, and whole runs (the machine's Mosquitto, a private
Mosquitto for the restart, RabbitMQ, a Celery worker, PostgreSQL and InfluxDB). InfluxDB is
checked by query, never through our own counters. The loop's steps, the formats and the
acknowledgements are tested directly in tests/listeners/mqtt/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from itertools import chain, zip_longest
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from listeners.mqtt.client import IngestClient
from tests.helpers import ROOT, TEST_INFLUX_URL, migrate, service_env, wait_until


# --- start-up -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MQTT_MAX_UNACKED", "70000"),
        ("MQTT_SUBSCRIPTIONS", "a/#=xml"),
        ("MQTT_RETAINED", "sometimes"),
        ("MQTT_URL", "http://broker"),
    ],
)
def test_a_bad_setting_stops_the_command_naming_the_variable(variable, value, tmp_path):
    # Settings are validated when the process starts: a fresh process with the bad value.
    result = run_command_once({variable: value, "DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert variable in result.stderr


def test_an_unreadable_tls_file_stops_the_command(tmp_path):
    result = run_command_once(
        {
            "MQTT_URL": "mqtts://broker.invalid",
            "DATA_DIR": str(tmp_path),
            "MQTT_CA_FILE": str(tmp_path / "missing-ca.pem"),
        }
    )
    assert result.returncode != 0
    assert "MQTT_CA_FILE=" in result.stderr and "cannot be read" in result.stderr


def run_command_once(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "listen_mqtt"],
        cwd=ROOT,
        text=True,
        env=service_env(**env),
        capture_output=True,
        timeout=60,
    )


# --- real services ----------------------------------------------------------------------------
BASE_MS = 1_767_323_045_000


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="microseconds")


class Publisher:
    """A QoS-1 publisher on its own paho thread; it reconnects by itself after a broker
    restart and sends what it queued meanwhile."""

    def __init__(self, port: int = 1883) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_publish = self._acknowledged
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent: list[mqtt.MQTTMessageInfo] = []
        # PUBACKs by packet id; a message published while the broker was away has rc
        # "not connected" but stays queued in paho and is sent (and acknowledged) later.
        self.acknowledged: set[int] = set()

    def _acknowledged(self, client, userdata, mid, reason_code, properties) -> None:
        self.acknowledged.add(mid)

    def send(self, topic: str, payload: str | bytes) -> None:
        self.sent.append(self.client.publish(topic, payload, qos=1))

    def stream(self, messages: list[tuple[str, str | bytes]], rate: float) -> threading.Thread:
        def run() -> None:
            started = time.monotonic()
            for n, (topic, payload) in enumerate(messages):
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
                self.send(topic, payload)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def wait_all_acknowledged(self, timeout: float) -> None:
        wait_until(
            lambda: all(info.mid in self.acknowledged for info in self.sent),
            timeout,
            "the broker to acknowledge every published message",
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Subscriber:
    """A client of ``kind`` reading one topic on the machine's Mosquitto (MQTT 5), recording the
    messages it gets, acknowledging by hand."""

    def __init__(self, kind: type[mqtt.Client], topic: str, qos: int, client_id: str) -> None:
        self.client = kind(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        self.messages: list[mqtt.MQTTMessage] = []
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 60
        properties.ReceiveMaximum = 1000  # Mosquitto's default would stop at 20 unacknowledged
        self.client.connect("127.0.0.1", 1883, clean_start=False, properties=properties)
        self.client.subscribe(topic, qos)
        self.turn(lambda: self.client.is_connected(), "the subscription")

    def turn(self, predicate, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            assert self.client.loop(0.05) == MQTTErrorCode.MQTT_ERR_SUCCESS

    def close(self, end_session: bool = False) -> None:
        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0 if end_session else 60
        self.client.disconnect(properties=properties)


def seen(message: mqtt.MQTTMessage) -> tuple:
    return (
        message.topic,
        message.payload,
        message.qos,
        message.retain,
        bool(message.mid),
        message.properties.json(),
    )


def test_the_ingest_client_reads_every_kind_of_publish_as_paho_does():
    topic = f"test-{uuid.uuid4().hex[:10]}/ingest-client"
    expiring = Properties(PacketTypes.PUBLISH)
    expiring.MessageExpiryInterval = 3600
    described = Properties(PacketTypes.PUBLISH)
    described.ContentType = "application/json"
    described.UserProperty = [("a", "1"), ("b", "2")]
    sends = [
        (b'{"plain": 1}', 1, None),
        (b"", 1, None),
        (b"x" * 70_000, 1, None),  # a four-byte remaining length
        (b"qos 0", 0, None),
        (b"qos 2, delivered at 2", 2, None),
        ("text ✓".encode(), 1, described),
        (b"expires", 1, expiring),
    ]
    subscribers = [
        Subscriber(kind, topic, 2, f"{topic.replace('/', '-')}-{kind.__name__}")
        for kind in (mqtt.Client, IngestClient)
    ]
    publisher = Publisher()
    try:
        for payload, qos, properties in sends:
            publisher.sent.append(publisher.client.publish(topic, payload, qos, False, properties))
        publisher.wait_all_acknowledged(10)
        for subscriber in subscribers:
            subscriber.turn(lambda s=subscriber: len(s.messages) == len(sends), "every message")
    finally:
        publisher.close()
        for subscriber in subscribers:
            subscriber.close(end_session=True)
    by_paho, by_ours = ([seen(m) for m in s.messages] for s in subscribers)
    assert by_ours == by_paho  # QoS 2 comes last: on_message runs once PUBREL arrives
    ours = {message[1]: message for message in by_ours}
    assert sorted(ours) == sorted(payload for payload, _, _ in sends)
    assert ours["text ✓".encode()][5] == {
        "ContentType": "application/json",
        "UserProperty": [("a", "1"), ("b", "2")],
    }
    assert ours[b"expires"][5]["MessageExpiryInterval"] > 3500


class PrivateMosquitto:
    """A Mosquitto of the test's own (port, persistent data directory), stopped by pid."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # Mosquitto started as root drops to the mosquitto user, which cannot enter pytest's
        # private (0700) tmp directories: the data directory lives in /tmp, owned by that user.
        self.data = Path(tempfile.mkdtemp(prefix="ingestor-test-mosquitto-"))
        self.data.chmod(0o755)
        shutil.chown(self.data, "mosquitto", "mosquitto")
        # max_queued_messages sized as a deployment must size it: an offline session holds at
        # most that many messages (in flight ones included), and the default of 1000 is less
        # than the backlog publishers send at once when the broker comes back; beyond it
        # Mosquitto drops ("Outgoing messages are being dropped") and no client can help.
        (self.data / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\npersistence true\n"
            f"persistence_location {self.data}/\nallow_anonymous true\n"
            "max_queued_messages 100000\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.data / "mosquitto.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.data / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._accepting, 15, f"private Mosquitto on {self.port}")

    def _accepting(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its sessions and queued messages on the way out."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def private_mosquitto(tmp_path):
    broker = PrivateMosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        log = broker.data / "mosquitto.log"
        if log.exists():
            shutil.copy(log, tmp_path / "mosquitto.log")  # for a post-mortem
        broker.remove()


@pytest.fixture
def mqtt_env(influx, ingest_queue, postgres_url, tmp_path):
    """The environment of a worker and a listener writing into this test's InfluxDB database;
    topics under a prefix of the test's own on the shared Mosquitto."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"

    def make(subscriptions: str, port: int = 1883, **extra: str) -> tuple[dict[str, str], str]:
        env = service_env(
            DATABASE_URL=postgres_url,
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=f"{ingest_queue}-maintenance",
            INFLUX_URL=TEST_INFLUX_URL,
            INFLUX_DATABASE=influx.database,
            DATA_DIR=str(tmp_path),
            INGEST_BATCH_SIZE="500",
            INGEST_FLUSH_INTERVAL="0.2",
            LOG_FORMAT="json",
            MQTT_URL=f"mqtt://127.0.0.1:{port}",
            MQTT_CLIENT_ID=f"{prefix}-listener",
            # The session (and what it queued) outlives a test by a minute, not by a week.
            MQTT_SESSION_EXPIRY="60",
            MQTT_SUBSCRIPTIONS=subscriptions.replace("{p}", prefix),
            MQTT_STATESTREAM_SETTLE="2.0",
            **extra,
        )
        migrate(env)
        return env, prefix

    return make


def log_events(processes, name: str, event: str) -> list[dict]:
    found = []
    for line in processes.log(name).splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def start_listener(processes, name: str, env: dict[str, str]):
    listener = processes.manage(name, ["listen_mqtt"], env)
    wait_until(
        lambda: log_events(processes, name, "mqtt_subscribed") or listener.poll() is not None,
        30,
        f"{name} to subscribe",
    )
    assert listener.poll() is None, processes.log(name)
    return listener


def stop_listener(processes, listener, name: str) -> dict:
    assert processes.stop(listener, signal.SIGTERM) == 0, processes.log(name)
    [stopped] = log_events(processes, name, "listener_stopped")
    return stopped


def json_points(messages: int, prefix: str) -> list[tuple[str, str]]:
    """Device reports carrying their own time (Zigbee2MQTT's last_seen, epoch ms)."""
    return [
        (f"{prefix}/z/dev{n % 20}", json.dumps({"n": n, "last_seen": BASE_MS + n}))
        for n in range(messages)
    ]


def assert_json_points_once(influx, messages: int, timeout: float) -> None:
    try:
        wait_until(lambda: influx.count() >= messages, timeout, f"{messages} points in InfluxDB")
    except AssertionError:
        present = {int(row["n"]) for row in influx.points()}
        missing = sorted(set(range(messages)) - present)
        raise AssertionError(f"{len(missing)} messages missing: {missing[:50]}") from None
    time.sleep(0.5)  # anything still in flight would show up as an extra point
    stored = sorted((row["time"], row["n"], row["measurement"]) for row in influx.points())
    expected = sorted(
        ((BASE_MS + n) * 1_000_000, float(n), f"mqtt.dev{n % 20}") for n in range(messages)
    )
    assert stored == expected


def four_formats(prefix: str):
    """5,000 messages: (topic, payload) in publish order, and what InfluxDB should hold."""
    messages: dict[str, list] = {"ss": [], "ev": [], "z": [], "v": []}
    expected: dict[str, set] = {"ss": set(), "changed": set(), "service": set(), "z": set()}
    for n in range(300):  # statestream: 4 messages per change, HA's order
        base, ms = f"{prefix}/ss/sensor/p{n % 30}/", BASE_MS + n
        messages["ss"] += [
            (base + "state", str(n)),
            (base + "last_updated", iso_ms(ms)),
            (base + "unit_of_measurement", '"W"'),
            (base + "friendly_name", json.dumps(f"Power {n % 30}")),
        ]
        expected["ss"].add((f"p{n % 30}", ms * 1_000_000, float(n), f"Power {n % 30}"))
    for n in range(650):  # eventstream: state changes and service calls
        state = "on" if n % 2 else "off"
        new_state = {"entity_id": f"light.e{n % 25}", "state": state, "attributes": {}}
        new_state["last_updated"] = iso_ms(BASE_MS + n)
        data = {"entity_id": f"light.e{n % 25}", "new_state": new_state}
        messages["ev"].append(
            (f"{prefix}/ev", json.dumps({"event_type": "state_changed", "event_data": data}))
        )
        expected["changed"].add((f"light.e{n % 25}", (BASE_MS + n) * 1_000_000, state))
        call = {"domain": "light", "service": "turn_on", "service_data": {"n": n}}
        fired = iso_ms(BASE_MS + 10_000 + n)
        body = {"event_type": "call_service", "event_data": call, "time_fired": fired}
        messages["ev"].append((f"{prefix}/ev", json.dumps(body)))
        expected["service"].add(((BASE_MS + 10_000 + n) * 1_000_000, n))
    for n in range(1250):  # json (Zigbee2MQTT) and value
        report = {"temperature": 20 + n / 100, "color": {"x": 0.25}, "last_seen": BASE_MS + n}
        messages["z"].append((f"{prefix}/z/d{n % 25}", json.dumps(report)))
        expected["z"].add((f"mqtt.d{n % 25}", (BASE_MS + n) * 1_000_000, 20 + n / 100, 0.25))
        messages["v"].append((f"{prefix}/v/room{n % 25}/temp", str(n)))
    expected["v"] = sorted((f"mqtt.room{n % 25}_temp", float(n)) for n in range(1250))
    # Interleaved, as several publishers sharing a broker would be.
    ordered = [m for m in chain.from_iterable(zip_longest(*messages.values())) if m is not None]
    return ordered, expected


def stored_by_format(influx) -> dict:
    found: dict = {"ss": set(), "changed": set(), "service": set(), "z": set(), "v": []}
    for row in influx.points():
        name = row["measurement"]
        if name == "W":
            point = (row["entity_id"], row["time"], row["value"], row["friendly_name_str"])
            found["ss"].add(point)
        elif name.startswith("light."):
            found["changed"].add((name, row["time"], row["state"]))
        elif name == "ha_events":
            found["service"].add((row["time"], json.loads(row["data"])["service_data"]["n"]))
        elif name.startswith("mqtt.d"):
            found["z"].add((name, row["time"], row["temperature"], row["color_x"]))
            assert row["state"] == "reported"
        else:
            found["v"].append((name, row["value"]))
    found["v"].sort()
    return found


def test_5000_messages_in_four_formats_reach_influxdb_as_the_right_points(
    influx, processes, mqtt_env
):
    env, prefix = mqtt_env("{p}/ss/#=statestream,{p}/ev=eventstream,{p}/z/+=json,{p}/v/#=value")
    processes.worker("worker", env)
    listener = start_listener(processes, "listener", env)
    messages, expected = four_formats(prefix)
    assert len(messages) == 5000

    publisher = Publisher()
    for topic, payload in messages:
        publisher.send(topic, payload)
    publisher.wait_all_acknowledged(30)
    publisher.close()

    points = 300 + 1300 + 1250 + 1250
    wait_until(lambda: influx.count() >= points, 60, f"{points} points in InfluxDB")
    stored = stored_by_format(influx)
    for name, wanted in expected.items():
        missing = Counter(wanted) - Counter(stored[name])
        extra = Counter(stored[name]) - Counter(wanted)
        assert (sorted(missing)[:5], sorted(extra)[:5]) == ([], []), name
    assert influx.count() == points
    stopped = stop_listener(processes, listener, "listener")
    assert (stopped["events"], stopped["unparseable"], stopped["acked"]) == (points, 0, 5000)


def test_a_listener_killed_mid_stream_loses_and_duplicates_nothing(influx, processes, mqtt_env):
    env, prefix = mqtt_env("{p}/z/+=json")
    processes.worker("worker", env)
    first = start_listener(processes, "listener", env)
    publisher = Publisher()
    # The shared Mosquitto keeps its default max_queued_messages (1000) for the offline
    # session, in-flight messages included: ~2 s of restart at 300/s stays well below it.
    stream = publisher.stream(json_points(3000, prefix), rate=300)

    wait_until(lambda: influx.count() >= 600, 30, "points before the kill")
    processes.stop(first, signal.SIGKILL)
    second = start_listener(processes, "listener2", env)
    stream.join(30)
    publisher.wait_all_acknowledged(30)
    publisher.close()

    assert_json_points_once(influx, 3000, timeout=60)
    [resumed] = log_events(processes, "listener2", "mqtt_connected")
    assert resumed["session_present"] is True
    stopped = stop_listener(processes, second, "listener2")
    assert stopped["redelivered"] > 0, "the kill should have left messages unacknowledged"


def test_a_mosquitto_restart_mid_stream_loses_nothing_published(
    influx, processes, mqtt_env, private_mosquitto
):
    env, prefix = mqtt_env("{p}/z/+=json", port=private_mosquitto.port)
    processes.worker("worker", env)
    listener = start_listener(processes, "listener", env)
    publisher = Publisher(private_mosquitto.port)
    stream = publisher.stream(json_points(2000, prefix), rate=400)

    wait_until(lambda: influx.count() >= 400, 30, "points before the restart")
    private_mosquitto.stop()
    time.sleep(1.0)
    private_mosquitto.start()
    wait_until(
        lambda: len(log_events(processes, "listener", "mqtt_subscribed")) >= 2,
        30,
        "the listener to reconnect and subscribe again",
    )
    stream.join(30)
    publisher.wait_all_acknowledged(30)
    publisher.close()

    assert_json_points_once(influx, 2000, timeout=60)
    assert len(log_events(processes, "listener", "mqtt_connected")) == 2
    broker_log = (private_mosquitto.data / "mosquitto.log").read_text()
    assert "messages are being dropped" not in broker_log
    stop_listener(processes, listener, "listener")


def dead_letters(postgres_url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT source, category, entity_ids, payload, error FROM tasks_failedwrite"
        ).fetchall()


def test_poison_payloads_become_dead_letters_and_every_good_message_is_written(
    influx, processes, mqtt_env, postgres_url
):
    env, prefix = mqtt_env(
        "{p}/z/+=json,{p}/v/#=value,{p}/ev=eventstream,{p}/ss/#=statestream",
        MQTT_MAX_PAYLOAD_BYTES="2048",
    )
    processes.worker("worker", env)
    listener = start_listener(processes, "listener", env)
    poison = [
        (f"{prefix}/z/dev1", b"not json {"),
        (f"{prefix}/z/dev2", b"\xff\xfe\x00 binary"),
        (f"{prefix}/z/dev3", json.dumps({"pad": "x" * 3000}).encode()),
        (f"{prefix}/z/dev4", b"[1, 2, 3]"),
        (f"{prefix}/v/binary", b"\x80\x81\x82"),
        (f"{prefix}/v/object", b'{"a": 1}'),
        (f"{prefix}/ev", b'{"event_data": {}}'),
        (f"{prefix}/ss/sensor/bad/last_updated", b"not a time"),
    ] * 4
    good = json_points(300, prefix)
    publisher = Publisher()
    for n, item in enumerate(good):
        publisher.send(*item)
        if n % 9 == 0 and poison:
            publisher.send(*poison.pop())
    assert not poison
    publisher.wait_all_acknowledged(30)
    publisher.close()

    assert_json_points_once(influx, 300, timeout=60)
    letters = wait_until(
        lambda: (rows := dead_letters(postgres_url)) and len(rows) >= 32 and rows,
        30,
        "32 dead letters",
    )
    assert len(letters) == 32
    assert {(source, category) for source, category, *_ in letters} == {("mqtt", "unparseable")}
    assert all(topic.startswith(prefix) and error for _, _, topic, _, error in letters)
    assert sum("MQTT_MAX_PAYLOAD_BYTES" in error for *_, error in letters) == 4
    assert listener.poll() is None, "a poison payload must never stop the listener"
    stopped = stop_listener(processes, listener, "listener")
    assert stopped["unparseable"] == 32


def test_a_json_message_nested_1000_deep_is_a_dead_letter_and_never_wedges_the_listener(
    influx, processes, mqtt_env, postgres_url
):
    """2 KB of JSON holding a 1000-deep list decodes, but no encoder packs it into a batch. It
    must become a dead letter and be acknowledged, or the broker redelivers it after every
    restart and the listener wedges again."""
    env, prefix = mqtt_env("{p}/z/+=json")
    processes.worker("worker", env)
    listener = start_listener(processes, "listener", env)
    deep = ('{"x": ' + "[" * 1000 + "]" * 1000 + "}").encode()
    good = json_points(200, prefix)
    publisher = Publisher()
    for n, item in enumerate(good[:100]):
        publisher.send(*item)
        if n == 50:
            publisher.send(f"{prefix}/z/deep", deep)
    publisher.wait_all_acknowledged(30)
    assert_json_points_once(influx, 100, timeout=60)
    letters = wait_until(lambda: dead_letters(postgres_url), 30, "the dead letter")
    assert [(source, category) for source, category, *_ in letters] == [("mqtt", "unparseable")]
    assert letters[0][2].startswith("mqtt.deep 20")  # the entity and its time
    stop_listener(processes, listener, "listener")

    # Acknowledged once it was a dead letter: a new listener on the same session gets only
    # what is new, and the stream flows.
    listener = start_listener(processes, "listener-again", env)
    for item in good[100:]:
        publisher.send(*item)
    publisher.wait_all_acknowledged(30)
    publisher.close()
    assert_json_points_once(influx, 200, timeout=60)
    assert len(dead_letters(postgres_url)) == 1
    stopped = stop_listener(processes, listener, "listener-again")
    assert stopped["redelivered"] == 0
