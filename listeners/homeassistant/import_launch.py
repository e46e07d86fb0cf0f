"""HA_IMPORT_HISTORY_ON_FIRST_START: the listener starts ``import_history`` in the background on
its first run ever, and again after a restart while that import is unfinished.

The import is a process of its own (its own connection, its own bounded rate), so the live
stream never waits for it; the listener only starts it and, on its way out, stops it politely.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from django.conf import settings

from listeners.homeassistant.import_progress import Covered

log = structlog.get_logger(__name__)

# The import saves its position and exits within a second of SIGTERM; a little headroom.
STOP_TIMEOUT = 10.0


def instance_name(url: str) -> str:
    """This Home Assistant's name for its cursors: HA_INSTANCE, else the URL's host and port."""
    return settings.HA_INSTANCE or f"homeassistant:{urlsplit(url).netloc}"


def import_arguments(
    since: str | None, high_water_mark: int | None, covered: Covered | None
) -> list[str] | None:
    """The import_history arguments to run now, or None: only on the first run ever (no mark,
    no import yet), or to finish an import a restart interrupted."""
    if not since:
        return None
    if covered is not None:
        return None if covered.finished else ["--resume"]
    if high_water_mark is None:
        return ["--since", since]
    return None


class BackgroundImport:
    """``manage.py import_history ...`` as a child process of the listener."""

    def __init__(self, arguments: list[str]) -> None:
        manage = Path(settings.BASE_DIR) / "manage.py"
        self.command = [sys.executable, str(manage), "import_history", "--no-progress", *arguments]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)  # our own command, no shell
        log.info("history_import_launched", pid=self.process.pid, arguments=self.command[3:])

    def stop(self) -> None:
        """SIGTERM and a bounded wait: it saves its position, the next start resumes it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("history_import_did_not_stop", pid=process.pid)
