"""Health, readiness, metrics and secret hygiene, against the real services."""

from __future__ import annotations

import json
import re
import signal
import threading
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from datetime import timedelta
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django.core.management import call_command
from django.utils import timezone

from hasim.thread import SimulatorThread
from ingestor_project import health
from ingestor_project.exposition import exposition
from listeners.heartbeat import beat
from listeners.models import ListenerHeartbeat
from tests.conftest import SIMULATOR_TOKEN
from tests.helpers import TEST_INFLUX_URL, migrate, service_env, wait_until
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def settle(cache: health.ReadinessCache) -> None:
    """Forget the cached result and wait for a refresh still running, so that none reads the
    database after its test."""
    pending = cache.clear()
    if pending is not None:
        assert wait_futures([pending], timeout=30).done, "a readiness refresh never finished"


@pytest.fixture
def client(client, django_user_model):
    """A staff user's client: /ready shows error strings only to staff (or the metrics token),
    and these tests read them (tests/test_web_security.py covers the anonymous view)."""
    client.force_login(django_user_model.objects.create_user("operator", is_staff=True))
    return client


@pytest.fixture
def ready_settings(settings, influx):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    settings.READY_LISTENERS = ["homeassistant"]
    settings.READY_CHECK_WORKERS = False
    # The default cache stays on: each test starts from no result (changing a setting forgets
    # it), and the tests below that change state between requests wait for it to show.
    settings.READY_CACHE_SECONDS = 2.0
    yield settings
    settle(health.READINESS)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(ready_settings, monkeypatch) -> FakeClock:
    """The view's readiness cache on a clock the test moves (the checks still run for real)."""
    fake = FakeClock()
    cache = health.ReadinessCache(clock=fake)
    monkeypatch.setattr(health, "READINESS", cache)
    yield fake
    settle(cache)


def open_breaker() -> None:
    from tasks.models import BreakerState

    BreakerState.objects.create(name="influxdb", state="open", failures=5, opened_at=timezone.now())


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


def test_ready_asks_only_workers_that_consume_the_ingest_queue(
    client, ready_settings, ingest_queue, processes, tmp_path
):
    ready_settings.READY_CHECK_WORKERS = True
    ready_settings.CELERY_INGEST_QUEUE = ingest_queue
    beat("homeassistant", True, {})

    def worker(name: str, queue: str) -> None:
        env = service_env(
            CELERY_INGEST_QUEUE=queue, CELERY_MAINTENANCE_QUEUE=queue + "-m", DATA_DIR=str(tmp_path)
        )
        processes.worker(name, env)
        wait_until(lambda: "ready." in processes.log(name), 60, f"{name} to start")

    # Another application's worker on the same virtual host answers pings, not for our queue.
    worker("other-app", ingest_queue + "-someone-else")
    settle(health.READINESS)
    body = client.get("/ready").json()
    assert body["checks"]["workers"]["error"] == (
        f"Unavailable: no Celery worker consumes the {ingest_queue} queue"
    )
    worker("worker", ingest_queue)
    wait_until(lambda: client.get("/ready").status_code == 200, 60, "our worker to answer")


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


