"""Replaying dead letters: their points written to InfluxDB again, the outcome kept on the row."""

from __future__ import annotations

import json
from collections.abc import Iterable

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasks import deadletters
from tasks.errors import WriteError
from tasks.influx import Writer
from tasks.ingest import events_to_lines, get_writer
from tasks.models import FailedWrite, PayloadFormat, Status
from tasks.schema import SchemaOptions

log = structlog.get_logger(__name__)


def lines_of(letter: FailedWrite, options: SchemaOptions) -> list[str]:
    """The dead letter's points as line protocol; ValueError for a raw source message."""
    if letter.payload_format == PayloadFormat.LINE_PROTOCOL:
        return [text for text in letter.payload.splitlines() if text]
    if letter.payload_format == PayloadFormat.EVENTS:
        lines, _ = events_to_lines(json.loads(letter.payload), options)
        return lines
    raise ValueError("a raw source message cannot be replayed; fix the source, then discard it")


def replay_letter(letter: FailedWrite, writer: Writer, options: SchemaOptions) -> bool:
    """Write one dead letter again. True when written; a failure is recorded on the row."""
    try:
        writer.write(lines_of(letter, options))
    except (WriteError, ValueError) as exc:
        with transaction.atomic():
            FailedWrite.objects.filter(pk=letter.pk).update(
                attempts=letter.attempts + 1, last_failed_at=timezone.now(), error=str(exc)[:10_000]
            )
        log.warning(
            "dead_letter_replay_failed",
            id=letter.pk,
            error=str(exc)[:300],
            category=getattr(exc, "category", "unparseable"),
        )
        return False
    FailedWrite.objects.filter(pk=letter.pk).update(
        status=Status.REPLAYED, resolved_at=timezone.now()
    )
    log.info("dead_letter_replayed", id=letter.pk, points=letter.points)
    return True


def replay_pending(
    *, limit: int, categories: Iterable[str] | None = None, ids: Iterable[int] | None = None
) -> int:
    """Replay pending dead letters (retryable categories unless told otherwise)."""
    queryset = deadletters.pending(categories) if categories else deadletters.pending()
    if ids:
        queryset = queryset.filter(pk__in=ids)
    replayed = 0
    for letter in queryset[:limit]:
        replayed += replay_letter(letter, get_writer(), settings.INGEST_SCHEMA)
    return replayed
