"""TLS toward every server the ingestor talks to, like HA's ``ssl_ca_cert``: a CA of the test's
own (trustme) signs a server certificate for 127.0.0.1 and a client certificate, and real TLS
endpoints on loopback use them: InfluxDB 1.x with https-enabled, VictoriaMetrics (API v2) with
-tls, a socat TLS proxy that demands a client certificate, the simulator serving wss, Mosquitto
with a TLS listener that requires a client certificate. Each client connects with the right files,
and fails with a categorised log line (or WriteError) without them."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import paho.mqtt.client as mqtt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured
from paho.mqtt.enums import CallbackAPIVersion
from structlog.testing import capture_logs

from hasim.server import HomeAssistantSimulator
from hasim.thread import SimulatorThread
from ingestor_project.mqtt_broker import MqttBroker
from ingestor_project.tls import PemFile, TlsFiles, client_context, env_pem
from listeners.backoff import Backoff
from listeners.batching import Batcher
from listeners.homeassistant.client import HomeAssistantListener
from listeners.mqtt.client import make_client
from listeners.mqtt.listener import MqttListener
from listeners.mqtt.subscriptions import parse_subscriptions
from tasks.errors import AuthWriteError
from tasks.influx import V1Writer, V2Writer, writer_from_settings
from tests.helpers import ROOT, TEST_INFLUX_URL, migrate, service_env, wait_until
from tests.listeners.mqtt.factories import mqtt_config
from tests.services import PrivateInfluxDB, PrivateMosquitto, free_port, port_open

TOKEN = "tls-test-token-0123456789"
TLS_VARIABLES = [
    f"{source}_{kind}_FILE" for source in ("HA", "INFLUX", "MQTT") for kind in ("CA", "CERT", "KEY")
]


class Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate: PEM files in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        client = self.ca.issue_cert("ingestor.client.test")
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.server_cert = self._write("server.pem", server.cert_chain_pems[0].bytes())
        self.server_key = self._write("server.key", server.private_key_pem.bytes())
        self.client_cert = self._write("client.pem", client.cert_chain_pems[0].bytes())
        self.client_key = self._write("client.key", client.private_key_pem.bytes())

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        path.chmod(0o644)  # Mosquitto reads them as its own user
        return path

    def files(self, prefix: str, *, ca: bool = True, cert: bool = True) -> TlsFiles:
        """What settings.{prefix}_TLS holds with these variables set."""
        pem = lambda path, kind: PemFile(str(path), f"{prefix}_{kind}_FILE")  # noqa: E731
        return TlsFiles(
            pem(self.ca_file, "CA") if ca else None,
            pem(self.client_cert, "CERT") if cert else None,
            pem(self.client_key, "KEY") if cert else None,
        )

    def env(self, prefix: str, *, cert: bool = True) -> dict[str, str]:
        env = {f"{prefix}_CA_FILE": str(self.ca_file)}
        if cert:
            env |= {f"{prefix}_CERT_FILE": str(self.client_cert)}
            env |= {f"{prefix}_KEY_FILE": str(self.client_key)}
        return env

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context


@pytest.fixture
def pki() -> Pki:
    # In /tmp and world-readable: Mosquitto drops to its own user and cannot enter pytest's
    # private tmp directories.
    folder = Path(tempfile.mkdtemp(prefix="ingestor-test-pki-"))
    folder.chmod(0o755)
    yield Pki(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def other_ca(tmp_path) -> Path:
    """A CA that signed none of the test's certificates."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


# --- settings: read once, checked at start-up --------------------------------------------------
@pytest.mark.parametrize("variable", TLS_VARIABLES)
def test_an_unreadable_tls_file_is_refused_naming_the_variable(variable, tmp_path, monkeypatch):
    monkeypatch.setenv(variable, str(tmp_path / "missing.pem"))
    with pytest.raises(ImproperlyConfigured, match=f"^{variable}=.*cannot be read"):
        env_pem(variable)


