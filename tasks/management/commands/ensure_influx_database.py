"""python manage.py ensure_influx_database — create the InfluxDB 1.x database if it is missing.

API v2 buckets are created by the operator (they carry retention and permissions), so for v2
this only checks that InfluxDB answers.
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasks.errors import WriteError
from tasks.influx import V1Writer, writer_from_settings

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Create the InfluxDB 1.x database named by INFLUX_DATABASE when it does not exist."

    def handle(self, *args, **options) -> None:
        writer = writer_from_settings(settings)
        try:
            if not writer.ping():
                log.warning("influx_not_reachable", url=settings.INFLUX_URL, category="connection")
                return
            if isinstance(writer, V1Writer):
                self._create(writer)
        finally:
            writer.close()

    def _create(self, writer: V1Writer) -> None:
        query = urlencode({"q": f'CREATE DATABASE "{settings.INFLUX_DATABASE}"'})
        try:
            response = writer.request("POST", f"{writer.url}/query?{query}", None, writer.headers)
        except WriteError as exc:
            raise CommandError(str(exc)) from None
        if response.status != 200:
            raise CommandError(f"InfluxDB refused CREATE DATABASE: {response.status}")
        log.info("influx_database_ready", database=settings.INFLUX_DATABASE)
