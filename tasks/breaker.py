"""A circuit breaker shared by every worker process and host, its state in the database.

closed -> (N consecutive transient failures) -> open -> (cooldown) -> half-open: one caller
gets to probe -> success closes it, failure opens it again. While open, callers do not touch
the guarded service at all, so an outage costs neither requests nor retries.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasks.models import CLOSED, HALF_OPEN, OPEN, BreakerState

STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
INFLUX_BREAKER = "influxdb"


class CircuitBreaker:
    def __init__(
        self, name: str, *, threshold: int, cooldown: float, probe_timeout: float = 60.0
    ) -> None:
        self.name, self.threshold = name, threshold
        self.cooldown = timedelta(seconds=cooldown)
        # A probe that never reports back (its worker died) frees the slot after this long.
        self.probe_timeout = timedelta(seconds=probe_timeout)

    def _row(self) -> BreakerState:
        row, _ = BreakerState.objects.get_or_create(name=self.name)
        return row

    def state(self) -> str:
        row = BreakerState.objects.filter(name=self.name).first()
        return row.state if row else CLOSED

    def allow(self) -> bool:
        """May the caller use the service now? In half-open only the one prober may."""
        row = BreakerState.objects.filter(name=self.name).first()
        if row is None or row.state == CLOSED:
            return True
        now = timezone.now()
        if row.state == OPEN and row.opened_at and now - row.opened_at < self.cooldown:
            return False
        if row.state == HALF_OPEN and row.probe_until and now < row.probe_until:
            return False
        return self._take_probe(now)

    def _take_probe(self, now) -> bool:
        with transaction.atomic():
            row = BreakerState.objects.select_for_update().get(name=self.name)
            probing = row.state == HALF_OPEN and row.probe_until and now < row.probe_until
            cooling = row.state == OPEN and row.opened_at and now - row.opened_at < self.cooldown
            if row.state == CLOSED:
                return True
            if probing or cooling:
                return False
            row.state, row.probe_until = HALF_OPEN, now + self.probe_timeout
            row.save(update_fields=["state", "probe_until", "updated_at"])
            return True

    def seconds_until_probe(self) -> float:
        row = BreakerState.objects.filter(name=self.name).first()
        if row is None or row.state == CLOSED or row.opened_at is None:
            return 0.0
        remaining = row.opened_at + self.cooldown - timezone.now()
        return max(0.0, remaining.total_seconds())

    def record_success(self) -> None:
        # The hot path: one cheap filtered UPDATE that touches nothing when already closed.
        BreakerState.objects.filter(name=self.name).exclude(state=CLOSED, failures=0).update(
            state=CLOSED, failures=0, opened_at=None, probe_until=None, updated_at=timezone.now()
        )

    def record_failure(self) -> str:
        """Count one transient failure; returns the state afterwards."""
        self._row()
        with transaction.atomic():
            row = BreakerState.objects.select_for_update().get(name=self.name)
            row.failures += 1
            if row.state == HALF_OPEN or row.failures >= self.threshold:
                row.state, row.opened_at, row.probe_until = OPEN, timezone.now(), None
            row.save()
            return row.state

    def reset(self) -> None:
        BreakerState.objects.filter(name=self.name).delete()


def influx_breaker() -> CircuitBreaker:
    """The breaker in front of InfluxDB, shared by every worker process."""
    return CircuitBreaker(
        INFLUX_BREAKER, threshold=settings.BREAKER_THRESHOLD, cooldown=settings.BREAKER_COOLDOWN
    )
