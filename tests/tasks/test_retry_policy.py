"""The task's retry decisions, driven with a stand-in for Celery's task object."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks import celery_tasks
from tasks.errors import AuthWriteError, ThrottledWriteError, TransientWriteError
from tasks.models import Category, FailedWrite

pytestmark = pytest.mark.django_db
EVENTS = [{"event_type": "state_changed", "entity_id": "sensor.a", "state": "1", "time": 1}]


class Retried(Exception):
    pass


def fake_task(retries: int, max_retries: int = 5):
    calls = {}

    def retry(exc, countdown, throw=True):
        calls.update(exc=exc, countdown=countdown)
        return Retried()

    task = SimpleNamespace(
        request=SimpleNamespace(retries=retries),
        max_retries=max_retries,
        retry_backoff=2,
        retry_backoff_max=300,
        retry_jitter=False,
        retry=retry,
    )
    return task, calls


def test_it_retries_a_transient_failure_with_exponential_backoff():
    task, calls = fake_task(retries=3)
    with pytest.raises(Retried):
        celery_tasks._retry_or_dead_letter(task, EVENTS, "b", TransientWriteError("reset"))
    assert calls["countdown"] == 16  # 2 * 2**3


def test_it_honours_retry_after_when_throttled():
    task, calls = fake_task(retries=0)
    with pytest.raises(Retried):
        throttled = ThrottledWriteError("429", retry_after=42)
        celery_tasks._retry_or_dead_letter(task, EVENTS, "b", throttled)
    assert calls["countdown"] == 42


def test_auth_failures_retry_slowly(settings):
    settings.WRITE_AUTH_RETRY_MIN = 60
    task, calls = fake_task(retries=0)
    with pytest.raises(Retried):
        celery_tasks._retry_or_dead_letter(task, EVENTS, "b", AuthWriteError("401", status=401))
    assert calls["countdown"] == 60


def test_exhausted_retries_become_a_dead_letter_not_a_loss():
    task, _ = fake_task(retries=5, max_retries=5)
    assert celery_tasks._retry_or_dead_letter(task, EVENTS, "b", TransientWriteError("down")) == 0
    letter = FailedWrite.objects.get()
    assert (letter.category, letter.attempts, letter.points) == (Category.TRANSIENT, 6, 1)


def test_a_soft_time_limit_or_any_bug_is_retried_not_acknowledged(monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(*_args, **_kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(celery_tasks.ingest, "write_batch", too_slow)
    task, calls = fake_task(retries=0)
    with pytest.raises(Retried):
        celery_tasks.write_or_hand_back(task, EVENTS, "b", {})
    assert isinstance(calls["exc"], SoftTimeLimitExceeded)
    assert calls["countdown"] == 2


def test_a_batch_that_cannot_even_be_dead_lettered_is_requeued(monkeypatch):
    from celery.exceptions import Reject
    from django.db import OperationalError

    def database_locked(*_args, **_kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(celery_tasks.deadletters, "record_raw", database_locked)
    monkeypatch.setattr(celery_tasks, "REQUEUE_PAUSE_MAX", 0.0)
    task, _ = fake_task(retries=5, max_retries=5)
    with pytest.raises(Reject) as rejected:
        celery_tasks._unexpected(task, "[]", "b", OperationalError("database is locked"))
    assert rejected.value.requeue is True


def test_a_retry_celery_cannot_publish_is_a_requeue_not_a_drop(monkeypatch):
    from celery.exceptions import Reject

    monkeypatch.setattr(celery_tasks, "REQUEUE_PAUSE_MAX", 0.0)

    def unpublishable(exc, countdown, throw=True):
        raise Reject(ConnectionError("broker gone"), requeue=False)

    task, _ = fake_task(retries=0)
    task.retry = unpublishable
    with pytest.raises(Reject) as rejected:
        celery_tasks._retry_or_dead_letter(task, EVENTS, "b", TransientWriteError("reset"))
    assert rejected.value.requeue is True
