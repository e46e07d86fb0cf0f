"""python manage.py ensure_influx_database — create what InfluxQL queries need, when missing.

API v1: the database named by INFLUX_DATABASE. API v2: buckets are created by the operator (they
carry retention and permissions), so this maps INFLUX_DATABASE (retention policy autogen) to
INFLUX_BUCKET — the DBRP mapping InfluxQL clients such as Grafana's InfluxDB datasource need.
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasks.errors import WriteError
from tasks.influx import V1Writer, V2Writer, writer_from_settings

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = (
        "Create the InfluxDB 1.x database named by INFLUX_DATABASE, or with API v2 the DBRP "
        "mapping of INFLUX_DATABASE to INFLUX_BUCKET, when it does not exist."
    )

    def handle(self, *args, **options) -> None:
        writer = writer_from_settings(settings)
        try:
            if not writer.ping():
                log.warning("influx_not_reachable", url=settings.INFLUX_URL, category="connection")
                return
            if isinstance(writer, V1Writer):
                self._create(writer)
            elif isinstance(writer, V2Writer):
                self._map_database(writer)
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

    def _map_database(self, writer: V2Writer) -> None:
        try:
            outcome = writer.ensure_dbrp(settings.INFLUX_DATABASE)
        except WriteError as exc:
            # Only InfluxQL readers (dashboards) need the mapping: writes work without it, so a
            # token that may not create one must not keep the whole stack from starting.
            log.warning("influx_dbrp_not_created", error=str(exc), category=exc.category)
            return
        log.info(
            "influx_dbrp_ready",
            database=settings.INFLUX_DATABASE,
            bucket=settings.INFLUX_BUCKET,
            outcome=outcome,
        )
