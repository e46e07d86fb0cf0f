"""The Home Assistant WebSocket listener: authenticate, subscribe, normalise, batch.

The loop lives here in small steps (``authenticate``, ``subscribe``, ``handle_frame``,
``handle_message``) that tests call directly; the management command only wires it up.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from events.contract import SOURCE_HOMEASSISTANT, unparseable_event
from ingestor_project.tls import connection_category
from listeners.backoff import Backoff
from listeners.batching import Batch, Batcher
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy
from listeners.homeassistant.cursor import HighWaterMark
from listeners.homeassistant.errors import CONNECTION_ERRORS, AuthFailed, ProtocolFailed
from listeners.homeassistant.frames import decode_leniently, head, text_of
from listeners.homeassistant.gapfill import GapFill
from listeners.homeassistant.normalise import NormaliseError, normalise_event
from listeners.homeassistant.websocket import (
    READ_PACE_SECONDS,
    PacedConnection,
    StopFlag,
    authenticate,
    open_websocket,
    receive_json,
)
from listeners.instrumentation import ListenerMetrics

log = structlog.get_logger(__name__)

# get_states and coalesced event arrays of a big home can be several MB.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class HomeAssistantListener(StopFlag):
    # A refused token will not fix itself within seconds; retry slowly so logs stay readable
    # and HA's login-attempt ban (ip_ban) is not triggered by a hot loop.
    AUTH_RETRY_MIN = 30.0

    def __init__(
        self,
        url: str,
        token: str,
        batcher: Batcher,
        *,
        event_types: Sequence[str] = ("state_changed",),
        backoff: Backoff | None = None,
        ssl_context: ssl.SSLContext | None = None,
        entity_filter: EntityFilter | None = None,
        metrics: ListenerMetrics | None = None,
        cursor: HighWaterMark | None = None,
        backfill: BackfillPolicy | None = None,
        ping_interval: float = 30.0,
        ping_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.url, self.token, self.batcher = url, token, batcher
        self.event_types = list(event_types)
        self.backoff = backoff or Backoff(initial=0.5, maximum=60.0)
        self.ssl_context = ssl_context
        self.entity_filter = entity_filter if entity_filter and not entity_filter.empty else None
        self.metrics = metrics or ListenerMetrics(SOURCE_HOMEASSISTANT)
        self.next_id = 1
        self.subscriptions: dict[int, str | None] = {}
        self.connected = False
        self.ha_version: str | None = None
        counted = ("events", "unparseable", "skipped", "filtered", "reconnects", "backfilled")
        self.stats = dict.fromkeys(counted, 0)
        self.cursor = cursor
        policy = backfill or BackfillPolicy()
        self.gapfill = (
            GapFill(batcher, cursor, policy, self.entity_filter, self.metrics, self.stats)
            if cursor is not None and policy.enabled
            else None
        )
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.waiting: dict[int, asyncio.Future] = {}

    # --- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        ticker = asyncio.create_task(self._tick_forever())
        try:
            while not self.stopping:
                delay = await self._one_connection()
                if delay and not self.stopping:
                    await self._sleep(delay)
        finally:
            ticker.cancel()

    async def _one_connection(self) -> float:
        """Run one connection to its end; return how long to wait before the next one."""
        try:
            await self.session()
            return 0.0 if self.stopping else self.backoff.next_delay()
        except AuthFailed as exc:
            delay = max(self.AUTH_RETRY_MIN, self.backoff.next_delay())
            log.error("ha_auth_failed", error=str(exc), category="auth", retry_in=round(delay, 1))
            return delay
        except CONNECTION_ERRORS as exc:
            delay = self.backoff.next_delay()
            category = connection_category(exc, tls=self.url.startswith("wss://"))
            level = log.error if self.backoff.serious or category == "tls" else log.warning
            level(
                "ha_connection_lost",
                error=f"{type(exc).__name__}: {exc}",
                category=category,
                attempt=self.backoff.failures,
                retry_in=round(delay, 2),
            )
            return delay
        except Exception as exc:
            delay = self.backoff.next_delay()
            log.exception(
                "ha_session_failed",
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
                category="bug",
                retry_in=round(delay, 2),
            )
            return delay
        finally:
            if self.connected and not self.stopping:
                self.stats["reconnects"] += 1
                self.metrics.reconnected()
            self.connected = False
            self.metrics.connected(False)

    async def _tick_forever(self) -> None:
        # Seals a partly filled batch once it is a flush interval old, even when HA is quiet:
        # it wakes when the oldest held event is due, and an empty buffer is looked at once an
        # interval, so no event waits longer than the interval, and a quiet listener sleeps.
        try:
            while True:
                await asyncio.sleep(self.batcher.seconds_until_due())
                self.batcher.tick()
                self.metrics.flush()
        finally:
            self.metrics.flush()

    # --- one connection ------------------------------------------------------------------
    async def session(self) -> None:
        async with open_websocket(self.url, self.ssl_context, MAX_FRAME_BYTES) as ws:
            await self.authenticate(ws)
            await self.negotiate(ws)
            await self.subscribe(ws)
            subscribed_ns = time.time_ns()
            self.connected = True
            self.metrics.connected(True)
            self.backoff.reset()
            log.info(
                "ha_connected",
                url=self.url,
                ha_version=self.ha_version,
                event_types=self.event_types or "all",
            )
            helpers = [asyncio.create_task(self._keepalive(ws))]
            if self.gapfill is not None:
                request = functools.partial(self.request, ws)
                helpers.append(asyncio.create_task(self.gapfill.fill(request, subscribed_ns)))
            try:
                await self.read(ws)
            finally:
                for task in helpers:
                    task.cancel()
                self._fail_waiting()

    async def read(self, ws: ClientConnection) -> None:
        # One watcher per connection ends a waiting recv on stop: a task and a wait per frame
        # cost more than the frame's own handling at home rates.
        watcher = asyncio.create_task(self._close_on_stop(ws))
        if isinstance(ws, PacedConnection):
            ws.pace = READ_PACE_SECONDS
        try:
            while not self.stopping:
                try:
                    # Bytes, not text: orjson reads UTF-8 itself (and refuses what is not).
                    raw = await ws.recv(decode=False)
                except ConnectionClosed:
                    if self.stopping:
                        break
                    raise
                self.handle_frame(raw)
                while not self.batcher.has_room() and not self.stopping:
                    # Broker is behind: pause reading rather than hold unbounded memory.
                    await asyncio.sleep(0.05)
        finally:
            watcher.cancel()

    async def _close_on_stop(self, ws: ClientConnection) -> None:
        await self.stop_event.wait()
        await ws.close()

    # --- requests while the read loop runs ------------------------------------------------
    async def request(self, ws: ClientConnection, payload: dict[str, Any], timeout: float) -> Any:
        """Send a command and wait for its answer, which the read loop routes back by id."""
        command = self._command(payload)
        future = asyncio.get_running_loop().create_future()
        self.waiting[command["id"]] = future
        try:
            await ws.send(json.dumps(command))
            return await asyncio.wait_for(future, timeout)
        finally:
            self.waiting.pop(command["id"], None)

    def _answer(self, message: dict[str, Any]) -> bool:
        msg_id = message.get("id")
        future = self.waiting.get(msg_id) if type(msg_id) is int else None
        if future is None or future.done():
            return False
        if message.get("type") == "result" and not message.get("success"):
            future.set_exception(ProtocolFailed(f"command failed: {message.get('error')}"))
        else:
            future.set_result(message.get("result"))
        return True

    def _fail_waiting(self) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
        self.waiting.clear()

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Application-level ping: no pong in time means a dead connection, so reconnect."""
        while True:
            await asyncio.sleep(self.ping_interval)
            started = time.perf_counter()
            try:
                await self.request(ws, {"type": "ping"}, self.ping_timeout)
            except (TimeoutError, ConnectionError, ConnectionClosed):
                log.warning("ha_ping_timeout", timeout=self.ping_timeout, category="connection")
                ws.transport.abort()
                return
            self.metrics.ping(time.perf_counter() - started)

    # --- backfill ------------------------------------------------------------------------
    def on_batch_published(self, batch: Batch) -> None:
        """Publisher thread: the broker has this batch, so the high-water mark may advance."""
        if self.gapfill is not None:
            self.gapfill.on_batch_published(batch)

    def _command(self, payload: dict[str, Any]) -> dict[str, Any]:
        payload = {"id": self.next_id, **payload}
        self.next_id += 1
        return payload

    async def authenticate(self, ws: ClientConnection) -> None:
        self.ha_version = await authenticate(ws, self.token)
        # Ids only have to increase within one connection.
        self.next_id = 1
        self.subscriptions = {}

    async def _call(self, ws: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
        command = self._command(payload)
        await ws.send(json.dumps(command))
        # Events of earlier subscriptions may arrive before our result, and after it in the same
        # coalesced frame: every one of them is handled as usual.
        answer = None
        while answer is None:
            message = await receive_json(ws)
            for item in message if isinstance(message, list) else [message]:
                if answer is None and _answers(item, command["id"]):
                    answer = item
                else:
                    self.handle_message(item)
        if not answer.get("success"):
            raise ProtocolFailed(f"{payload['type']} failed: {str(answer.get('error'))[:200]}")
        return answer

    async def negotiate(self, ws: ClientConnection) -> None:
        # Coalesced messages: HA packs events that are ready together into one JSON array,
        # which cuts frames (and per-frame cost on both sides) by an order of magnitude.
        await self._call(ws, {"type": "supported_features", "features": {"coalesce_messages": 1}})

    async def subscribe(self, ws: ClientConnection) -> None:
        for event_type in self.event_types or [None]:
            payload: dict[str, Any] = {"type": "subscribe_events"}
            if event_type:
                payload["event_type"] = event_type
            result = await self._call(ws, payload)
            self.subscriptions[result["id"]] = event_type

    # --- messages ------------------------------------------------------------------------
    def handle_frame(self, raw: str | bytes) -> int:
        """Handle one WebSocket frame (an object or a coalesced array); returns events taken.

        Never raises: whatever a frame holds ends as events, dead letters or log lines.
        """
        try:
            # orjson: frame decoding was the listener's largest cost with the json module.
            message = orjson.loads(raw)
        except ValueError:
            return self._handle_odd_frame(raw)
        taken = 0
        for item in message if isinstance(message, list) else [message]:
            taken += self.handle_message(item)
        return taken

    def _handle_odd_frame(self, raw: str | bytes) -> int:
        """A frame orjson refuses: only the messages that cannot travel are set aside."""
        try:
            items, aside = decode_leniently(raw)
        except ValueError as exc:
            self._unparseable(raw, f"not JSON: {str(exc)[:200]}")
            log.warning(
                "ha_frame_unparseable", category="unparseable", bytes=len(raw), head=head(raw)
            )
            return 0
        for text, problem in aside:
            self._unparseable(text, problem)
            log.warning("ha_message_unparseable", category="unparseable", error=problem)
        return sum(self.handle_message(item) for item in items)

    def handle_message(self, message: Any) -> int:
        try:
            return self._handle_message(message)
        except Exception as exc:  # noqa: BLE001 - one odd message never ends the listener
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._unparseable(text_of(message), f"message could not be handled: {error}")
            log.warning("ha_message_unparseable", category="unparseable", error=error)
            return 0

    def _handle_message(self, message: Any) -> int:
        if not isinstance(message, dict):
            self._unparseable(text_of(message), "message is not a JSON object")
            log.warning("ha_message_unparseable", category="unparseable", head=head(message))
            return 0
        kind = message.get("type")
        if kind in ("result", "pong") and self._answer(message):
            return 0
        if kind == "event":
            return self.handle_event(message.get("event"))
        if kind == "result" and not message.get("success"):
            log.warning(
                "ha_command_failed", id=head(message.get("id")), error=head(message.get("error"))
            )
        return 0

    def _unparseable(self, payload: str | bytes, error: str) -> None:
        self.stats["unparseable"] += 1
        self.metrics.unparseable()
        self.batcher.add(unparseable_event(SOURCE_HOMEASSISTANT, payload, error, self.url))

    def handle_event(self, event: Any) -> int:
        try:
            normalised = normalise_event(event)
        except NormaliseError as exc:
            self._unparseable(text_of(event), str(exc))
            log.warning("ha_event_unparseable", category="unparseable", error=str(exc))
            return 0
        if normalised is None:
            self.stats["skipped"] += 1
            return 0
        entity_id = normalised.get("entity_id")
        if entity_id and self.entity_filter and not self.entity_filter.matches(entity_id):
            self.stats["filtered"] += 1
            self.metrics.filtered()
            return 0
        self.metrics.received(normalised)
        self.stats["events"] += 1
        self.batcher.add(normalised)
        return 1


def _answers(item: Any, command_id: int) -> bool:
    """The result of our command (an event of that subscription carries the same id)."""
    return isinstance(item, dict) and item.get("id") == command_id and item.get("type") == "result"
