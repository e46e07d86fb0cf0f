"""What the processes leave on disk and in their logs: files under the data directory readable
by the service's user only, and gunicorn's own lines in the project's format, redacted."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.helpers import ROOT, service_env, wait_until
from tests.services import free_port

pytestmark = pytest.mark.timeout(180)


def modes(root: Path) -> dict[str, str]:
    found = {}
    for path in [root, *root.rglob("*")]:
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_files_under_the_data_directory_are_private_after_a_run(processes, tmp_path):
    data = tmp_path / "data"
    env = service_env(
        DATA_DIR=str(data),
        DATABASE_URL=f"sqlite:///{data / 'db.sqlite3'}",
        CELERY_BROKER_URL="filesystem://",
        PROMETHEUS_MULTIPROC_DIR=str(data / "metrics"),
    )
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 120}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], **run)
    assert migrated.returncode == 0, migrated.stderr
    # A message through the embedded broker and a counter sample, as a listener leaves them.
    publish = (
        "import django; django.setup(); "
        "from ingestor_project.celery import app; from ingestor_project import metrics; "
        "metrics.POINTS_WRITTEN.inc(); "
        "app.send_task('tasks.write_events', args=[[]], queue='ingest')"
    )
    published = subprocess.run([sys.executable, "-c", publish], **run)
    assert published.returncode == 0, published.stderr
    beat = processes.start(
        "beat", [sys.executable, "-m", "celery", "-A", "ingestor_project", "beat"], env
    )
    wait_until(lambda: list(data.glob("celerybeat-schedule*")), 60, "beat's schedule file")
    assert processes.stop(beat, signal.SIGTERM) in (0, -signal.SIGTERM)

    found = modes(data)
    assert "db.sqlite3" in found and any(name.startswith("metrics/") for name in found)
    assert any("broker" in name or "queue" in name for name in found), found
    wrong = {
        name: mode
        for name, mode in found.items()
        if mode != ("0o700" if (data / name).is_dir() else "0o600")
    }
    assert wrong == {}, wrong


def test_gunicorn_logs_in_the_project_format_with_query_tokens_redacted(processes, tmp_path):
    env = service_env(
        DATA_DIR=str(tmp_path),
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    port = free_port()
    logger = "ingestor_project.gunicorn_logging.GunicornLogger"
    processes.web("web", env, port, "--access-logfile", "-", "--logger-class", logger)

    def answered() -> bool:
        try:
            with urlopen(f"http://127.0.0.1:{port}/health?token=query-secret-42", timeout=5):
                return True
        except OSError:
            return False

    wait_until(answered, 60, "gunicorn to answer")
    wait_until(lambda: "http_request" in processes.log("web"), 30, "the access line")
    log = processes.log("web")
    assert "query-secret-42" not in log
    lines = [line for line in log.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # one format: every line is JSON
    [access] = [r for r in records if r["event"] == "http_request"]
    assert access["path"] == "/health?token=[REDACTED]"
    assert access["status"] == 200 and access["method"] == "GET"
    assert any(r["logger"] == "gunicorn.error" for r in records)  # "Listening at ..." too
    assert os.path.exists(tmp_path / "metrics")
