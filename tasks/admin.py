"""Dead letters in the Django admin: list, filter, search, inspect; replay, discard, export.
Read-only otherwise: a dead letter is evidence, not something to edit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import structlog
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils.html import format_html

from tasks import deadletters
from tasks.breaker import INFLUX_BREAKER, CircuitBreaker
from tasks.export import write_csv
from tasks.ingest import get_writer
from tasks.models import BreakerState, FailedWrite, PayloadFormat
from tasks.replay import lines_of, replay_letter

log = structlog.get_logger(__name__)
# The list shows this many entity ids of a letter; the detail page shows them all.
LISTED_ENTITIES = 3


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows a worker writes: an admin looks and acts through actions, never edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FailedWrite)
class FailedWriteAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "category",
        "status",
        "source",
        "entities",
        "points",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "short_error",
    )
    list_filter = ("category", "status", "source", "first_failed_at", "last_failed_at")
    search_fields = ("entity_ids", "batch_id", "error")
    date_hierarchy = "first_failed_at"
    actions = ("replay", "discard", "export_csv", "export_line_protocol")
    readonly_fields = [f.name for f in FailedWrite._meta.fields if f.name != "payload"] + [
        "event_times",
        "payload_view",
    ]
    exclude = ("payload",)

    def has_replay_permission(self, request) -> bool:
        # Replaying and discarding change a dead letter's status: the model's change permission.
        return request.user.has_perm("tasks.change_failedwrite")

    @admin.display(description="error")
    def short_error(self, obj: FailedWrite) -> str:
        return obj.error[:120]

    @admin.display(description="entity ids")
    def entities(self, obj: FailedWrite) -> str:
        ids = obj.entity_ids.split()
        more = f" (+{len(ids) - LISTED_ENTITIES} more)" if len(ids) > LISTED_ENTITIES else ""
        return " ".join(ids[:LISTED_ENTITIES]) + more

    @admin.display(description="event times (UTC)")
    def event_times(self, obj: FailedWrite) -> str:
        stamps = payload_times(obj)
        if not stamps:
            return "–"
        first, last = human_ns(min(stamps)), human_ns(max(stamps))
        return first if first == last else f"{first} to {last}"

    @admin.display(description="payload")
    def payload_view(self, obj: FailedWrite) -> str:
        text = obj.payload
        if obj.payload_format == PayloadFormat.EVENTS:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text[:200_000])

    @admin.action(description="Replay the selected dead letters", permissions=["replay"])
    def replay(self, request, queryset) -> None:
        writer, done, failed = get_writer(), 0, 0
        for letter in queryset.filter(status="pending"):
            if replay_letter(letter, writer, settings.INGEST_SCHEMA):
                done += 1
            else:
                failed += 1
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"{done} replayed, {failed} failed again", level)

    @admin.action(description="Discard the selected dead letters", permissions=["replay"])
    def discard(self, request, queryset) -> None:
        self.message_user(request, f"{deadletters.discard(queryset)} discarded")

    @admin.action(description="Export as CSV")
    def export_csv(self, request, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="failed-writes.csv"'
        write_csv(response, queryset.order_by("pk"))
        return response

    @admin.action(description="Export as InfluxDB line protocol")
    def export_line_protocol(self, request, queryset) -> HttpResponse:
        lines = []
        for letter in queryset.order_by("pk"):
            try:
                lines.extend(lines_of(letter, settings.INGEST_SCHEMA))
            except ValueError:
                continue  # raw source messages have no points
        response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain")
        response["Content-Disposition"] = 'attachment; filename="failed-writes.lp"'
        return response


def payload_times(letter: FailedWrite) -> list[int]:
    """The nanosecond timestamps of a letter's events or lines (none for a raw message)."""
    try:
        if letter.payload_format == PayloadFormat.EVENTS:
            return [int(e["time"]) for e in json.loads(letter.payload) if "time" in e]
        if letter.payload_format == PayloadFormat.LINE_PROTOCOL:
            return [int(line.rsplit(" ", 1)[1]) for line in letter.payload.splitlines() if line]
    except (ValueError, TypeError, KeyError, IndexError):
        pass  # a payload the admin cannot read still shows as it is
    return []


def human_ns(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1000 / 1e6, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@admin.register(BreakerState)
class BreakerStateAdmin(ReadOnlyAdmin):
    list_display = ("name", "state", "failures", "opened_at", "probe_until", "updated_at")
    readonly_fields = ("name", "state", "failures", "opened_at", "probe_until", "updated_at")
    actions = ("reset",)

    def has_reset_permission(self, request) -> bool:
        return request.user.has_perm("tasks.change_breakerstate")

    def changelist_view(self, request, extra_context=None):
        # A closed breaker may have no row (a reset deletes it): show it closed, not absent.
        BreakerState.objects.get_or_create(name=INFLUX_BREAKER)
        return super().changelist_view(request, extra_context)

    @admin.action(description="Reset (close) the selected breakers", permissions=["reset"])
    def reset(self, request, queryset) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            breaker = CircuitBreaker(
                name, threshold=settings.BREAKER_THRESHOLD, cooldown=settings.BREAKER_COOLDOWN
            )
            breaker.reset()
            BreakerState.objects.get_or_create(name=name)
        log.warning("breaker_reset", breakers=names, user=request.user.get_username())
        self.message_user(request, f"{len(names)} breaker(s) reset to closed", messages.SUCCESS)
