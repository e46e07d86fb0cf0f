"""python manage.py listen_homeassistant — the long-lived Home Assistant WebSocket listener."""

from __future__ import annotations

import asyncio
import secrets
import signal
import ssl
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand

from events.codec import ORJSON
from events.contract import SOURCE_HOMEASSISTANT
from ingestor_project.tls import client_context
from listeners.batching import Batcher
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy
from listeners.homeassistant.client import HomeAssistantListener
from listeners.homeassistant.cursor import HighWaterMark
from listeners.homeassistant.history_import import import_name
from listeners.homeassistant.import_launch import BackgroundImport, import_arguments, instance_name
from listeners.homeassistant.import_progress import load_covered
from listeners.process import ListenerServices, report_stop, settings_batcher

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Stream Home Assistant events over its WebSocket API into the ingest queue."

    def handle(self, *args, **options) -> None:
        url, token, simulator = self._source()
        # Events decoded by orjson travel as orjson: exact, and cheaper than kombu's json.
        batcher = settings_batcher(SOURCE_HOMEASSISTANT, ORJSON)
        listener = HomeAssistantListener(
            url,
            token,
            batcher,
            event_types=settings.HA_EVENT_TYPES,
            ssl_context=self._ssl_context(url),
            entity_filter=EntityFilter(**settings.ENTITY_FILTER),
            cursor=self._cursor(url),
            backfill=BackfillPolicy(
                enabled=settings.BACKFILL_ENABLED,
                max_lookback_ns=int(settings.BACKFILL_MAX_LOOKBACK * 1e9),
                overlap_ns=int(settings.BACKFILL_OVERLAP * 1e9),
                chunk_entities=settings.BACKFILL_CHUNK_ENTITIES,
                window_ns=int(settings.BACKFILL_WINDOW * 1e9),
                timeout=settings.BACKFILL_TIMEOUT,
            ),
            ping_interval=settings.HA_PING_INTERVAL,
            ping_timeout=settings.HA_PING_TIMEOUT,
        )
        batcher.on_published = listener.on_batch_published
        services = ListenerServices(
            SOURCE_HOMEASSISTANT, batcher, lambda: self._status(listener, batcher)
        )
        services.start()
        history_import = self._history_import(url, listener.cursor)
        try:
            asyncio.run(self._run(listener))
        finally:
            if history_import is not None:
                history_import.stop()
            drained = batcher.drain(settings.INGEST_SHUTDOWN_TIMEOUT)
            if listener.cursor is not None:
                listener.cursor.save()  # the newest confirmed position, not one a second old
            services.stop()
            if simulator is not None:
                simulator.stop()
        report_stop(batcher, listener.stats, drained)

    @staticmethod
    def _ssl_context(url: str) -> ssl.SSLContext | None:
        if url.startswith("wss://"):
            return client_context(settings.HA_TLS, verify=settings.HA_VERIFY_SSL)
        if settings.HA_TLS.configured:
            log.warning("ha_tls_files_unused", hint="HA_URL is not https:// or wss://")
        return None

    @staticmethod
    def _cursor(url: str) -> HighWaterMark:
        name = settings.HA_INSTANCE or f"homeassistant:{urlsplit(url).netloc}"
        cursor = HighWaterMark(name)
        position = cursor.load()
        log.info("ha_high_water_mark", instance=name, position_ns=position)
        return cursor

    @staticmethod
    def _history_import(url: str, cursor: HighWaterMark | None) -> BackgroundImport | None:
        """HA_IMPORT_HISTORY_ON_FIRST_START: the import as a process of its own, when due."""
        if not settings.HA_WEBSOCKET_URL or cursor is None:
            return None  # the built-in simulator has no history worth importing
        arguments = import_arguments(
            settings.HA_IMPORT_HISTORY_ON_FIRST_START,
            cursor.confirmed,
            load_covered(import_name(instance_name(url), [], [])),
        )
        if arguments is None:
            return None
        background = BackgroundImport(arguments)
        background.start()
        return background

    @staticmethod
    def _status(listener: HomeAssistantListener, batcher: Batcher) -> tuple[bool, dict]:
        return listener.connected, {
            **listener.stats,
            "pending_events": batcher.pending_events,
            "published_events": batcher.published_events,
        }

    async def _run(self, listener: HomeAssistantListener) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, listener.request_stop)
        await listener.run()

    def _source(self):
        if settings.HA_WEBSOCKET_URL:
            return settings.HA_WEBSOCKET_URL, settings.HA_TOKEN, None
        from hasim.thread import SimulatorThread

        token = secrets.token_urlsafe(24)
        # A bounded record keeps memory flat however long the demo runs.
        simulator = SimulatorThread(
            token=token,
            entities=settings.SIMULATOR_ENTITIES,
            rate=settings.SIMULATOR_RATE,
            max_recorded=100_000,
        )
        simulator.start()
        log.warning(
            "ha_simulator_in_use",
            url=simulator.url,
            entities=settings.SIMULATOR_ENTITIES,
            rate=settings.SIMULATOR_RATE,
            hint="HA_URL is not set: events come from the built-in Home Assistant "
            "simulator. Set HA_URL and HA_TOKEN to listen to a real Home Assistant.",
        )
        return simulator.url, token, simulator
