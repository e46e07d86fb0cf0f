"""python manage.py convert_ha_config configuration.yaml — HA's influxdb: block as env lines."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Print the environment lines equivalent to the influxdb: block of HA's configuration."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("configuration", help="path of HA's configuration.yaml")
        parser.add_argument(
            "--resolve-secrets",
            action="store_true",
            help="print !secret values (from secrets.yaml beside it) instead of *_FILE lines",
        )

    def handle(self, *args, **options) -> None:
        import yaml

        from ingestor_project.ha_config import convert_file

        path = Path(options["configuration"])
        try:
            text = convert_file(path, options["resolve_secrets"])
        except OSError as exc:
            raise CommandError(f"{exc.filename}: {exc.strerror}") from None
        except (ValueError, yaml.YAMLError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(text, ending="")
