"""Health, readiness, metrics and secret hygiene, against the real services."""

from __future__ import annotations

import json
import re
import signal
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingestor_project.metrics import exposition
from listeners.heartbeat import beat
from listeners.models import ListenerHeartbeat
from listeners.simulator import SimulatorThread
from tests.helpers import TEST_INFLUX_URL, migrate, service_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ready_settings(settings, influx):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    settings.READY_LISTENERS = ["homeassistant"]
    settings.READY_CHECK_WORKERS = False
    return settings


def test_health_is_fast_and_needs_nothing(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_is_200_with_every_check_and_its_duration(client, ready_settings):
    beat("homeassistant", True, {})
    response = client.get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {
        "database",
        "broker",
        "influxdb",
        "breaker",
        "listener_homeassistant",
    }
    assert all(c["status"] == "ok" and c["duration_ms"] >= 0 for c in body["checks"].values())


def test_ready_is_503_naming_a_stale_listener_and_a_missing_database(client, ready_settings):
    beat("homeassistant", True, {})
    ListenerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(minutes=5))
    ready_settings.INFLUX_DATABASE = "does_not_exist"
    response = client.get("/ready")
    body = response.json()
    assert response.status_code == 503
    assert "silent for" in body["checks"]["listener_homeassistant"]["error"]
    assert "auth: database 'does_not_exist' does not exist" in body["checks"]["influxdb"]["error"]


def test_ready_reports_an_open_breaker(client, ready_settings):
    from tasks.models import BreakerState

    beat("homeassistant", True, {})
    BreakerState.objects.create(name="influxdb", state="open", failures=5, opened_at=timezone.now())
    body = client.get("/ready").json()
    assert body["checks"]["breaker"] == {
        "status": "unavailable",
        "duration_ms": pytest.approx(body["checks"]["breaker"]["duration_ms"]),
        "error": "Unavailable: InfluxDB circuit breaker is open",
    }


def test_ready_finds_a_worker_answering(client, ready_settings, ingest_queue, processes, tmp_path):
    ready_settings.READY_CHECK_WORKERS = True
    beat("homeassistant", True, {})
    processes.worker(
        "worker",
        service_env(
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
            DATA_DIR=str(tmp_path),
        ),
    )
    wait_until(lambda: client.get("/ready").status_code == 200, 60, "a worker to answer")


def test_the_health_command_exits_0_when_ready_and_1_when_not(ready_settings, capsys):
    beat("homeassistant", True, {})
    with pytest.raises(SystemExit) as ready:
        call_command("health", "--only", "database,influxdb,listener_homeassistant")
    assert ready.value.code == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    ready_settings.INFLUX_URL = "http://127.0.0.1:9"
    with pytest.raises(SystemExit) as unready:
        call_command("health", "--only", "influxdb")
    assert unready.value.code == 1


def test_metrics_can_require_a_bearer_token(client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert response.status_code == 200
    assert b"ha_ingestor_breaker_state" in response.content


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_counters_of_a_known_stream_equal_what_influxdb_holds(
    influx, ingest_queue, postgres_url, processes, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    simulator = SimulatorThread(
        token="metrics-test-token-01234",
        entities=30,
        rate=1500,
        events=3000,
        other_events_ratio=0.1,
        seed=7,
    ).start()
    try:
        env = service_env(
            DATABASE_URL=postgres_url,
            CELERY_INGEST_QUEUE=ingest_queue,
            CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
            DATA_DIR=str(tmp_path),
            INFLUX_URL=TEST_INFLUX_URL,
            INFLUX_DATABASE=influx.database,
            HA_URL=simulator.url,
            HA_TOKEN="metrics-test-token-01234",
            HA_EVENT_TYPES="*",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            INGEST_FLUSH_INTERVAL="0.2",
        )
        migrate(env)
        processes.worker("worker", env)
        listener = processes.manage("listener", ["listen_homeassistant"], env)
        simulator.wait_until_done(60)
        wait_until(lambda: influx.count() >= 3000, 90, "3000 points")
        assert processes.stop(listener, signal.SIGTERM) == 0
    finally:
        simulator.stop()

    text = exposition(str(metrics_dir)).decode()
    stored = influx.points()
    state_points = [p for p in stored if p["measurement"] != "ha_events"]
    assert len(stored) == 3000
    wait_until(
        lambda: sample(exposition(str(metrics_dir)).decode(), "ha_ingestor_points_written_total")
        == 3000,
        30,
        "counters",
    )
    assert sample(text, "ha_ingestor_events_received_total", source="homeassistant") == 3000
    assert sample(text, "ha_ingestor_events_received_total", event_type="state_changed") == len(
        state_points
    )
    assert sample(text, "ha_ingestor_state_changes_total") == len(state_points)
    assert sample(text, "ha_ingestor_event_lag_seconds_count") == 3000
    after = exposition(str(metrics_dir)).decode()
    assert sample(after, "ha_ingestor_entities_seen") == 0, "the stopped listener was not marked"


def test_ready_checks_the_mqtt_broker_when_the_mqtt_listener_is_expected(client, ready_settings):
    ready_settings.READY_LISTENERS = ["homeassistant", "mqtt"]
    ready_settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    beat("homeassistant", True, {})
    beat("mqtt", True, {})
    assert client.get("/ready").json()["checks"]["mqtt_broker"]["status"] == "ok"
    ready_settings.MQTT_URL = "mqtt://127.0.0.1:9"
    body = client.get("/ready").json()
    assert (
        body["checks"]["mqtt_broker"]["error"]
        == "Unavailable: MQTT broker unreachable: ConnectionRefusedError"
    )
