"""The first run's admin user (ensure_admin) and start-up banner (startup_banner), as `make run`
calls them: separate processes on a data directory of their own (SQLite)."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.helpers import ROOT, migrate, service_env


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    env = service_env(DATA_DIR=str(tmp_path), INFLUX_URL="http://127.0.0.1:18186")
    env.pop("DATABASE_URL", None)
    migrate(env)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def can_log_in(env: dict[str, str], username: str, password: str) -> bool:
    # check_password, not authenticate(): the login throttle's backend wants a request.
    code = (
        "import sys; from django.contrib.auth import get_user_model; "
        "user = get_user_model().objects.get(username=sys.argv[1]); "
        "sys.stdout.write(str(user.is_superuser and user.check_password(sys.argv[2])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}", username, password],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().endswith("True")


def test_ensure_admin_generates_a_password_once_into_a_private_file(env, tmp_path):
    first = manage(env, "ensure_admin")
    password_file = tmp_path / "admin-password"
    password = password_file.read_text().strip()
    assert len(password) >= 20
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password not in first.stdout + first.stderr
    assert "admin_user_created" in first.stderr
    assert can_log_in(env, "admin", password)

    again = manage(env, "ensure_admin")
    assert password_file.read_text().strip() == password
    assert "admin_user_created" not in again.stderr


def test_ensure_admin_uses_the_password_from_the_environment(env, tmp_path):
    env = {**env, "DJANGO_SUPERUSER_USERNAME": "operator"}
    env["DJANGO_SUPERUSER_PASSWORD"] = "s3cret-Pw!"
    result = manage(env, "ensure_admin")
    assert "s3cret-Pw!" not in result.stdout + result.stderr
    assert not (tmp_path / "admin-password").exists()
    assert can_log_in(env, "operator", "s3cret-Pw!")


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_startup_banner_says_where_everything_is_once_ready(env, tmp_path):
    manage(env, "ensure_admin")
    server = HTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web = f"http://127.0.0.1:{server.server_port}"
    try:
        banner = manage(
            env, "startup_banner", "--web-url", web, "--flower-url", "http://127.0.0.1:5999"
        ).stdout
    finally:
        server.shutdown()
    assert "Ingestor is ready" in banner
    assert "InfluxDB http://127.0.0.1:18186  database 'home_assistant'" in banner
    assert f"{web}/admin/  user 'admin', password in {tmp_path / 'admin-password'}" in banner
    assert "http://127.0.0.1:5999" in banner
    assert f"{web}/ready" in banner
    assert "HA_URL=" in banner and "HA_TOKEN=" in banner
    assert "simulator" in banner
    assert (tmp_path / "admin-password").read_text().strip() not in banner


def test_startup_banner_says_so_when_not_ready_by_the_deadline(env):
    banner = manage(env, "startup_banner", "--web-url", "http://127.0.0.1:9", "--wait", "0").stdout
    assert "NOT ready yet" in banner
