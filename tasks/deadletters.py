"""The dead-letter store: recording FailedWrite rows, listing and discarding them (tasks/replay.py
writes them again)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import structlog
from django.db.models import QuerySet
from django.utils import timezone

from ingestor_project import metrics
from tasks.models import RETRYABLE, Category, FailedWrite, PayloadFormat, Status

log = structlog.get_logger(__name__)


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL: shown as ``\\x00``, as a raw payload shows the bytes it
    could not decode (an events payload is JSON, whose own ``\\u0000`` replays intact)."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def _entity_ids(events: Iterable[dict[str, Any]]) -> str:
    return " ".join(sorted({str(e.get("entity_id")) for e in events if e.get("entity_id")}))


def dedup_key(batch_id: str | None, *parts: object) -> str | None:
    """The same dead letter of the same batch gets the same key, however often it is recorded."""
    if not batch_id:
        return None
    text = "\0".join(str(part) for part in (batch_id, *parts))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _record(
    *,
    category: str,
    error: str,
    batch_id: str | None,
    points: int,
    ordinal: int = 0,
    **fields: Any,
) -> FailedWrite:
    key = dedup_key(batch_id, category, ordinal, fields["payload_format"], fields["payload"])
    values = {
        "batch_id": (batch_id or "")[:64],
        "category": category,
        "points": points,
        "error": _storable(error[:10_000]),
        **fields,
    }
    if key is None:
        letter = FailedWrite.objects.create(**values)
    else:
        letter, created = FailedWrite.objects.get_or_create(dedup_key=key, defaults=values)
        if not created:
            # A retry or redelivery of a batch whose dead letters were already kept.
            log.info("dead_letter_already_recorded", id=letter.pk, category=category)
            return letter
    metrics.DEAD_LETTERS.labels(category).inc()
    log.error(
        "dead_letter_recorded",
        id=letter.pk,
        category=category,
        points=points,
        batch_id=batch_id,
        error=error[:500],
    )
    return letter


def record_events(
    events: list[dict[str, Any]],
    *,
    category: str,
    error: str,
    batch_id: str | None,
    attempts: int = 1,
    source: str = "worker",
) -> FailedWrite:
    return _record(
        category=category,
        error=error,
        batch_id=batch_id,
        points=len(events),
        source=source,
        attempts=attempts,
        payload_format=PayloadFormat.EVENTS,
        payload=json.dumps(events, ensure_ascii=False, separators=(",", ":")),
        entity_ids=_storable(_entity_ids(events)),
    )


def record_lines(
    lines: list[str], *, category: str, error: str, batch_id: str | None, attempts: int = 1
) -> FailedWrite:
    return _record(
        category=category,
        error=error,
        batch_id=batch_id,
        points=len(lines),
        attempts=attempts,
        payload_format=PayloadFormat.LINE_PROTOCOL,
        payload=_storable("\n".join(lines)),
        entity_ids=_storable(_entity_ids_of_lines(lines)),
    )


def _entity_ids_of_lines(lines: list[str]) -> str:
    found = set()
    for text in lines:
        head = text.split(" ", 1)[0]
        domain = entity = None
        for part in head.split(",")[1:]:
            key, _, value = part.partition("=")
            domain = value if key == "domain" else domain
            entity = value if key == "entity_id" else entity
        if domain and entity:
            found.add(f"{domain}.{entity}")
    return " ".join(sorted(found))


def record_raw(
    payload: str,
    *,
    source: str,
    error: str,
    context: str = "",
    batch_id: str | None = None,
    ordinal: int = 0,
    category: str = Category.UNPARSEABLE,
    redelivered: bool = False,
) -> FailedWrite:
    """A source message that could not be parsed (or carried): kept so an operator can see it;
    ``ordinal`` tells apart identical messages of one batch. A message the source's broker
    delivered again (after a restart lost our acknowledgement) finds the dead letter it became
    the first time, in whatever batch that was, instead of adding a copy."""
    fields = {
        "source": source,
        "payload_format": PayloadFormat.RAW,
        "payload": _storable(payload[:1_000_000]),
        "entity_ids": _storable(context[:1000]),
    }
    if redelivered:
        earlier = FailedWrite.objects.filter(category=category, **fields).first()
        if earlier is not None:
            log.info("dead_letter_already_recorded", id=earlier.pk, category=category)
            return earlier
    return _record(
        category=category, error=error, batch_id=batch_id, points=0, ordinal=ordinal, **fields
    )


def pending(categories: Iterable[str] = RETRYABLE) -> QuerySet[FailedWrite]:
    return FailedWrite.objects.filter(
        status=Status.PENDING, category__in=list(categories)
    ).order_by("first_failed_at")


def discard(queryset: QuerySet[FailedWrite]) -> int:
    return queryset.filter(status=Status.PENDING).update(
        status=Status.DISCARDED, resolved_at=timezone.now()
    )