def test_a_process_with_an_unreadable_ca_file_stops_naming_the_variable(tmp_path):
    env = service_env(
        DATA_DIR=str(tmp_path),
        HA_URL="https://127.0.0.1:9",
        HA_TOKEN=TOKEN,
        HA_CA_FILE=str(tmp_path / "missing-ca.pem"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "listen_homeassistant"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HA_CA_FILE=" in result.stderr and "cannot be read" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_a_key_without_its_certificate_is_refused(pki):
    with pytest.raises(
        ImproperlyConfigured, match="INFLUX_KEY_FILE is set without INFLUX_CERT_FILE"
    ):
        TlsFiles(None, None, PemFile(str(pki.client_key), "INFLUX_KEY_FILE"))


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    with pytest.raises(ImproperlyConfigured, match="^HA_CA_FILE=.*not PEM CA certificates"):
        TlsFiles(PemFile(str(path), "HA_CA_FILE"))


def test_a_key_of_another_certificate_is_refused(pki):
    cert = PemFile(str(pki.client_cert), "MQTT_CERT_FILE")
    with pytest.raises(ImproperlyConfigured, match="MQTT_CERT_FILE=.* and MQTT_KEY_FILE="):
        TlsFiles(None, cert, PemFile(str(pki.server_key), "MQTT_KEY_FILE"))


def test_an_encrypted_key_is_refused_without_prompting(pki, tmp_path):
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret-passphrase"),
        )
    )
    cert = PemFile(str(pki.client_cert), "HA_CERT_FILE")
    with pytest.raises(ImproperlyConfigured, match="encrypted"):
        TlsFiles(None, cert, PemFile(str(encrypted), "HA_KEY_FILE"))


# --- InfluxDB ---------------------------------------------------------------------------------
@pytest.fixture
def https_influx(pki, tmp_path):
    """A private InfluxDB 1.x with https-enabled and the test's server certificate."""
    server = PrivateInfluxDB(tmp_path / "influxdb", tls=(pki.server_cert, pki.server_key))
    server.start()
    yield server
    server.stop()


def influx_query(writer: V1Writer, q: str) -> dict:
    query = urlencode({"q": q, "db": writer.database, "epoch": "ns"})
    response = writer.request("POST", f"{writer.url}/query?{query}", None, writer.headers)
    assert response.status == 200, response.data
    return json.loads(response.data)


def test_the_v1_writer_writes_over_https_verifying_with_the_ca_file(https_influx, pki):
    settings = SimpleNamespace(
        INFLUX_API_VERSION="1",
        INFLUX_URL=https_influx.url,
        INFLUX_DATABASE="tls_home",
        INFLUX_USERNAME=None,
        INFLUX_PASSWORD=None,
        INFLUX_TIMEOUT=5.0,
        INFLUX_GZIP=True,
        INFLUX_VERIFY_SSL=True,
        INFLUX_TLS=pki.files("INFLUX", cert=False),
    )
    writer = writer_from_settings(settings)
    wait_until(writer.ping, 30, "InfluxDB to answer /ping over https")
    influx_query(writer, 'CREATE DATABASE "tls_home"')
    writer.write(["temperature,entity_id=kitchen value=21.5 1700000000000000000"])
    result = influx_query(writer, "SELECT value FROM temperature")
    assert result["results"][0]["series"][0]["values"] == [[1700000000000000000, 21.5]]
    writer.close()


@pytest.mark.parametrize("trust", ["system store", "another CA"])
def test_the_v1_writer_refuses_a_server_its_ca_did_not_sign(https_influx, pki, other_ca, trust):
    files = TlsFiles(PemFile(str(other_ca), "INFLUX_CA_FILE")) if trust == "another CA" else None
    writer = V1Writer(https_influx.url, "tls_home", tls=files, timeout=5)
    wait_until(lambda: port_open(https_influx.port), 30, "InfluxDB's https port")
    with pytest.raises(AuthWriteError, match="CERTIFICATE_VERIFY_FAILED") as failure:
        writer.write(["m value=1 1"])
    assert failure.value.category == "auth"  # an operator must act; retried slowly meanwhile


