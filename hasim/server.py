"""The simulated Home Assistant: a WebSocket server on the running event loop and its load pacing.

The generator works in time slices instead of sleeping per event, so it holds rates of tens of
thousands of events a second. Every generated event is recorded together with whether it was
written to at least one live subscription, which is what end-to-end tests compare against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from hasim.connection import Connection, abort_if_open, half_close
from hasim.history import Recorder
from hasim.load import EventSource
from hasim.poison import KINDS as POISON_KINDS
from hasim.protocol import Commands, authenticate

log = structlog.get_logger(__name__)

HA_VERSION = "2025.1.0"
DEFAULT_TOKEN = "simulator-token"  # noqa: S105 - a well-known default for local runs, not a secret
# The generator wakes this often and emits what the rate says is due by now. Sleeping per
# event cannot pace tens of thousands of events a second; slices can, within ~1 %. At home
# rates a wake costs far more than an event, so 50 ms (events reach clients at most that much
# after their stamps, which spread over the slice) rather than a wake per event at 100/s.
TICK_SECONDS = 0.05
MAX_TICK_SECONDS = 1.0
# After a stall (GC, a busy CPU) the owed events are caught up at most this many seconds'
# worth per slice, so one burst never blocks the loop for long.
MAX_CATCH_UP_SECONDS = 0.25
# A dropped connection is half-closed after its last frame is flushed; a client that has
# stopped reading may never let that happen, so the socket is aborted after this long.
DROP_GRACE_SECONDS = 30.0
# HA keeps its aiohttp heartbeat at 55 s; the default 20 s ping of `websockets` would close a
# client that pauses reading for back-pressure far sooner than HA does.
PING_INTERVAL = 55.0
# aiohttp's default max message size, which HA keeps.
MAX_INCOMING_BYTES = 4 * 1024 * 1024


class HomeAssistantSimulator:
    """A Home Assistant WebSocket API server with a load generator, on the running event loop.

    ``events`` bounds the run; ``max_recorded`` bounds how many generated events are kept in
    ``generated`` (None = all, 0 = none: only counters), which also bounds what history can
    answer, like HA's recorder purge. Delivery flags cost one byte per event and are always kept.
    ``poison_ratio`` of the events are poison records (hasim/poison.py; 0 = none).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        entities: int = 200,
        rate: float = 100.0,
        events: int | None = None,
        seed: int = 0,
        wait_for_subscriber: bool = True,
        other_events_ratio: float = 0.0,
        drop_every: float | None = None,
        max_recorded: int | None = None,
        record: bool = True,
        compression: bool = True,
        max_pending: int | None = None,
        max_outbox: int | None = None,
        ha_version: str = HA_VERSION,
        poison_ratio: float = 0.0,
        poison_kinds: tuple[str, ...] = POISON_KINDS,
        ssl_context: ssl.SSLContext | None = None,
        slice_seconds: float = TICK_SECONDS,
    ) -> None:
        self.host, self.port, self.token = host, port, token
        self.ssl_context = ssl_context  # a server context: wss:// (tests of the listener's TLS)
        self.rate, self.events = float(rate), events
        # Shorter slices send a home's events in more, smaller frames, as a real HA does.
        self.slice_seconds = slice_seconds
        self.seed = seed
        self.wait_for_subscriber = wait_for_subscriber
        self.drop_every = drop_every or None
        max_recorded = max_recorded if record else 0
        # aiohttp (and so HA) negotiates permessage-deflate when the client offers it.
        self.compression = compression
        # HA disconnects a client with more than 16384 queued messages; None = never.
        self.max_pending = max_pending
        # Benchmarks: generation pauses while a client has this many messages queued, so "as
        # fast as possible" is as fast as the client reads, not a backlog growing in memory
        # and taking CPU from the pipeline under test. None = generate at `rate` regardless.
        self.max_outbox = max_outbox
        self.ha_version = ha_version
        self.source = EventSource(
            entities,
            seed,
            other_events_ratio,
            record=max_recorded != 0,
            poison_ratio=poison_ratio,
            poison_kinds=poison_kinds,
        )
        self.entities = self.source.entities
        self.recorder = Recorder(max_recorded, self.source.started_us, self.source.initial)
        self.commands = Commands(self.entities, self.recorder, self._notify)
        self.connection_count = 0  # connections authenticated since start
        self.dropped_count = 0
        self.generation_finished = events is not None and events <= 0
        self._clients: set[Connection] = set()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed: asyncio.Event | None = None

    # --- what was generated and delivered --------------------------------------------------
    @property
    def generated(self) -> list[dict[str, Any]]:
        return self.recorder.events

    @property
    def generated_count(self) -> int:
        return self.recorder.count

    @property
    def delivered(self) -> bytearray:
        """One flag per generated event (absolute index): written to a live subscription."""
        return self.recorder.delivered

    @property
    def delivered_count(self) -> int:
        return self.recorder.delivered_count

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        return self.recorder.delivered_state_changes()

    def delivered_events(self) -> list[dict[str, Any]]:
        return self.recorder.delivered_events()

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{self.host}:{self.port}/api/websocket"

    async def start(self) -> None:
        self._server = await serve(
            self._serve_client,
            self.host,
            self.port,
            compression="deflate" if self.compression else None,
            max_size=MAX_INCOMING_BYTES,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_INTERVAL / 2,
            close_timeout=2,
            ssl=self.ssl_context,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.rate > 0 and not self.generation_finished:
            self._tasks.append(asyncio.create_task(self._generate()))
        if self.drop_every:
            self._tasks.append(asyncio.create_task(self._drop_periodically(self.drop_every)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            # Like HA shutting down: every client gets a close frame (1001 going away).
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # --- state for tests and operators -----------------------------------------------------
    def _live(self) -> list[Connection]:
        return [c for c in self._clients if c.authenticated and not c.dropping]

    @property
    def open_connections(self) -> int:
        return len(self._live())

    @property
    def subscriber_count(self) -> int:
        """Live subscriptions over all open connections."""
        return sum(len(c.subscriptions) for c in self._live())

    @property
    def done(self) -> bool:
        """Every event generated, and every one queued for a live client written out."""
        return self.generation_finished and not any(c.busy for c in self._live())

    def describe(self) -> str:
        return (
            f"generated={self.generated_count}/{self.events} delivered={self.delivered_count} "
            f"open_connections={self.open_connections} connections={self.connection_count} "
            f"subscriptions={self.subscriber_count} finished={self.generation_finished}"
        )

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float | None, what: str = "a condition"
    ) -> None:
        """Wait until predicate() is true; it is re-checked whenever the simulator's state moves."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    if self._changed is None:
                        self._changed = asyncio.Event()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"simulator: timed out after {timeout} s waiting for {what} ({self.describe()})"
            ) from None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # --- drops -----------------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Cut every client off at once, like an HA restart or a network cut; returns how many.

        Messages still queued are discarded (never delivered); a frame being written finishes
        first, so whatever counts as delivered really reached the client's socket.
        """
        dropped = [c for c in self._clients if not c.dropping]
        for conn in dropped:
            self._drop(conn)
        self.dropped_count += len(dropped)
        self._notify()
        return len(dropped)

    def _drop(self, conn: Connection) -> None:
        conn.dropping = True
        conn.outbox.clear()
        conn.wakeup.set()
        if conn.writer is None:  # still authenticating: nothing of ours is in flight
            half_close(conn.ws)
        asyncio.get_running_loop().call_later(DROP_GRACE_SECONDS, abort_if_open, conn.ws)

    async def _drop_periodically(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            count = self.drop_connections()
            if count:
                log.info("simulator_dropped_connections", connections=count, every_seconds=seconds)

    # --- connections -----------------------------------------------------------------------
    async def _serve_client(self, ws: ServerConnection) -> None:
        conn = Connection(ws)
        self._clients.add(conn)
        try:
            if await authenticate(ws, self.token, self.ha_version):
                conn.authenticated = True
                self.connection_count += 1
                self._notify()
                conn.writer = asyncio.create_task(self._write_loop(conn))
                await self._read_commands(conn)
        except ConnectionClosed:
            pass
        finally:
            await self._finish(conn)

    async def _finish(self, conn: Connection) -> None:
        # HA writes out what is queued (error replies included) before it closes a connection.
        conn.closing = True
        conn.wakeup.set()
        if conn.writer is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(conn.writer, timeout=5)
        self._clients.discard(conn)
        self._notify()

    async def _read_commands(self, conn: Connection) -> None:
        async for raw in conn.ws:
            if conn.dropping:
                return
            if not isinstance(raw, str):
                return  # HA: "Received non-Text message." and disconnects
            try:
                data = json.loads(raw)
            except ValueError:
                return  # HA: "Received invalid JSON." and disconnects
            for message in data if isinstance(data, list) else [data]:
                self.commands.handle(conn, message)

    async def _write_loop(self, conn: Connection) -> None:
        try:
            while not conn.dropping:
                if not conn.outbox:
                    if conn.closing:
                        return
                    self._notify()  # idle: `done` may have become true
                    conn.wakeup.clear()
                    await conn.wakeup.wait()
                    continue
                frame, indices = conn.take_frame()
                conn.sending = True
                await conn.ws.send(frame)
                conn.sending = False
                if indices:
                    self.recorder.mark_delivered(indices)
        except ConnectionClosed:
            conn.outbox.clear()
        finally:
            conn.sending = False
            if conn.dropping:
                half_close(conn.ws)
            self._notify()

    # --- generation ------------------------------------------------------------------------
    async def _generate(self) -> None:
        if self.wait_for_subscriber:
            await self.wait_for(lambda: self.subscriber_count > 0, None, "a subscriber")
        loop = asyncio.get_running_loop()
        started, emitted = loop.time(), 0
        self.source.restart_slices()
        burst = max(1, int(self.rate * MAX_CATCH_UP_SECONDS))
        # A slice per event when events are rarer than slices: a quiet demo wakes no one 100 x/s.
        tick = min(max(self.slice_seconds, 1.0 / self.rate), MAX_TICK_SECONDS)
        while not self.generation_finished:
            await asyncio.sleep(tick)
            due = min(int((loop.time() - started) * self.rate) - emitted, burst)
            if self.max_outbox is not None and self._backlogged():
                # Skipped slices are not owed: the rate resumes from now, without a burst.
                emitted += max(due, 0)
                continue
            if self.events is not None:
                due = min(due, self.events - self.generated_count)
            if due > 0:
                self.emit(due)
                emitted += due

    def finish_generation(self) -> int:
        """Stop generating now (the chaos run's end); returns how many events were generated."""
        self.events = self.generated_count
        self.generation_finished = True
        self._notify()
        return self.events

    def _backlogged(self) -> bool:
        limit = self.max_outbox or 0
        return any(len(c.outbox) >= limit for c in self._live() if c.subscriptions)

    def emit(self, count: int) -> None:
        """Generate `count` events now, spread over the time since the last slice, and queue
        them on every matching live subscription."""
        targets = [c for c in self._live() if c.subscriptions]
        source, recorder = self.source, self.recorder
        for us in source.spread(count):
            kind, event, text = source.next_event(us)
            index = recorder.record(event, us)
            for conn in targets:
                for sub_id in conn.targets(kind):
                    conn.outbox.append((f'{{"id":{sub_id},"type":"event","event":{text}}}', index))
        for conn in targets:
            conn.wakeup.set()
            if self.max_pending is not None and len(conn.outbox) > self.max_pending:
                log.warning("simulator_client_too_slow", pending=len(conn.outbox))
                self._drop(conn)
        if self.events is not None and self.generated_count >= self.events:
            self.generation_finished = True
        self._notify()
