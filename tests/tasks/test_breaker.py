from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tasks.models import BreakerState

pytestmark = pytest.mark.django_db


def breaker(**kwargs) -> CircuitBreaker:
    return CircuitBreaker("test", **{"threshold": 3, "cooldown": 30, **kwargs})


def age(seconds: float) -> None:
    BreakerState.objects.filter(name="test").update(
        opened_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_it_opens_after_n_consecutive_failures():
    b = breaker()
    assert [b.record_failure() for _ in range(3)] == [CLOSED, CLOSED, OPEN]
    assert b.allow() is False


def test_a_success_resets_the_count():
    b = breaker()
    b.record_failure()
    b.record_failure()
    b.record_success()
    assert b.record_failure() == CLOSED


def test_after_the_cooldown_exactly_one_caller_probes():
    b = breaker()
    for _ in range(3):
        b.record_failure()
    age(31)
    assert b.allow() is True
    assert b.state() == HALF_OPEN
    assert b.allow() is False, "a second caller must not probe at the same time"


def test_a_successful_probe_closes_it():
    b = breaker()
    for _ in range(3):
        b.record_failure()
    age(31)
    assert b.allow()
    b.record_success()
    assert b.state() == CLOSED and b.allow()


def test_a_failed_probe_opens_it_again_for_a_full_cooldown():
    b = breaker()
    for _ in range(3):
        b.record_failure()
    age(31)
    assert b.allow()
    assert b.record_failure() == OPEN
    assert b.allow() is False
    assert b.seconds_until_probe() > 25


def test_state_is_shared_between_instances():
    for _ in range(3):
        breaker().record_failure()
    assert breaker().allow() is False
