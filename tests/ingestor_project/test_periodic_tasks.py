"""`celery worker --send-periodic-tasks` (the home shape): beat's schedule from the worker's
timer. That it sends the replay on time in a real `make run` is in tests/test_make_run.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
import structlog
from celery import Celery
from celery.schedules import crontab, schedule
from kombu.asynchronous.timer import Timer

from ingestor_project import periodic_tasks
from ingestor_project.celery import app


@pytest.mark.parametrize(
    "every, seconds",
    [(60, 60.0), (2.5, 2.5), (timedelta(minutes=5), 300.0), (schedule(timedelta(seconds=9)), 9.0)],
)
def test_interval_schedules_give_their_period(every, seconds):
    assert periodic_tasks.interval_seconds("x", every) == seconds


def test_a_crontab_entry_is_refused_by_name():
    with pytest.raises(ValueError, match="'nightly'.*use beat"):
        periodic_tasks.interval_seconds("nightly", crontab(hour=3))


def test_the_project_schedule_runs_in_the_worker_and_the_option_is_known():
    for name, entry in app.conf.beat_schedule.items():
        assert periodic_tasks.interval_seconds(name, entry["schedule"]) > 0
    worker_options = {opt.name for opt in app.user_options["worker"]}
    assert "send_periodic_tasks" in worker_options
    assert periodic_tasks.PeriodicTasks in app.steps["worker"]


def test_a_task_that_cannot_be_sent_is_logged_and_the_timer_goes_on(monkeypatch):
    # A broker that refuses connections (nothing listens on port 1), no retries. (Celery lets
    # the test settings' CELERY_BROKER_URL win over the broker given here.)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    unreachable = Celery("unreachable", broker="amqp://guest:guest@127.0.0.1:1//")
    unreachable.conf.task_publish_retry = False
    entry = {"task": "tasks.replay_failed_writes", "schedule": 60, "kwargs": {"limit": 1}}
    with structlog.testing.capture_logs() as logs:
        periodic_tasks.send(unreachable, "replay-failed-writes", entry)  # does not raise
    assert [(e["event"], e["task"]) for e in logs] == [
        ("periodic_task_not_sent", "replay-failed-writes")
    ]


def test_an_unexpected_error_reaches_celerys_timer_and_the_entry_stays_scheduled():
    # A bad entry (a countdown that is not a number) fails before any broker is involved: the
    # error is not swallowed here, and the worker's timer keeps sending the entry every period.
    entry = {"task": "tasks.replay_failed_writes", "schedule": 60, "options": {"countdown": "x"}}
    timer = Timer()
    scheduled = timer.call_repeatedly(60, periodic_tasks.send, (app, "bad", entry))
    assert len(timer.queue) == 1
    with pytest.raises(TypeError):
        scheduled()  # what the timer does when the period has come
    assert len(timer.queue) == 2  # the next period is already scheduled
