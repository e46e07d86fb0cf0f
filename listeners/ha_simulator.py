"""A protocol-faithful Home Assistant WebSocket API server, for tests, demos and benchmarks.

Implements what HA's developer documentation describes (and what ``websocket_api`` does):
``auth_required`` -> ``auth`` -> ``auth_ok``/``auth_invalid``; commands with strictly increasing
ids (``id_reuse`` otherwise); ``supported_features`` with ``coalesce_messages`` (several messages
per frame as a JSON array); ``subscribe_events`` with or without ``event_type``;
``unsubscribe_events``; ``ping``/``pong``; ``get_states``; and ``state_changed`` events with HA's
real shape. It generates a configurable load and can drop its connections on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(__name__)

HA_VERSION = "2025.1.0"
# HA sends coalesced frames of whatever is ready; this many messages bounds one frame.
MAX_FRAME_MESSAGES = 500
# The generator wakes this often and emits what the rate says is due since the last wake-up:
# sleeping per event cannot reach tens of thousands of events a second.
TICK_SECONDS = 0.01
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, rng: random.Random) -> str:
    """A ULID (what HA uses for context ids): 48-bit time and 80 random bits, Crockford base32."""
    value = (ms << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="microseconds")


@dataclass
class Entity:
    entity_id: str
    kind: str
    attributes: dict[str, Any]
    value: float = 0.0
    state: str = "unknown"
    last_us: int = 0
    last_changed: str = ""
    current: dict[str, Any] | None = None


_SENSORS = [
    ("temperature", "°C", 21.0, "measurement"),
    ("humidity", "%", 45.0, "measurement"),
    ("power", "W", 120.0, "measurement"),
    ("energy", "kWh", 1000.0, "total_increasing"),
    ("pressure", "hPa", 1013.0, "measurement"),
]


def make_entities(count: int) -> list[Entity]:
    """A home's mix: numeric sensors with units, switches, binary sensors, climate, lights and
    text sensors, in a fixed rotation so any count has all kinds once it reaches ten."""
    entities = []
    for n in range(count):
        slot = n % 10
        if slot < 5:
            device_class, unit, base, state_class = _SENSORS[slot]
            entity = Entity(
                f"sensor.{device_class}_{n}",
                "numeric",
                {
                    "state_class": state_class,
                    "unit_of_measurement": unit,
                    "device_class": device_class,
                    "friendly_name": f"{device_class.title()} {n}",
                },
                value=base,
            )
        elif slot == 5:
            entity = Entity(f"switch.plug_{n}", "onoff", {"friendly_name": f"Plug {n}"})
        elif slot == 6:
            entity = Entity(
                f"binary_sensor.motion_{n}",
                "onoff",
                {"device_class": "motion", "friendly_name": f"Motion {n}"},
            )
        elif slot == 7:
            entity = Entity(
                f"climate.room_{n}",
                "climate",
                {
                    "hvac_modes": ["off", "heat", "cool", "auto"],
                    "min_temp": 7,
                    "max_temp": 35,
                    "target_temp_step": 0.5,
                    "current_temperature": 20.5,
                    "temperature": 21.0,
                    "hvac_action": "idle",
                    "preset_mode": "home",
                    "preset_modes": ["home", "away", "eco"],
                    "friendly_name": f"Room {n}",
                    "supported_features": 401,
                },
                value=20.5,
            )
        elif slot == 8:
            entity = Entity(
                f"light.lamp_{n}",
                "light",
                {
                    "supported_color_modes": ["rgb"],
                    "color_mode": "rgb",
                    "brightness": 128,
                    "rgb_color": [255, 180, 107],
                    "friendly_name": f"Lamp {n}",
                },
            )
        else:
            entity = Entity(
                f"sensor.washer_{n}_status", "text", {"friendly_name": f"Washer {n} status"}
            )
        entities.append(entity)
    return entities


_TEXT_STATES = ["Idle", "Running", "Rinse, then spin", "Finished: 1h 02m", "Door open"]


def next_state(entity: Entity, rng: random.Random) -> tuple[str, dict[str, Any]]:
    attributes = entity.attributes
    if entity.kind == "numeric":
        entity.value = round(entity.value + rng.uniform(-0.5, 0.6), 2)
        return f"{entity.value:.2f}", attributes
    if entity.kind == "onoff":
        return ("off" if entity.state == "on" else "on"), attributes
    if entity.kind == "climate":
        entity.value = round(entity.value + rng.uniform(-0.2, 0.2), 1)
        attributes = {
            **attributes,
            "current_temperature": entity.value,
            "hvac_action": rng.choice(["idle", "heating"]),
        }
        return rng.choice(["heat", "heat", "auto", "off"]), attributes
    if entity.kind == "light":
        on = entity.state != "on"
        attributes = {
            **attributes,
            "brightness": rng.randint(1, 255) if on else None,
            "rgb_color": [rng.randint(0, 255), 180, 107] if on else None,
        }
        return ("on" if on else "off"), attributes
    return rng.choice(_TEXT_STATES), attributes


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    coalesce: bool = False
    last_id: int = 0
    subscriptions: dict[int, str | None] = field(default_factory=dict)
    drop: bool = False


def _result(msg_id: int, result: Any = None) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": True, "result": result}


def _error(msg_id: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "result",
        "success": False,
        "error": {"code": code, "message": message},
    }


class HomeAssistantSimulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "simulator-token",  # noqa: S107 - the simulator's own default
        entities: int = 200,
        rate: float = 100.0,
        events: int | None = None,
        seed: int = 0,
        wait_for_subscriber: bool = True,
        other_events_ratio: float = 0.0,
        record: bool = True,
        ha_version: str = HA_VERSION,
    ) -> None:
        self.host, self.port, self.token = host, port, token
        self.rate, self.limit = rate, events
        self.rng = random.Random(seed)
        self.entities = make_entities(entities)
        self.wait_for_subscriber = wait_for_subscriber
        self.other_events_ratio = other_events_ratio
        self.record, self.ha_version = record, ha_version
        self.clients: set[Client] = set()
        self.generated_count = 0
        self.connection_count = 0  # connections authenticated since start
        self.generated: list[dict[str, Any]] = []
        # (entity_id, new_state) of every state change written to a live subscription.
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.delivered_count = 0
        self.lock = threading.Lock()
        self.server: Server | None = None
        self._generator: asyncio.Task | None = None
        self._next = 0
        self.finished = False  # every event generated and handed to the connections

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/websocket"

    @property
    def subscriber_count(self) -> int:
        return sum(1 for c in self.clients if c.subscriptions)

    @property
    def done(self) -> bool:
        return self.limit is not None and self.generated_count >= self.limit

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.server = await serve(
            self._serve,
            self.host,
            self.port,
            max_size=16 * 1024 * 1024,
            ping_interval=None,
            close_timeout=1,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._generator = asyncio.create_task(self._generate())

    async def stop(self) -> None:
        if self._generator:
            self._generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def drop_connections(self) -> None:
        """Close every client connection at the next frame boundary (as HA restarting does):
        what was sent before arrives, nothing after."""
        for client in list(self.clients):
            client.drop = True

    # --- one connection ------------------------------------------------------------------
    async def _serve(self, ws: ServerConnection) -> None:
        client = Client(ws)
        try:
            if not await self._authenticate(ws):
                return
            self.connection_count += 1
            self.clients.add(client)
            async for raw in ws:
                await self._handle(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def _authenticate(self, ws: ServerConnection) -> bool:
        await ws.send(json.dumps({"type": "auth_required", "ha_version": self.ha_version}))
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        except (TimeoutError, ValueError):
            message = None
        if (
            isinstance(message, dict)
            and message.get("type") == "auth"
            and message.get("access_token") == self.token
        ):
            await ws.send(json.dumps({"type": "auth_ok", "ha_version": self.ha_version}))
            return True
        await ws.send(
            json.dumps({"type": "auth_invalid", "message": "Invalid access token or password"})
        )
        await ws.close()
        return False

    async def _handle(self, client: Client, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            # HA drops a client that sends something that is not JSON.
            await client.ws.close(code=1003, reason="Received invalid JSON.")
            return
        for item in message if isinstance(message, list) else [message]:
            reply = self._command(client, item)
            if reply is not None:
                await client.ws.send(json.dumps(reply))

    def _command(self, client: Client, message: Any) -> dict[str, Any] | None:
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("id"), int)
            or not (isinstance(message.get("type"), str))
        ):
            msg_id = message.get("id") if isinstance(message, dict) else None
            return _error(msg_id, "invalid_format", "Message incorrectly formatted.")
        msg_id, kind = message["id"], message["type"]
        if msg_id <= client.last_id:
            return _error(msg_id, "id_reuse", "Identifier values have to increase.")
        client.last_id = msg_id
        handler = self._COMMANDS.get(kind)
        if handler is None:
            return _error(msg_id, "unknown_command", f"Unknown command: {kind}")
        return handler(self, client, msg_id, message)

    def _ping(self, client: Client, msg_id: int, _message: dict) -> dict[str, Any]:
        return {"id": msg_id, "type": "pong"}

    def _supported_features(self, client: Client, msg_id: int, message: dict) -> dict[str, Any]:
        features = message.get("features") or {}
        client.coalesce = bool(features.get("coalesce_messages"))
        return _result(msg_id)

    def _subscribe(self, client: Client, msg_id: int, message: dict) -> dict[str, Any]:
        client.subscriptions[msg_id] = message.get("event_type")
        return _result(msg_id)

    def _unsubscribe(self, client: Client, msg_id: int, message: dict) -> dict[str, Any]:
        if client.subscriptions.pop(message.get("subscription"), "missing") == "missing":
            return _error(msg_id, "not_found", "Subscription not found.")
        return _result(msg_id)

    def _get_states(self, client: Client, msg_id: int, _message: dict) -> dict[str, Any]:
        return _result(msg_id, [self._current(e) for e in self.entities])

    _COMMANDS: dict[str, Callable] = {
        "ping": _ping,
        "supported_features": _supported_features,
        "subscribe_events": _subscribe,
        "unsubscribe_events": _unsubscribe,
        "get_states": _get_states,
    }

    # --- load ----------------------------------------------------------------------------
    def _current(self, entity: Entity) -> dict[str, Any]:
        if entity.current is None:
            stamp = iso(time.time_ns() // 1000)
            entity.current = {
                "entity_id": entity.entity_id,
                "state": entity.state,
                "attributes": entity.attributes,
                "last_changed": stamp,
                "last_reported": stamp,
                "last_updated": stamp,
                "context": {"id": ulid(0, self.rng), "parent_id": None, "user_id": None},
            }
        return entity.current

    async def _generate(self) -> None:
        while self.wait_for_subscriber and not self.subscriber_count:
            await asyncio.sleep(TICK_SECONDS)
        started = time.monotonic()
        while not self.done:
            await self._drop_flagged()
            due = int((time.monotonic() - started) * self.rate) - self.generated_count
            if self.limit is not None:
                due = min(due, self.limit - self.generated_count)
            batch = [self._make_event() for _ in range(max(0, due))]
            if batch:
                await self._broadcast(batch)
            await asyncio.sleep(TICK_SECONDS)
        await self._drop_flagged()
        self.finished = True

    async def _drop_flagged(self) -> None:
        for client in [c for c in self.clients if c.drop]:
            self.clients.discard(client)
            await client.ws.close(code=1001, reason="Home Assistant is restarting")

    def _make_event(self) -> dict[str, Any]:
        self.generated_count += 1
        if self.other_events_ratio and self.rng.random() < self.other_events_ratio:
            event = self._other_event()
        else:
            event = self._state_changed(self.entities[self._next % len(self.entities)])
            self._next += 1
        if self.record:
            with self.lock:
                self.generated.append(event)
        return event

    def _state_changed(self, entity: Entity) -> dict[str, Any]:
        now_us = max(time.time_ns() // 1000, entity.last_us + 1)
        entity.last_us = now_us
        stamp = iso(now_us)
        context = {"id": ulid(now_us // 1000, self.rng), "parent_id": None, "user_id": None}
        old = entity.current
        state, attributes = next_state(entity, self.rng)
        if state != entity.state or not entity.last_changed:
            entity.last_changed = stamp
        entity.state = state
        new = {
            "entity_id": entity.entity_id,
            "state": state,
            "attributes": attributes,
            "last_changed": entity.last_changed,
            "last_reported": stamp,
            "last_updated": stamp,
            "context": context,
        }
        entity.current = new
        return {
            "event_type": "state_changed",
            "data": {"entity_id": entity.entity_id, "old_state": old, "new_state": new},
            "origin": "LOCAL",
            "time_fired": stamp,
            "context": context,
        }

    def _other_event(self) -> dict[str, Any]:
        now_us = time.time_ns() // 1000
        context = {"id": ulid(now_us // 1000, self.rng), "parent_id": None, "user_id": None}
        entity = self.rng.choice(self.entities)
        if self.rng.random() < 0.5:
            kind, data = (
                "call_service",
                {
                    "domain": entity.entity_id.split(".")[0],
                    "service": "turn_on",
                    "service_data": {"entity_id": entity.entity_id},
                },
            )
        else:
            kind, data = (
                "automation_triggered",
                {
                    "name": "Evening lights",
                    "entity_id": "automation.evening_lights",
                    "source": f"state of {entity.entity_id}",
                },
            )
        return {
            "event_type": kind,
            "data": data,
            "origin": "LOCAL",
            "time_fired": iso(now_us),
            "context": context,
        }

    async def _broadcast(self, batch: list[dict[str, Any]]) -> None:
        for client in list(self.clients):
            messages = [
                {"id": sub_id, "type": "event", "event": event}
                for event in batch
                for sub_id, event_type in client.subscriptions.items()
                if event_type is None or event_type == event["event_type"]
            ]
            if messages and not client.drop:
                await self._send(client, messages)

    async def _send(self, client: Client, messages: list[dict[str, Any]]) -> None:
        chunks = (
            [
                messages[i : i + MAX_FRAME_MESSAGES]
                for i in range(0, len(messages), MAX_FRAME_MESSAGES)
            ]
            if client.coalesce
            else [[m] for m in messages]
        )
        for chunk in chunks:
            frame = json.dumps(chunk if client.coalesce else chunk[0])
            try:
                await client.ws.send(frame)
            except ConnectionClosed:
                return
            self._account(chunk)

    def _account(self, messages: list[dict[str, Any]]) -> None:
        changes = [
            (m["event"]["data"]["entity_id"], m["event"]["data"]["new_state"])
            for m in messages
            if m["event"]["event_type"] == "state_changed"
        ]
        self.delivered_count += len(changes)
        if self.record:
            with self.lock:
                self.delivered.extend(changes)

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.delivered)


class SimulatorThread:
    """The simulator on an event loop of its own, in a daemon thread, for synchronous code."""

    def __init__(self, **options: Any) -> None:
        self.simulator = HomeAssistantSimulator(**options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="ha-simulator", daemon=True
        )

    def start(self) -> SimulatorThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.simulator.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    @property
    def url(self) -> str:
        return self.simulator.url

    @property
    def connection_count(self) -> int:
        return self.simulator.connection_count

    @property
    def subscriber_count(self) -> int:
        return self.simulator.subscriber_count

    def drop_connections(self) -> None:
        self.loop.call_soon_threadsafe(self.simulator.drop_connections)

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        return self.simulator.delivered_state_changes()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator: {what} not reached within {timeout} s")
            time.sleep(0.02)

    def wait_until_done(self, timeout: float) -> None:
        self.wait_for(lambda: self.simulator.finished, timeout, "all events sent")

    def wait_for_subscribers(self, count: int, timeout: float) -> None:
        self.wait_for(
            lambda: self.simulator.subscriber_count >= count, timeout, f"{count} subscribers"
        )
