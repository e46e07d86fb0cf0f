"""The admin is styled in every deployment shape: gunicorn with DEBUG off serves the static
files itself (whitenoise), collected as `make run` and the image do, or straight from the apps."""

from __future__ import annotations

import subprocess
import sys
from urllib.request import urlopen

import pytest

from tests.helpers import ROOT, Processes, service_env, wait_until
from tests.services import free_port


def fetch(url: str) -> tuple[int, str, bytes] | None:
    try:
        with urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except OSError:
        return None


@pytest.mark.parametrize("collected", [True, False])
def test_gunicorn_with_debug_off_serves_the_admin_css(tmp_path, collected):
    env = service_env(DEBUG="false", DATA_DIR=str(tmp_path), STATIC_ROOT=str(tmp_path / "static"))
    if collected:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
        assert (tmp_path / "static" / "admin" / "css" / "base.css").exists()
    processes = Processes(tmp_path)
    port = free_port()
    try:
        processes.web("web", env, port)
        url = f"http://127.0.0.1:{port}/static/admin/css/base.css"
        status, content_type, body = wait_until(lambda: fetch(url), 60, "gunicorn to serve CSS")
    finally:
        processes.stop_all()
    assert status == 200
    assert content_type.startswith("text/css")
    assert b"body" in body