@pytest.fixture
def https_victoria_metrics(pki, tmp_path):
    """VictoriaMetrics (a real server speaking /api/v2/write) serving https."""
    binary = shutil.which("victoria-metrics")
    assert binary, "victoria-metrics is not installed: `make test` installs Debian's package"
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-tls",
            f"-tlsCertFile={pki.server_cert}",
            f"-tlsKeyFile={pki.server_key}",
            "-retentionPeriod=100y",  # the test's points are from 2023
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), 30, "victoria-metrics to listen")
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


def test_the_v2_writer_writes_over_https_with_the_ca_file_and_refuses_without(
    https_victoria_metrics, pki
):
    url = https_victoria_metrics
    writer = V2Writer(url, "token", "home", "ha", timeout=5, tls=pki.files("INFLUX", cert=False))
    writer.write(["power,entity_id=meter value=230 1700000000000000000"])
    context = client_context(pki.files("INFLUX", cert=False))

    def exported() -> str:
        from urllib.request import urlopen

        query = urlencode({"match[]": '{__name__=~"power.*"}'})
        with urlopen(f"{url}/api/v1/export?{query}", context=context, timeout=5) as response:
            return response.read().decode()

    assert "230" in wait_until(exported, 30, "the point to be queryable")
    writer.close()
    refusing = V2Writer(url, "token", "home", "ha", timeout=5)
    with pytest.raises(AuthWriteError, match="CERTIFICATE_VERIFY_FAILED"):
        refusing.write(["power,entity_id=meter value=231 1700000001000000000"])
    refusing.close()


@pytest.fixture
def client_cert_proxy(pki, tmp_path):
    """A TLS proxy (socat) in front of the test InfluxDB that accepts only clients with a
    certificate the test's CA signed: InfluxDB behind nginx/Traefik with client certificates."""
    socat = shutil.which("socat")
    assert socat, "socat is not installed (Debian's socat)"
    port, target = free_port(), TEST_INFLUX_URL.removeprefix("http://")
    listen = (
        f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={pki.server_cert},"
        f"key={pki.server_key},cafile={pki.ca_file},verify=1"
    )
    log = open(tmp_path / "socat.log", "ab")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen([socat, listen, f"TCP:{target}"], stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open(port), 15, "socat to listen")
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_the_writer_presents_its_client_certificate(client_cert_proxy, influx, pki):
    writer = V1Writer(client_cert_proxy, influx.database, tls=pki.files("INFLUX"), timeout=5)
    writer.write(["humidity,entity_id=bath value=55 1700000000000000000"])
    assert [p["value"] for p in influx.points("humidity")] == [55]
    writer.close()
    without = V1Writer(client_cert_proxy, influx.database, tls=pki.files("INFLUX", cert=False))
    with pytest.raises(AuthWriteError, match="TLS failed"):
        without.write(["humidity,entity_id=bath value=56 1700000001000000000"])
    without.close()
    assert [p["value"] for p in influx.points("humidity")] == [55]


# --- Home Assistant ---------------------------------------------------------------------------
def ha_listener(url: str, context: ssl.SSLContext | None) -> HomeAssistantListener:
    batcher = Batcher(lambda batch: None, size=10_000, interval=60, max_pending=10)
    backoff = Backoff(initial=0.01, maximum=0.02)
    return HomeAssistantListener(url, TOKEN, batcher, ssl_context=context, backoff=backoff)


def test_the_ha_listener_streams_over_wss_with_the_ca_and_its_client_certificate(pki):
    simulator = HomeAssistantSimulator(
        token=TOKEN,
        entities=10,
        rate=500,
        events=100,
        ssl_context=pki.server_context(require_client_cert=True),
    )

    async def scenario() -> HomeAssistantListener:
        await simulator.start()
        listener = ha_listener(simulator.url, client_context(pki.files("HA")))
        task = asyncio.create_task(listener.session())
        try:
            await simulator.wait_for(lambda: simulator.done, 20, "every event written out")
            deadline = asyncio.get_running_loop().time() + 20
            while listener.stats["events"] < 100:
                assert asyncio.get_running_loop().time() < deadline, listener.stats
                await asyncio.sleep(0.05)
        finally:
            listener.request_stop()
            await asyncio.wait_for(task, 10)
            await simulator.stop()
        return listener

    assert simulator.url.startswith("wss://")
    listener = asyncio.run(scenario())
    assert len(listener.batcher.buffer) == 100


