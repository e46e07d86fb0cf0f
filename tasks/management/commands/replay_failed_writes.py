"""python manage.py replay_failed_writes — replay dead letters by hand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tasks.models import RETRYABLE, Category
from tasks.replay import replay_pending


class Command(BaseCommand):
    help = "Write pending dead letters to InfluxDB again (retryable categories by default)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--id",
            type=int,
            action="append",
            dest="ids",
            help="replay only this dead letter (repeatable)",
        )
        parser.add_argument(
            "--category",
            action="append",
            choices=Category.values,
            help="replay this category (repeatable); e.g. rejected after a fix",
        )
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, ids=None, category=None, limit=1000, **options) -> None:
        categories = category or ([c.value for c in Category] if ids else RETRYABLE)
        replayed = replay_pending(limit=limit, categories=categories, ids=ids)
        self.stdout.write(f"{replayed} dead letters replayed")
