"""python manage.py ensure_admin — the admin user of a first run: created once, its generated
password written to DATA_DIR/admin-password (0600) and never logged (`make run` calls it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ingestor_project.first_run import ensure_admin


class Command(BaseCommand):
    help = "Create the admin user (DJANGO_SUPERUSER_USERNAME) unless it exists."

    def handle(self, *args, **options) -> None:
        ensure_admin()