@pytest.mark.parametrize("missing", ["the CA file", "the client certificate"])
def test_the_ha_listener_without_its_tls_files_logs_a_tls_error(pki, missing):
    simulator = HomeAssistantSimulator(
        token=TOKEN, entities=5, rate=10, ssl_context=pki.server_context(require_client_cert=True)
    )
    files = pki.files("HA", ca=missing != "the CA file", cert=missing != "the client certificate")

    async def scenario() -> float:
        await simulator.start()
        try:
            return await ha_listener(simulator.url, client_context(files))._one_connection()
        finally:
            await simulator.stop()

    with capture_logs() as logs:
        asyncio.run(scenario())
    lost = [e for e in logs if e["event"] == "ha_connection_lost"]
    assert lost and lost[0]["category"] == "tls" and lost[0]["log_level"] == "error", logs
    assert simulator.connection_count == 0
    assert TOKEN not in json.dumps(logs, default=str)


# --- MQTT -------------------------------------------------------------------------------------
@pytest.fixture
def tls_mosquitto(pki):
    """A private Mosquitto whose only listener is TLS and requires a client certificate."""
    for path in pki.folder.iterdir():
        shutil.chown(path, "mosquitto", "mosquitto")
    broker = PrivateMosquitto(
        f"cafile {pki.ca_file}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        "require_certificate true\n"
    )
    broker.start()
    yield broker
    broker.remove()


def mqtt_listener(port: int, files: TlsFiles, prefix: str) -> MqttListener:
    config = mqtt_config(
        broker=MqttBroker("127.0.0.1", port, tls=True),
        tls=files,
        client_id=f"{prefix}-listener",
        subscriptions=parse_subscriptions([f"{prefix}/+=json"]),
    )
    batcher = Batcher(lambda batch: None, size=10_000, interval=60, max_pending=10)
    return MqttListener(make_client(config), batcher, config, backoff=Backoff(0.01, 0.02))


