"""What a newcomer's first `make run` needs besides the pipeline: an admin user they can log in
with, and one block that says where everything is once it is ready."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model

log = structlog.get_logger(__name__)

PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a password


def password_file() -> Path:
    return settings.DATA_DIR / PASSWORD_FILE


def ensure_admin() -> str:
    """Create the admin user unless it exists: "exists", "created" (password from the
    environment) or "generated" (password written once to a 0600 file, never logged)."""
    users = get_user_model()._default_manager
    username = settings.ADMIN_USERNAME
    if users.filter(username=username).exists():
        return "exists"
    password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(18)
    if not settings.ADMIN_PASSWORD:
        _write_secret(password_file(), password)
    users.create_superuser(username=username, email="", password=password)
    outcome = "created" if settings.ADMIN_PASSWORD else "generated"
    log.info("admin_user_created", username=username, login=_password_hint())
    return outcome


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may have had a wider mode
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


def _password_hint() -> str:
    if settings.ADMIN_PASSWORD:
        return "DJANGO_SUPERUSER_PASSWORD (as you set it)"
    if password_file().exists():
        return f"in {password_file()}"
    return "as set when the user was created (python manage.py changepassword to reset)"


def wait_ready(ready_url: str, timeout: float) -> bool:
    """Poll /ready until it answers 200 or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(ready_url, timeout=3) as response:  # noqa: S310 - our own http URL
                if response.status == 200:
                    return True
        except (URLError, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)


@dataclass
class Banner:
    web_url: str
    flower_url: str
    ready: bool

    def text(self) -> str:
        web = self.web_url.rstrip("/")
        state = "ready" if self.ready else "NOT ready yet (open /ready to see which check fails)"
        return "\n".join(
            [
                "",
                "=" * 78,
                f"  Home Assistant Activity Ingestor is {state}",
                f"  Data         {self._data()}",
                f"  Source       {self._source()}",
                f"  Admin        {web}/admin/  user {settings.ADMIN_USERNAME!r},"
                f" password {_password_hint()}",
                f"  Flower       {self._flower()}",
                f"  Readiness    {web}/ready   metrics {web}/metrics",
                "  Real HA      HA_URL=http://homeassistant.local:8123"
                " HA_TOKEN=<long-lived access token> make run",
                "  Stop         Ctrl-C (stops every process make run started)",
                "=" * 78,
                "",
            ]
        )

    def _flower(self) -> str:
        if self.flower_url:
            return f"{self.flower_url}  (Celery workers and tasks)"
        return "not started (saves ~60 MiB): make run FLOWER=1 starts it"

    @staticmethod
    def _data() -> str:
        if settings.INFLUX_API_VERSION == "2":
            return f"InfluxDB {settings.INFLUX_URL}  bucket {settings.INFLUX_BUCKET!r}"
        return f"InfluxDB {settings.INFLUX_URL}  database {settings.INFLUX_DATABASE!r}"

    @staticmethod
    def _source() -> str:
        if settings.HA_WEBSOCKET_URL:
            return f"Home Assistant at {settings.HA_WEBSOCKET_URL}"
        return (
            f"the built-in Home Assistant simulator ({settings.SIMULATOR_ENTITIES} entities,"
            f" {settings.SIMULATOR_RATE:g} events/s), not a real home"
        )