def test_counters_of_a_known_stream_equal_what_influxdb_holds(influx, env_for, processes, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    simulator = SimulatorThread(
        token=SIMULATOR_TOKEN,
        entities=30,
        rate=1500,
        events=3000,
        other_events_ratio=0.1,
        seed=7,
    ).start()
    try:
        env = env_for(simulator, HA_EVENT_TYPES="*", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
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


def test_ready_serves_its_last_result_within_the_bound_and_says_how_old(client, ready_settings):
    ready_settings.READY_CACHE_SECONDS = 60
    beat("homeassistant", True, {})
    first = client.get("/ready")
    open_breaker()
    second = client.get("/ready")
    assert (first.status_code, second.status_code) == (200, 200), "the second is the cached one"
    assert second.json()["checks"] == first.json()["checks"]
    assert 0 <= first.json()["age_s"] <= second.json()["age_s"] < 60


def test_ready_shows_a_state_change_within_the_bound(client, ready_settings, clock):
    ready_settings.READY_CACHE_SECONDS = 10
    beat("homeassistant", True, {})
    assert client.get("/ready").json()["age_s"] == 0, "the first request runs the checks"
    open_breaker()
    clock.now += 4  # younger than half the bound: served as it is
    body = client.get("/ready").json()
    assert (body["status"], body["age_s"]) == ("ok", 4)
    clock.now += 2  # past half the bound: still served, and refreshed in the background
    assert client.get("/ready").status_code == 200
    refreshed = wait_until(
        lambda: (r := client.get("/ready")).status_code == 503 and r.json(),
        30,
        "the background refresh to show the open breaker",
    )
    assert (
        refreshed["checks"]["breaker"]["error"] == "Unavailable: InfluxDB circuit breaker is open"
    )
    assert refreshed["age_s"] == 0

    ListenerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(minutes=5))
    clock.now += 10  # at the bound: this request waits for the checks instead
    body = client.get("/ready").json()
    assert "silent for" in body["checks"]["listener_homeassistant"]["error"]
    assert body["age_s"] == 0


def test_ready_cache_seconds_0_runs_the_checks_on_every_request(client, ready_settings):
    from tasks.models import BreakerState

    ready_settings.READY_CACHE_SECONDS = 0
    beat("homeassistant", True, {})
    first = client.get("/ready")
    assert first.status_code == 200
    assert "age_s" not in first.json()
    open_breaker()
    assert client.get("/ready").status_code == 503
    BreakerState.objects.all().delete()
    assert client.get("/ready").status_code == 200


class BlockedChecks:
    """A stand-in for the checks that runs until the test releases it, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self) -> tuple[dict, bool]:
        self.runs += 1
        self.started.set()
        assert self.release.wait(30), "the test never released the checks"
        return {"status": "ok", "checks": {}, "run": self.runs}, True


def test_concurrent_requests_share_the_one_refresh_running():
    checks, clock = BlockedChecks(), FakeClock()
    cache = health.ReadinessCache(run=checks, clock=clock)
    futures = [cache.refresh() for _ in range(3)]
    assert checks.started.wait(30)
    waiter: Future = Future()
    threading.Thread(target=lambda: waiter.set_result(cache.get(10, 30))).start()
    assert cache.cached(10) is None
    checks.release.set()
    assert {f.result(30).body["run"] for f in futures} == {1}
    snapshot, age = waiter.result(30)
    assert (snapshot.body["run"], age, checks.runs) == (1, 0, 1)


def test_a_stale_result_starts_one_background_refresh_however_many_requests_see_it():
    checks, clock = BlockedChecks(), FakeClock()
    cache = health.ReadinessCache(run=checks, clock=clock)
    checks.release.set()
    cache.refresh().result(30)
    checks.started.clear()
    checks.release.clear()
    clock.now += 6
    served = [cache.cached(10) for _ in range(5)]
    assert [(s.body["run"], age) for s, age in served] == [(1, 6)] * 5
    assert checks.started.wait(30)
    checks.release.set()
    wait_until(lambda: (s := cache.cached(10)) and s[0].body["run"] == 2, 30, "the refresh")
    assert checks.runs == 2


def test_a_request_gives_up_on_overrunning_checks_without_cancelling_them():
    checks = BlockedChecks()
    cache = health.ReadinessCache(run=checks, clock=FakeClock())
    assert cache.get(10, timeout=0.01) is None
    checks.release.set()
    snapshot, _age = wait_until(lambda: cache.cached(10), 30, "the refresh to finish")
    assert snapshot.body["run"] == 1


def test_gunicorn_sync_workers_refresh_readiness_and_keep_no_connection(
    influx, postgres_url, processes, tmp_path
):
    import psycopg

    env = service_env(
        DATABASE_URL=postgres_url,
        DATA_DIR=str(tmp_path),
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=influx.database,
        READY_LISTENERS="none",
        READY_CHECK_WORKERS="false",
        READY_CACHE_SECONDS="1",
        METRICS_TOKEN="ready-details-token-0123456789",
    )
    migrate(env)
    port = free_port()
    web = processes.web("web", env, port)
    # The token shows /ready's error strings (anonymous requests get the statuses only).
    auth = {"Authorization": "Bearer ready-details-token-0123456789"}

    def ready() -> tuple[int, dict] | None:
        try:
            request = Request(f"http://127.0.0.1:{port}/ready", headers=auth)
            with urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except HTTPError as unready:
            return unready.code, json.load(unready)
        except OSError:
            return None

    status, body = wait_until(ready, 60, "gunicorn to answer /ready")
    assert status == 200, body
    influx.query(f'DROP DATABASE "{influx.database}"', database=False)
    ages = []

    def shows_the_missing_database() -> bool:
        status, body = ready()
        ages.append(body["age_s"])
        return status == 503 and "does not exist" in body["checks"]["influxdb"]["error"]

    wait_until(shows_the_missing_database, 30, "/ready to show the dropped InfluxDB database")
    assert max(ages) <= 1

    def sessions() -> int:
        with psycopg.connect(postgres_url) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            return conn.execute(query).fetchone()[0] - 1  # this one

    wait_until(lambda: sessions() == 0, 30, "the readiness checks to close their connections")
    assert processes.stop(web) == 0


@pytest.mark.django_db
def test_a_not_ready_answer_is_not_logged_as_a_server_error(client, settings, caplog):
    settings.READY_CACHE_SECONDS = 0
    settings.READY_LISTENERS = ["homeassistant"]  # no heartbeat yet: not ready
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/ready")
    assert response.status_code == 503
    assert not [r for r in caplog.records if r.name == "django.request"]
