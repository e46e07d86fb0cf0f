"""Beat's schedule sent from inside a worker: ``celery worker --send-periodic-tasks`` (the home
shape of ``make run``).

``celery worker --beat`` forks a whole process (about 26 MiB of PSS, docs/benchmarks.md) to send
one task a minute. This step sends the same ``beat_schedule`` entries from the worker's own timer
(a thread, or the event loop where the transport has one). Like beat, enable it on one worker
only: every worker it runs in sends each task. Interval schedules only (seconds, a timedelta or
``celery.schedules.schedule``); a crontab entry stops the worker at start-up with its name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
import structlog
from celery import Celery, bootsteps
from celery.schedules import schedule
from kombu.exceptions import OperationalError

log = structlog.get_logger(__name__)

OPTION = click.Option(
    ["--send-periodic-tasks"],
    is_flag=True,
    default=False,
    help="Send beat_schedule's tasks from this worker's timer (one worker only, like beat).",
)


def interval_seconds(name: str, every: Any) -> float:
    """The period of one beat_schedule entry, in seconds."""
    if isinstance(every, int | float):
        return float(every)
    if isinstance(every, timedelta):
        return every.total_seconds()
    if type(every) is schedule:  # a crontab is a subclass: it has no fixed period
        return every.run_every.total_seconds()
    raise ValueError(f"periodic task {name!r}: only interval schedules run in the worker; use beat")


class PeriodicTasks(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, send_periodic_tasks: bool = False, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.enabled = send_periodic_tasks
        self.entries: list[Any] = []

    def start(self, worker: Any) -> None:
        for name, entry in worker.app.conf.beat_schedule.items():
            seconds = interval_seconds(name, entry["schedule"])
            self.entries.append(
                worker.timer.call_repeatedly(seconds, send, (worker.app, name, entry))
            )
            log.info("periodic_task_scheduled", task=name, every_s=seconds)

    def stop(self, worker: Any) -> None:
        for entry in self.entries:
            entry.cancel()
        self.entries.clear()


def send(app: Celery, name: str, entry: dict) -> None:
    """Send one entry's task as beat would. A broker out of reach is logged and the next period
    sends again; anything else propagates to Celery's timer, which logs it with its traceback
    and, like the broker case, keeps the entry scheduled (call_repeatedly reschedules first)."""
    try:
        app.send_task(
            entry["task"],
            args=entry.get("args", ()),
            kwargs=entry.get("kwargs", {}),
            **entry.get("options", {}),
        )
    except OperationalError as exc:
        log.warning("periodic_task_not_sent", task=name, error=str(exc), retry="next period")
        return
    log.info("periodic_task_sent", task=name)


def install(app: Celery) -> None:
    app.user_options["worker"].add(OPTION)
    app.steps["worker"].add(PeriodicTasks)
