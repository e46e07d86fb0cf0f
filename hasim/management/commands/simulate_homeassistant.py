"""python manage.py simulate_homeassistant — a stand-in Home Assistant for demos and benchmarks.

Serves HA's WebSocket API (the hasim package) with a generated load until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hasim.server import DEFAULT_TOKEN, TICK_SECONDS, HomeAssistantSimulator

log = structlog.get_logger(__name__)

# Operators watching a demo or a benchmark want a pulse, not a line per event.
STATS_EVERY_SECONDS = 10.0
# The loop checks the stop flag this often: a signal is acted on within a second.
POLL_SECONDS = 1.0


class Command(BaseCommand):
    help = "Serve a simulated Home Assistant WebSocket API with a generated event load."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
        parser.add_argument(
            "--token",
            default=None,
            help="access token clients must present (default: $SIMULATOR_TOKEN, else "
            f"{DEFAULT_TOKEN!r})",
        )
        parser.add_argument("--entities", type=int, default=200)
        parser.add_argument("--rate", type=float, default=100.0, help="events per second")
        parser.add_argument("--events", type=int, default=None, help="stop generating after N")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--drop-every", type=float, default=0.0, help="drop all connections every N s (0=never)"
        )
        parser.add_argument(
            "--other-events-ratio",
            type=float,
            default=0.0,
            help="share of events that are call_service / automation_triggered",
        )
        parser.add_argument(
            "--max-recorded",
            type=int,
            default=100_000,
            help="generated events kept for history queries (0 = none: cheapest, for benchmarks)",
        )
        parser.add_argument(
            "--max-outbox",
            type=int,
            default=None,
            help="pause generating while a client has this many messages unsent (benchmarks: "
            "with a high --rate, generate as fast as the client reads)",
        )
        parser.add_argument(
            "--no-wait-for-subscriber",
            action="store_true",
            help="start generating at once instead of at the first subscription",
        )
        parser.add_argument(
            "--no-compression", action="store_true", help="refuse permessage-deflate"
        )
        parser.add_argument(
            "--slice",
            type=float,
            default=TICK_SECONDS,
            help="seconds between generation slices; 0.01 sends a home's events one frame each, "
            "like a real HA (default %(default)s)",
        )
        parser.add_argument(
            "--exit-when-done", action="store_true", help="exit once --events are all written"
        )

    def handle(self, *args, **options) -> None:
        simulator = HomeAssistantSimulator(**self._simulator_options(options))
        runner = SimulatorRunner(simulator, exit_when_done=options["exit_when_done"])
        try:
            asyncio.run(runner.run())
        except OSError as exc:
            # Port in use, address not available: a start-up failure exits non-zero.
            raise CommandError(f"simulator could not listen: {exc}") from exc

    def _simulator_options(self, options: dict) -> dict:
        if options["rate"] < 0 or options["entities"] < 1 or options["slice"] <= 0:
            raise CommandError("--rate must be >= 0, --entities >= 1 and --slice > 0")
        return {
            "host": options["host"],
            "port": options["port"],
            "token": options["token"] or settings.SIMULATOR_TOKEN or DEFAULT_TOKEN,
            "entities": options["entities"],
            "rate": options["rate"],
            "events": options["events"],
            "seed": options["seed"],
            "drop_every": options["drop_every"] or None,
            "other_events_ratio": options["other_events_ratio"],
            "max_recorded": options["max_recorded"],
            "wait_for_subscriber": not options["no_wait_for_subscriber"],
            "compression": not options["no_compression"],
            "max_outbox": options["max_outbox"],
            "slice_seconds": options["slice"],
        }


class SimulatorRunner:
    """Runs a simulator until asked to stop; logs a pulse. Tests drive it with request_stop()."""

    def __init__(self, simulator: HomeAssistantSimulator, *, exit_when_done: bool = False):
        self.simulator = simulator
        self.exit_when_done = exit_when_done
        self.stop_event: asyncio.Event | None = None
        self._reported_done = False

    def request_stop(self) -> None:
        """Safe from a signal handler: only sets a flag the loop checks."""
        if self.stop_event is not None:
            self.stop_event.set()

    async def run(self) -> None:
        self.stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop)
        sim = self.simulator
        await sim.start()
        log.info(
            "simulator_listening",
            url=sim.url,
            entities=len(sim.entities),
            rate=sim.rate,
            events=sim.events,
            seed=sim.seed,
            drop_every=sim.drop_every,
            waiting_for_subscriber=sim.wait_for_subscriber,
        )
        try:
            await self._loop()
        finally:
            await sim.stop()
            log.info("simulator_stopped", **self.stats())

    async def _loop(self) -> None:
        assert self.stop_event is not None
        next_stats = time.monotonic() + STATS_EVERY_SECONDS
        while not self.stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), POLL_SECONDS)
            if self.step() and self.exit_when_done:
                return
            if time.monotonic() >= next_stats:
                next_stats += STATS_EVERY_SECONDS
                log.info("simulator_stats", **self.stats())

    def step(self) -> bool:
        """One check between waits; returns whether the whole run is done."""
        done = self.simulator.done
        if done and not self._reported_done:
            self._reported_done = True
            log.info("simulator_done", **self.stats())
        return done

    def stats(self) -> dict[str, int]:
        sim = self.simulator
        return {
            "generated": sim.generated_count,
            "delivered": sim.delivered_count,
            "open_connections": sim.open_connections,
            "connections": sim.connection_count,
            "subscriptions": sim.subscriber_count,
            "drops": sim.dropped_count,
        }
