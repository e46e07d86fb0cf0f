"""Dead letters in the Django admin: list, filter, search, inspect; replay, discard, export.
Read-only otherwise: a dead letter is evidence, not something to edit."""

from __future__ import annotations

import csv
import json

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils.html import format_html

from tasks import deadletters
from tasks.ingest import get_writer
from tasks.models import BreakerState, FailedWrite, PayloadFormat
from tasks.replay import lines_of, replay_letter


@admin.register(FailedWrite)
class FailedWriteAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "category",
        "status",
        "source",
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
        "payload_view"
    ]
    exclude = ("payload",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_replay_permission(self, request) -> bool:
        # Replaying and discarding change a dead letter's status: the model's change permission.
        return request.user.has_perm("tasks.change_failedwrite")

    @admin.display(description="error")
    def short_error(self, obj: FailedWrite) -> str:
        return obj.error[:120]

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
        writer = csv.writer(response)
        columns = [
            "id",
            "category",
            "status",
            "source",
            "batch_id",
            "points",
            "attempts",
            "first_failed_at",
            "last_failed_at",
            "entity_ids",
            "error",
            "payload",
        ]
        writer.writerow(columns)
        for letter in queryset.order_by("pk"):
            writer.writerow([getattr(letter, name) for name in columns])
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


@admin.register(BreakerState)
class BreakerStateAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "failures", "opened_at", "updated_at")
    readonly_fields = ("name", "state", "failures", "opened_at", "probe_until", "updated_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
