"""Dead letters: whatever could not be written, kept until an operator replays or discards it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Category(models.TextChoices):
    TRANSIENT = "transient", "InfluxDB unreachable (retries exhausted)"
    THROTTLED = "throttled", "InfluxDB throttling (retries exhausted)"
    AUTH = "auth", "Credentials, database or bucket refused"
    REJECTED = "rejected", "Points rejected by InfluxDB"
    TOO_LARGE = "too_large", "Request too large"
    UNREPRESENTABLE = "unrepresentable", "Event cannot become a point"
    UNPARSEABLE = "unparseable", "Source message could not be parsed"
    CLOCK = "clock", "Event time outside what InfluxDB can store"
    UNEXPECTED = "unexpected", "Unexpected error (retries exhausted)"


# Categories the periodic replay retries on its own once InfluxDB is healthy again; the others
# need an operator to fix something first (a field type, a payload) and replay by hand.
RETRYABLE = (Category.TRANSIENT, Category.THROTTLED, Category.AUTH, Category.TOO_LARGE)


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    REPLAYED = "replayed", "Replayed"
    DISCARDED = "discarded", "Discarded"


class PayloadFormat(models.TextChoices):
    EVENTS = "events", "Normalised events (JSON)"
    LINE_PROTOCOL = "line_protocol", "InfluxDB line protocol"
    RAW = "raw", "Raw source message"


class FailedWrite(models.Model):
    batch_id = models.CharField(max_length=64, blank=True, db_index=True)
    source = models.CharField(max_length=32, default="worker")
    category = models.CharField(max_length=32, choices=Category.choices, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    payload_format = models.CharField(max_length=16, choices=PayloadFormat.choices)
    payload = models.TextField()
    # Space-separated entity ids in the payload, so the admin can search by entity.
    entity_ids = models.TextField(blank=True)
    points = models.PositiveIntegerField(default=0)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Set for what a batch records: a retried or redelivered batch finds its own dead letters
    # instead of adding copies. Empty for what has no batch to be repeated with.
    dedup_key = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-last_failed_at"]
        indexes = [models.Index(fields=["status", "category"])]

    def __str__(self) -> str:
        return f"{self.category} {self.batch_id or self.pk} ({self.points} points)"


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class BreakerState(models.Model):
    """The shared state of one circuit breaker (tasks/breaker.py)."""

    name = models.CharField(max_length=64, primary_key=True)
    state = models.CharField(max_length=16, default=CLOSED)
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"
