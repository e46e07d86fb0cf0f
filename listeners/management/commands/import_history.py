"""python manage.py import_history --since 30d — bring Home Assistant's recorder history along."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
import time

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.codec import ORJSON
from events.times import InvalidTime, iso_to_ns, ns_to_iso
from ingestor_project.durations import parse_duration
from ingestor_project.tls import client_context
from listeners.batching import PublisherThread
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy
from listeners.homeassistant.errors import CONNECTION_ERRORS, AuthFailed
from listeners.homeassistant.history_import import HistoryImport, import_name
from listeners.homeassistant.import_launch import instance_name
from listeners.homeassistant.import_progress import (
    ImportProgress,
    load_covered,
    plan,
    progress_bar,
)
from listeners.process import settings_batcher

log = structlog.get_logger(__name__)

# A tenth of what one worker process writes (docs/benchmarks.md): the live stream's batches
# wait behind at most a few seconds of history in the shared queue.
DEFAULT_RATE = 2000.0
# Batches sealed but not yet in the broker; the broker's queue is what the rate bounds.
DEFAULT_IN_FLIGHT = 4


class Command(BaseCommand):
    help = "Import Home Assistant's recorder history into InfluxDB (idempotent, resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="how far back from now, e.g. 30d, 12h (default 10d)")
        parser.add_argument("--start", help="ISO 8601 start (UTC unless it has an offset)")
        parser.add_argument("--end", help="ISO 8601 end (default: now)")
        parser.add_argument("--entity", action="append", default=[], help="entity id or glob")
        parser.add_argument("--domain", action="append", default=[], help="a domain, e.g. light")
        parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="events/s; 0: no cap")
        parser.add_argument("--max-in-flight", type=int, default=DEFAULT_IN_FLIGHT)
        parser.add_argument("--window", default=None, help="time per history request, e.g. 1h")
        parser.add_argument("--restart", action="store_true", help="ignore earlier progress")
        parser.add_argument("--resume", action="store_true", help="finish an interrupted run")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        if not settings.HA_WEBSOCKET_URL:
            raise CommandError("HA_URL is not set: the history comes from a real Home Assistant")
        url = settings.HA_WEBSOCKET_URL
        name = import_name(instance_name(url), options["entity"], options["domain"])
        span = self._span(name, options)
        if span is None:
            return
        start_ns, end_ns, covered_start = span
        progress = ImportProgress(name, start_ns, end_ns, progress_bar(not options["no_progress"]))
        progress.begin(covered_start, start_ns)
        batcher = settings_batcher("homeassistant_import", ORJSON)
        batcher.max_pending = max(1, options["max_in_flight"])
        batcher.on_published = progress.on_published
        importer = HistoryImport(
            url,
            settings.HA_TOKEN,
            batcher,
            progress,
            policy=self._policy(options["window"]),
            filters=(
                EntityFilter(**settings.ENTITY_FILTER),
                EntityFilter(include_globs=options["entity"], include_domains=options["domain"]),
            ),
            rate=options["rate"],
            ssl_context=self._ssl_context(url),
        )
        self._run(importer, batcher, progress, name)

    def _run(self, importer: HistoryImport, batcher, progress: ImportProgress, name: str) -> None:
        publisher = PublisherThread(batcher)
        publisher.start()
        log.info("history_import_started", name=name, **self._bounds(progress))
        started, finished = time.monotonic(), False
        try:
            finished = asyncio.run(self._loop(importer))
        except AuthFailed as exc:
            raise CommandError(f"Home Assistant refused the token: {exc}") from None
        except CONNECTION_ERRORS as exc:
            raise CommandError(f"Home Assistant unreachable: {type(exc).__name__}") from None
        finally:
            drained = batcher.drain(settings.INGEST_SHUTDOWN_TIMEOUT)
            publisher.stop()
            progress.finish()
        seconds = round(time.monotonic() - started, 1)
        event = "history_import_done" if finished else "history_import_interrupted"
        log.info(event, name=name, seconds=seconds, **importer.stats)
        if not drained:
            log.error("history_import_unpublished", events=batcher.pending_events)
            sys.exit(1)

    @staticmethod
    async def _loop(importer: HistoryImport) -> bool:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, importer.request_stop)
        return await importer.run()

    def _span(self, name: str, options: dict) -> tuple[int, int, int] | None:
        """(read from, to, covered range start), or None when there is nothing to read."""
        covered = None if options["restart"] else load_covered(name)
        if options["resume"]:
            if covered is None or covered.finished:
                log.info("history_import_nothing_to_resume", name=name)
                return None
            start_ns, end_ns = covered.start_ns, covered.end_ns
        else:
            start_ns, end_ns = self._range(options)
        reading_from, covered_start = plan(start_ns, end_ns, covered)
        if reading_from >= end_ns:
            log.info("history_import_already_done", name=name, until=ns_to_iso(end_ns))
            return None
        return reading_from, end_ns, covered_start

    @staticmethod
    def _range(options: dict) -> tuple[int, int]:
        end_ns = _iso_ns(options["end"], "--end") if options["end"] else time.time_ns()
        if options["start"]:
            if options["since"]:
                raise CommandError("give --since or --start, not both")
            start_ns = _iso_ns(options["start"], "--start")
        else:
            start_ns = end_ns - int(_seconds(options["since"] or "10d", "--since") * 1e9)
        if start_ns >= end_ns:
            raise CommandError("the start must be before the end")
        return start_ns, end_ns

    @staticmethod
    def _policy(window: str | None) -> BackfillPolicy:
        seconds = _seconds(window, "--window") if window else settings.BACKFILL_WINDOW
        return BackfillPolicy(
            chunk_entities=settings.BACKFILL_CHUNK_ENTITIES,
            window_ns=int(seconds * 1e9),
            timeout=settings.BACKFILL_TIMEOUT,
        )

    @staticmethod
    def _ssl_context(url: str) -> ssl.SSLContext | None:
        if url.startswith("wss://"):
            return client_context(settings.HA_TLS, verify=settings.HA_VERIFY_SSL)
        return None

    @staticmethod
    def _bounds(progress: ImportProgress) -> dict[str, str]:
        return {"start": ns_to_iso(progress.start_ns), "end": ns_to_iso(progress.end_ns)}


def _seconds(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None


def _iso_ns(text: str, option: str) -> int:
    """--start/--end as nanoseconds: UTC unless the text carries an offset."""
    try:
        return iso_to_ns(text)
    except InvalidTime:
        raise CommandError(f"{option}={text!r} is not an ISO 8601 time") from None
