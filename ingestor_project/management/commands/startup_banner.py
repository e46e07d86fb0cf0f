"""python manage.py startup_banner — once /ready answers, one block that says where the data
goes, how to log into the admin, where Flower and /ready are, and how to use a real Home
Assistant (`make run` prints it when everything has started)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ingestor_project.first_run import Banner, wait_ready


class Command(BaseCommand):
    help = "Wait for /ready, then print where everything is."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--web-url", default="http://127.0.0.1:8000")
        parser.add_argument("--flower-url", default="http://127.0.0.1:5555")
        parser.add_argument(
            "--wait", type=float, default=90.0, help="seconds to wait for /ready (0: no wait)"
        )

    def handle(self, *args, web_url: str, flower_url: str, wait: float, **options) -> None:
        ready = wait_ready(web_url.rstrip("/") + "/ready", wait)
        # One write: the block stays in one piece between the other processes' lines.
        self.stdout.write(Banner(web_url, flower_url, ready).text(), ending="")
        self.stdout.flush()
