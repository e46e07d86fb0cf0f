"""python manage.py health — the readiness checks in-process, exit 0 (ready) or 1, for a
container HEALTHCHECK. ``--only`` limits it to the checks a role depends on."""

from __future__ import annotations

import asyncio
import json
import sys

from django.core.management.base import BaseCommand

from ingestor_project.readiness import readiness_checks, report, run_checks


class Command(BaseCommand):
    help = "Run the readiness checks; exit 0 when all pass, 1 otherwise."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--only",
            default="",
            help="comma-separated check names (database, broker, influxdb, ...)",
        )

    def handle(self, *args, only: str = "", **options) -> None:
        checks = readiness_checks()
        wanted = {name.strip() for name in only.split(",") if name.strip()}
        if wanted:
            unknown = wanted - {name for name, _ in checks}
            if unknown:
                self.stderr.write(f"unknown checks: {', '.join(sorted(unknown))}")
                sys.exit(2)
            checks = [(name, check) for name, check in checks if name in wanted]
        body, ok = report(asyncio.run(run_checks(checks)))
        self.stdout.write(json.dumps(body))
        sys.exit(0 if ok else 1)
