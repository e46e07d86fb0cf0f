"""Known secrets fed through every path must never appear in any output."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from hasim.thread import SimulatorThread
from tests.helpers import ROOT, TEST_INFLUX_URL, migrate, service_env, wait_until
from tests.streams import Stream, events

SECRETS = {
    "SECRET_KEY": "django-SECRET-3c1f8a9e2b7d4f60a5e1c9b8d7f6e5a4",
    "HA_TOKEN": "ha-SECRET-token-9b8c7d6e5f4a3b2c1d0e",
    "INFLUX_PASSWORD": "influx-SECRET-password-77aa66bb",
    "METRICS_TOKEN": "metrics-SECRET-token-55cc44dd",
}


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.fixture
def secret_env(influx, ingest_queue, postgres_url, tmp_path):
    env = service_env(
        **SECRETS,
        LOG_LEVEL="DEBUG",
        DATABASE_URL=postgres_url,
        CELERY_INGEST_QUEUE=ingest_queue,
        CELERY_MAINTENANCE_QUEUE=ingest_queue + "m",
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=influx.database,
        INFLUX_USERNAME="admin",
        DATA_DIR=str(tmp_path),
        LOG_FILE=str(tmp_path / "logs" / "ingestor-{pid}.log"),
    )
    migrate(env)
    return env


def test_no_secret_reaches_logs_health_metrics_or_errors(
    secret_env, processes, tmp_path, influx, ingest_queue
):
    outputs = []
    # A refused HA token (auth error path) and an accepted one (normal path).
    wrong = SimulatorThread(token="some-other-token-000000", entities=5, rate=50).start()
    right = SimulatorThread(token=SECRETS["HA_TOKEN"], entities=5, rate=200, events=200).start()
    try:
        refused = processes.manage(
            "listener-refused", ["listen_homeassistant"], {**secret_env, "HA_URL": wrong.url}
        )
        accepted = processes.manage(
            "listener", ["listen_homeassistant"], {**secret_env, "HA_URL": right.url}
        )
        processes.worker("worker", secret_env)
        right.wait_until_done(30)
        wait_until(lambda: influx.count() >= 200, 60, "points written with credentials")
        wait_until(
            lambda: "ha_auth_failed" in processes.log("listener-refused"),
            30,
            "the refused token to be reported",
        )
        processes.stop(refused, signal.SIGTERM)
        processes.stop(accepted, signal.SIGTERM)
    finally:
        wrong.stop()
        right.stop()
    # A write failure path: InfluxDB unreachable, the task retries.
    down = {**secret_env, "INFLUX_URL": "http://127.0.0.1:9", "INFLUX_TIMEOUT": "1"}
    processes.worker("worker-down", {**down, "CELERY_INGEST_QUEUE": ingest_queue + "-down"})
    stream = Stream(down["CELERY_BROKER_URL"], ingest_queue + "-down", events(10), rate=100)
    stream.start().finish(30)
    wait_until(lambda: "batch_write_retry" in processes.log("worker-down"), 60, "a retry")

    for command in (["health"], ["check", "--deploy"], ["showmigrations"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            env=secret_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs.append(result.stdout + result.stderr)
    # A configuration error mentioning a secret variable.
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        timeout=60,
        env={**secret_env, "HA_TOKEN_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
    )
    assert "set either HA_TOKEN or HA_TOKEN_FILE" in result.stderr
    outputs.append(result.stdout + result.stderr)

    for name in ("listener-refused", "listener", "worker", "worker-down"):
        outputs.append(processes.log(name))
    outputs += [p.read_text() for p in (tmp_path / "logs").glob("*.log")]
    assert "ha_connected" in processes.log("listener"), "the accepted listener never connected"
    assert len(outputs) >= 9
    assert [leaks(text) for text in outputs] == [[] for _ in outputs]


@pytest.mark.django_db(transaction=True)
def test_ready_and_metrics_output_carry_no_secret(client, settings, influx):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    settings.INFLUX_USERNAME, settings.INFLUX_PASSWORD = "admin", SECRETS["INFLUX_PASSWORD"]
    settings.METRICS_TOKEN = SECRETS["METRICS_TOKEN"]
    ready = client.get("/ready").content.decode()
    metrics = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {SECRETS['METRICS_TOKEN']}"
    ).content.decode()
    assert "ha_ingestor_" in metrics and "influxdb" in ready
    assert leaks(ready) == [] and leaks(metrics) == []
