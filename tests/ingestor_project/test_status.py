"""GET /: the operator's status page, its samples and rates, its charts, what it shows to whom."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from ingestor_project import metrics, status_samples
from ingestor_project.charts import chart
from ingestor_project.models import StatusSample
from listeners.models import ListenerHeartbeat, SourceCursor
from tasks import deadletters
from tasks.models import OPEN, BreakerState

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def sample(seconds: float, **totals) -> SimpleNamespace:
    return SimpleNamespace(taken_at=T0 + timedelta(seconds=seconds), totals=totals)


def test_rates_come_from_consecutive_samples():
    buckets_a = {"0.5": 0, "1.0": 0, "+Inf": 0}
    buckets_b = {"0.5": 50, "1.0": 100, "+Inf": 100}
    (interval,) = status_samples.intervals(
        [
            sample(0, received=1000, written=900, lag_sum=0, lag_count=0, lag_buckets=buckets_a),
            sample(
                10, received=1500, written=1900, lag_sum=40, lag_count=100, lag_buckets=buckets_b
            ),
        ]
    )
    assert interval.received_per_s == 50 and interval.written_per_s == 100
    assert interval.lag_mean == pytest.approx(0.4)
    assert interval.lag_p99 == pytest.approx(0.99)  # half-way bucket 0.5-1.0, linear inside it


def test_a_counter_that_went_down_is_no_rate():
    (interval,) = status_samples.intervals([sample(0, received=500), sample(10, received=20)])
    assert interval.received_per_s is None and interval.lag_mean is None


def test_the_quantile_above_the_last_finite_bucket_is_that_bound():
    assert status_samples.quantile(0.99, {"1.0": 1, "+Inf": 100}) == 1.0
    assert status_samples.quantile(0.5, {"1.0": 0, "+Inf": 0}) is None


def test_it_reads_every_process_total_from_the_metrics_directory():
    before = status_samples.read_totals()
    metrics.POINTS_WRITTEN.inc(7)
    metrics.EVENTS_RECEIVED.labels("homeassistant", "state_changed").inc(3)
    metrics.WRITE_FAILURES.labels("rejected").inc()
    metrics.LAG_SECONDS.observe(0.3)
    after = status_samples.read_totals()
    assert after["written"] - before["written"] == 7
    assert after["received"] - before["received"] == 3
    assert after["failures"]["rejected"] - before["failures"].get("rejected", 0) == 1
    assert after["lag_count"] - before["lag_count"] == 1
    assert after["lag_buckets"]["0.5"] - before["lag_buckets"].get("0.5", 0) == 1


@pytest.mark.django_db
def test_one_sample_per_bucket_and_old_ones_pruned():
    now = time.time()
    status_samples.take_sample({}, now=now - status_samples.KEEP_SECONDS - 60)
    status_samples.take_sample({"listener_events": {"mqtt": 1}}, now=now)
    status_samples.take_sample({"listener_events": {"mqtt": 2}}, now=now)
    (only,) = StatusSample.objects.all()
    assert only.totals["listener_events"] == {"mqtt": 1} and "written" in only.totals


def test_a_chart_scales_to_a_round_top_and_splits_at_gaps():
    times = [T0 + timedelta(seconds=10 * i) for i in range(4)]
    drawn = chart("t", "u", times, {("a", "received"): [1.0, 340.0, None, 20.0]})
    assert drawn.top == "500"
    (line,) = drawn.lines
    assert len(line.segments) == 2 and line.latest == "20.0"
    first_y = float(line.segments[0].split()[1].split(",")[1])
    assert 0 < first_y < drawn.height


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("ops", "ops@example.org", "a-long-password-123")
    client.force_login(user)
    return client


def _svg_polylines(page: str) -> list[str]:
    return re.findall(r'<polyline class="series [a-z]+" points="([^"]+)"', page)


@pytest.mark.django_db
def test_the_page_draws_the_last_minutes_as_inline_svg(client, settings, tmp_path):
    settings.METRICS_DIR = tmp_path  # the page's own sample then reads zeros: no rate
    now = time.time()
    for i, received in enumerate([0, 500, 1500]):
        StatusSample.objects.create(
            bucket=int(now // 10) - 3 + i,
            taken_at=timezone.now() - timedelta(seconds=30 - 10 * i),
            totals={"received": received, "written": received},
        )
    page = client.get("/").content.decode()
    assert page.count("<svg") == 3 and len(_svg_polylines(page)) >= 2
    assert "received: 100.0" in page  # (1500 - 500) / 10 s
    assert 'http-equiv="refresh"' in page and "<script" not in page


@pytest.mark.django_db
def test_it_shows_listeners_breaker_dead_letters_and_links(client):
    ListenerHeartbeat.objects.create(
        name="homeassistant", last_seen=timezone.now(), connected=True, details={"events": 42}
    )
    SourceCursor.objects.create(name="home", position_ns=1_767_614_400_000_000_000)
    deadletters.record_raw("{nope", source="mqtt", error="secret-error-text")
    page = client.get("/").content.decode()
    assert "homeassistant" in page and ">connected<" in page and ">42<" in page
    assert "2026-01-05 12:00:00 UTC" in page  # the cursor, a human time
    assert 'class="breaker-closed">closed<' in page  # no row: closed, still shown
    assert "Source message could not be parsed" in page and "secret-error-text" not in page
    for href in ('href="/admin/"', 'href="/ready"', 'href="/metrics"', ":5555/"):
        assert href in page


@pytest.mark.django_db
def test_an_open_breaker_and_a_silent_listener_show(client):
    BreakerState.objects.create(name="influxdb", state=OPEN, failures=5, opened_at=timezone.now())
    ListenerHeartbeat.objects.create(
        name="mqtt", last_seen=timezone.now() - timedelta(minutes=5), connected=True
    )
    page = client.get("/").content.decode()
    assert 'class="breaker-open">open<' in page and "no heartbeat" in page


@pytest.mark.django_db
def test_a_listener_last_event_comes_from_its_count_moving(client):
    ListenerHeartbeat.objects.create(
        name="mqtt", last_seen=timezone.now(), connected=True, details={"events": 5}
    )
    now = time.time()
    for i, count in enumerate([3, 5]):
        StatusSample.objects.create(
            bucket=int(now // 10) - 2 + i,
            taken_at=timezone.now() - timedelta(seconds=20 - 10 * i),
            totals={"listener_events": {"mqtt": count}},
        )
    page = client.get("/").content.decode()
    assert "none while sampled" not in page


@pytest.mark.django_db
def test_it_needs_a_staff_login_when_metrics_need_a_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    User.objects.create_user("viewer", password="a-long-password-123")
    client.force_login(User.objects.get(username="viewer"))
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_staff_get_links_into_the_admin_and_no_secret_appears(staff, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    settings.CELERY_BROKER_URL = "amqp://guest:broker-password-xyz@127.0.0.1:5672//"
    deadletters.record_raw("{nope", source="mqtt", error="not JSON")
    page = staff.get("/").content.decode()
    assert "/admin/tasks/failedwrite/?status__exact=pending&amp;category__exact=unparseable" in page
    assert "/admin/tasks/breakerstate/" in page
    assert "broker-password-xyz" not in page and "scrape-token" not in page


@pytest.mark.django_db
def test_it_shows_the_depth_of_our_queues(client, settings, ingest_queue):
    from kombu import Connection, Exchange, Queue

    from ingestor_project import status
    from tests.helpers import TEST_BROKER_URL

    settings.CELERY_BROKER_URL, settings.CELERY_INGEST_QUEUE = TEST_BROKER_URL, ingest_queue
    with Connection(TEST_BROKER_URL) as conn:
        queue = Queue(ingest_queue, Exchange(ingest_queue), routing_key=ingest_queue)
        producer = conn.Producer()
        for n in range(3):
            producer.publish(
                {"n": n}, exchange=queue.exchange, routing_key=ingest_queue, declare=[queue]
            )
    status._queue_cache["at"] = -status.QUEUE_CACHE_SECONDS  # what an earlier test cached
    page = client.get("/").content.decode()
    assert f'<td>{ingest_queue}</td><td class="num">3</td>' in page