def publish_over_tls(port: int, pki: Pki, topic: str, payload: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.tls_set_context(client_context(pki.files("TEST")))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_mqtt_listener_reads_over_tls_with_the_ca_and_its_client_certificate(
    tls_mosquitto, pki
):
    prefix = f"tls-{uuid.uuid4().hex[:8]}"
    listener = mqtt_listener(tls_mosquitto.port, pki.files("MQTT"), prefix)
    step_until(listener, lambda: listener.connected, "a CONNACK over TLS")
    step_until(listener, lambda: not listener._subscribing, "the SUBACK")
    publish_over_tls(tls_mosquitto.port, pki, f"{prefix}/sensor", '{"state": "on"}')
    step_until(listener, lambda: listener.stats["events"] >= 1, "the message")
    assert listener.stats["events"] == 1
    listener.close(0.5)  # nothing confirms this test's batches: no need to wait for that


def step_until(listener: MqttListener, condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {listener.stats}"
        listener.step()


@pytest.mark.parametrize("missing", ["the CA file", "the client certificate"])
def test_the_mqtt_listener_without_its_tls_files_logs_a_tls_error(tls_mosquitto, pki, missing):
    files = pki.files("MQTT", ca=missing != "the CA file", cert=missing != "the client certificate")
    listener = mqtt_listener(tls_mosquitto.port, files, f"tls-{uuid.uuid4().hex[:8]}")
    with capture_logs() as logs:
        lost = lambda: any(e["event"] == "mqtt_connection_lost" for e in logs)  # noqa: E731
        step_until(listener, lost, "a failed connection")
    lost = next(e for e in logs if e["event"] == "mqtt_connection_lost")
    assert lost["category"] == "tls" and lost["log_level"] == "error", lost
    assert not listener.connected
    listener.close(1)


# --- end to end: the processes as deployed, configured by the environment ---------------------
def test_ha_over_wss_to_influxdb_over_https_end_to_end(
    pki, https_influx, processes, ingest_queue, postgres_url, tmp_path
):
    server = pki.server_context(require_client_cert=True)
    with SimulatorThread(token=TOKEN, entities=10, rate=200, events=300, ssl_context=server) as sim:
        env = service_env(
            DATABASE_URL=postgres_url,
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
            DATA_DIR=str(tmp_path),
            HA_URL=sim.url,
            HA_TOKEN=TOKEN,
            HA_INSTANCE="tls-home",
            INFLUX_URL=https_influx.url,
            INFLUX_DATABASE="tls_e2e",
            INGEST_BATCH_SIZE="100",
            INGEST_FLUSH_INTERVAL="0.2",
            **pki.env("HA"),
            **pki.env("INFLUX", cert=False),
        )
        migrate(env)
        writer = V1Writer(https_influx.url, "tls_e2e", tls=pki.files("INFLUX", cert=False))
        wait_until(writer.ping, 30, "InfluxDB over https")
        influx_query(writer, 'CREATE DATABASE "tls_e2e"')
        processes.worker("worker", env)
        processes.manage("listener", ["listen_homeassistant"], env)
        sim.wait_until_done(60)

        def stored() -> int:
            series = influx_query(writer, "SELECT * FROM /.*/")["results"][0].get("series", [])
            return sum(len(s["values"]) for s in series)

        wait_until(lambda: stored() >= 300, 60, "300 state changes in InfluxDB over https")
    assert "category='tls'" not in processes.log("listener")
    writer.close()


def test_mqtt_over_tls_with_a_client_certificate_end_to_end(
    pki, tls_mosquitto, influx, processes, ingest_queue, postgres_url, tmp_path
):
    prefix = f"tls-{uuid.uuid4().hex[:8]}"
    env = service_env(
        DATABASE_URL=postgres_url,
        CELERY_INGEST_QUEUE=ingest_queue,
        CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
        DATA_DIR=str(tmp_path),
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=influx.database,
        INGEST_FLUSH_INTERVAL="0.2",
        READY_LISTENERS="mqtt",
        MQTT_URL=f"mqtts://127.0.0.1:{tls_mosquitto.port}",
        MQTT_CLIENT_ID=f"{prefix}-listener",
        MQTT_SESSION_EXPIRY="60",
        MQTT_SUBSCRIPTIONS=f"{prefix}/+=json",
        **pki.env("MQTT"),
    )
    migrate(env)
    processes.worker("worker", env)
    processes.manage("listener", ["listen_mqtt"], env)
    wait_until(lambda: "mqtt_subscribed" in processes.log("listener"), 30, "a TLS subscription")
    publish_over_tls(tls_mosquitto.port, pki, f"{prefix}/thermometer", '{"temperature": 21.5}')
    points = wait_until(influx.points, 60, "the reading in InfluxDB")
    assert points[0]["entity_id"] == "thermometer" and points[0]["temperature"] == 21.5, points


def test_a_self_signed_certificate_is_its_own_ca_file(tmp_path):
    # What HA users make for HA (openssl req -x509), and what the README tells them to set.
    cert, key = tmp_path / "ha.pem", tmp_path / "ha.key"
    san = "subjectAltName=IP:127.0.0.1"
    request = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ha"
    subprocess.run(
        ["openssl", *request.split(), "-keyout", str(key), "-out", str(cert), "-addext", san],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    simulator = HomeAssistantSimulator(token=TOKEN, entities=3, rate=10, ssl_context=server)
    files = TlsFiles(PemFile(str(cert), "HA_CA_FILE"))

    async def scenario() -> int:
        await simulator.start()
        listener = ha_listener(simulator.url, client_context(files))
        task = asyncio.create_task(listener.session())
        try:
            await simulator.wait_for(lambda: simulator.subscriber_count, 10, "a subscription")
        finally:
            listener.request_stop()
            await asyncio.wait_for(task, 10)
            await simulator.stop()
        return simulator.connection_count

    assert asyncio.run(scenario()) == 1
