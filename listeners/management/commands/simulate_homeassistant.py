"""python manage.py simulate_homeassistant — serve the Home Assistant WebSocket API simulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import structlog
from django.core.management.base import BaseCommand

from listeners.ha_simulator import HomeAssistantSimulator

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Serve a simulated Home Assistant WebSocket API with a configurable event load."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8123)
        parser.add_argument(
            "--token",
            default=os.environ.get("SIMULATOR_TOKEN", "simulator-token"),
            help="access token clients must send (default: $SIMULATOR_TOKEN)",
        )
        parser.add_argument("--entities", type=int, default=200)
        parser.add_argument("--rate", type=float, default=100.0, help="events per second")
        parser.add_argument(
            "--events", type=int, default=None, help="stop emitting after this many events"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--drop-every",
            type=float,
            default=0.0,
            help="drop every connection each N seconds (0: never)",
        )
        parser.add_argument(
            "--other-events-ratio",
            type=float,
            default=0.0,
            help="share of call_service/automation_triggered events",
        )

    def handle(self, *args, **options) -> None:
        simulator = HomeAssistantSimulator(
            host=options["host"],
            port=options["port"],
            token=options["token"],
            entities=options["entities"],
            rate=options["rate"],
            events=options["events"],
            seed=options["seed"],
            other_events_ratio=options["other_events_ratio"],
            record=False,
        )
        asyncio.run(self._serve(simulator, options["drop_every"]))

    async def _serve(self, simulator: HomeAssistantSimulator, drop_every: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await simulator.start()
        log.info(
            "simulator_listening",
            url=simulator.url,
            entities=len(simulator.entities),
            rate=simulator.rate,
            events=simulator.limit,
        )
        last_drop = loop.time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            if drop_every and loop.time() - last_drop >= drop_every:
                simulator.drop_connections()
                last_drop = loop.time()
                log.info("simulator_dropped_connections")
        await simulator.stop()
        log.info(
            "simulator_stopped",
            generated=simulator.generated_count,
            delivered=simulator.delivered_count,
        )
