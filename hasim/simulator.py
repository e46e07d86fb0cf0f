"""A protocol-faithful simulator of Home Assistant's WebSocket API, for tests, demos and benchmarks.

What it speaks follows HA's developer documentation and ``homeassistant/components/websocket_api``:

- ``auth_required`` -> ``auth`` -> ``auth_ok`` | ``auth_invalid`` (then the socket is closed);
  anything other than a well-formed ``auth`` message in the auth phase is ``auth_invalid`` too.
- Commands carry an integer ``id`` that must increase on each connection (``id_reuse``), unknown
  types get ``unknown_command``, malformed ones ``invalid_format``; a frame that is not JSON (or
  not text) makes HA drop the connection, and so does this. A frame may hold a list of commands.
- ``supported_features`` with ``coalesce_messages``: from then on whatever is ready to be written
  goes out as one JSON array per frame, exactly like HA's writer; a lone message stays an object.
- ``subscribe_events`` (with or without ``event_type``), ``unsubscribe_events``, ``ping``,
  ``get_states`` and ``history/history_during_period`` (compressed rows, as the frontend gets them).
- ``state_changed`` events with HA's real shape; the new state's ``last_updated`` equals the
  event's ``time_fired`` and strictly increases per entity, so every change has its own timestamp.

The load generator works in time slices instead of sleeping per event, so it holds rates of tens
of thousands of events a second. Every generated event is recorded together with whether it was
written to at least one live subscription, which is what end-to-end tests compare against.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import json
import random
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

log = structlog.get_logger(__name__)

T = TypeVar("T")

HA_VERSION = "2025.1.0"
DEFAULT_TOKEN = "simulator-token"  # noqa: S105 - a well-known default for local runs, not a secret
# HA closes a connection that has not authenticated within 10 s (websocket_api/http.py).
AUTH_TIMEOUT = 10.0
# The generator wakes this often and emits what the rate says is due by now. Sleeping per
# event cannot pace tens of thousands of events a second; 10 ms slices can, within ~1 %.
TICK_SECONDS = 0.01
# After a stall (GC, a busy CPU) the owed events are caught up at most this many seconds'
# worth per slice, so one burst never blocks the loop for long.
MAX_CATCH_UP_SECONDS = 0.25
# HA joins everything that is queued into one frame; a cap keeps a frame around 100-300 KB,
# under the 1 MiB a default `websockets` client accepts.
MAX_FRAME_MESSAGES = 256
# A dropped connection is half-closed after its last frame is flushed; a client that has
# stopped reading may never let that happen, so the socket is aborted after this long.
DROP_GRACE_SECONDS = 30.0
# HA keeps its aiohttp heartbeat at 55 s; the default 20 s ping of `websockets` would close a
# client that pauses reading for back-pressure far sooner than HA does.
PING_INTERVAL = 55.0
# aiohttp's default max message size, which HA keeps.
MAX_INCOMING_BYTES = 4 * 1024 * 1024
MATCH_ALL = "*"
# history: domains whose attribute-only changes count as significant, and domains that keep
# their attributes in minimal responses (homeassistant/components/recorder/history/const.py).
SIGNIFICANT_DOMAINS = frozenset(
    {"climate", "device_tracker", "humidifier", "thermostat", "water_heater"}
)
NEED_ATTRIBUTE_DOMAINS = frozenset(
    {"climate", "humidifier", "input_datetime", "thermostat", "water_heater"}
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 characters per 10 bits: a ULID's random part is then 8 lookups, not 16 shifts.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))
_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C-accelerated, non-ASCII kept


def dumps(value: Any) -> str:
    """JSON as HA writes it (orjson): compact, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def now_us() -> int:
    return time.time_ns() // 1000


# --- timestamps and context ids -------------------------------------------------------------
class IsoStamps:
    """Microsecond epoch integers to HA's ISO 8601 strings, cheaply.

    The text up to the milliseconds is cached, so most calls are one lookup and a concatenation.
    HA uses ``datetime.isoformat()``, which leaves a zero fraction out, and so does this.
    """

    def __init__(self) -> None:
        self._ms = -1
        self._prefix = ""

    def __call__(self, us: int) -> str:
        ms, micro = divmod(us, 1000)
        if ms != self._ms:
            self._ms = ms
            second, milli = divmod(ms, 1000)
            whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._prefix = f"{whole}.{milli:03d}"
        if micro or not self._prefix.endswith(".000"):
            return self._prefix + _THREE_DIGITS[micro] + "+00:00"
        return self._prefix[:-4] + "+00:00"


class Ulids:
    """HA's context ids: ULIDs, 48-bit milliseconds then 80 random bits, Crockford base32."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ms = -1
        self._prefix = ""

    def __call__(self, us: int) -> str:
        ms = us // 1000
        if ms != self._ms:
            self._ms = ms
            self._prefix = "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5))
        r = self._rng.getrandbits(80)
        p = _PAIRS
        return (
            self._prefix
            + p[r >> 70]
            + p[(r >> 60) & 1023]
            + p[(r >> 50) & 1023]
            + p[(r >> 40) & 1023]
            + p[(r >> 30) & 1023]
            + p[(r >> 20) & 1023]
            + p[(r >> 10) & 1023]
            + p[r & 1023]
        )


# --- entities ------------------------------------------------------------------------------
class Entity:
    """One simulated entity: its current state (as a dict and as JSON) and how it moves on.

    Subclasses implement ``next_state`` and return attributes together with their JSON; static
    attributes are serialised once at construction, which is most of the cost saved per event.
    """

    domain = "sensor"
    weight = 1.0  # relative update frequency

    def __init__(self, object_id: str, attributes: dict[str, Any], state: str) -> None:
        self.entity_id = f"{self.domain}.{object_id}"
        self.attributes = attributes
        self.attributes_json = dumps(attributes)
        self.text = state
        self._state: dict[str, Any] | None = None
        self.state_json = ""
        self.last_changed = ""

    @property
    def state(self) -> dict[str, Any]:
        """The current state object; parsed from its JSON only when events are not recorded."""
        if self._state is None:
            self._state = json.loads(self.state_json)
        return self._state

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state = value

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        raise NotImplementedError


class NumericSensor(Entity):
    def __init__(
        self,
        object_id: str,
        name: str,
        spec: tuple[str, str, str, float, float, float, int, float],
        rng: random.Random,
    ) -> None:
        unit, device_class, state_class, low, high, step, decimals, weight = spec
        # HA's attribute order for a sensor with a unit.
        attributes = {
            "state_class": state_class,
            "unit_of_measurement": unit,
            "device_class": device_class,
            "friendly_name": name,
        }
        self.value = rng.uniform(low, low + (high - low) / 2)
        self.low, self.high, self.step, self.decimals = low, high, step, decimals
        self.increasing = state_class == "total_increasing"
        self.weight = weight
        self._format = f"%.{decimals}f".__mod__
        super().__init__(object_id, attributes, self._format(self.value))

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        if self.increasing:
            value = self.value + rng.random() * self.step
        else:
            value = min(self.high, max(self.low, self.value + (rng.random() * 2 - 1) * self.step))
        text = self._format(value)
        if text == self.text:
            # HA fires state_changed only when something changed; move by one display unit.
            unit = 10**-self.decimals
            value = value + unit if self.increasing or value + unit <= self.high else value - unit
            text = self._format(value)
        self.value = value
        return text, self.attributes, self.attributes_json


class Toggle(Entity):
    def __init__(self, domain: str, object_id: str, attributes: dict[str, Any], weight: float):
        self.domain, self.weight = domain, weight
        super().__init__(object_id, attributes, "off")

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        return ("off" if self.text == "on" else "on"), self.attributes, self.attributes_json


class StatusSensor(Entity):
    """A text-state sensor (HA's enum device class), e.g. an appliance's programme status."""

    OPTIONS = ("idle", "Running", "Rinsing", "Paused", "Finished")
    weight = 0.5

    def __init__(self, object_id: str, name: str) -> None:
        attributes = {
            "options": list(self.OPTIONS),
            "device_class": "enum",
            "icon": "mdi:washing-machine",
            "friendly_name": name,
        }
        super().__init__(object_id, attributes, "idle")

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        text = rng.choice([option for option in self.OPTIONS if option != self.text])
        return text, self.attributes, self.attributes_json


class Climate(Entity):
    """A thermostat: mostly attribute changes under a steady hvac mode, as in a real home."""

    domain = "climate"
    MODES = ("off", "heat", "cool", "auto")
    PRESETS = ("none", "eco", "comfort", "away")

    def __init__(self, object_id: str, name: str, rng: random.Random) -> None:
        self.current = round(rng.uniform(18.0, 22.0), 1)
        self.target = 21.0
        self.preset, self.name = "comfort", name
        self.static = {
            "hvac_modes": list(self.MODES),
            "min_temp": 7,
            "max_temp": 35,
            "target_temp_step": 0.5,
            "preset_modes": list(self.PRESETS),
        }
        # The JSON of the unchanging attributes, without its closing brace, to append to.
        self._static_json = dumps(self.static)[:-1]
        self._tail_json = f',"friendly_name":{_quote(name)},"supported_features":401}}'
        super().__init__(object_id, self._render("heat")[0], "heat")

    def _render(self, mode: str) -> tuple[dict[str, Any], str]:
        if mode == "off":
            action = "off"
        else:
            action = "heating" if mode != "cool" and self.current < self.target else "idle"
        attributes = {
            **self.static,
            "current_temperature": self.current,
            "temperature": self.target,
            "hvac_action": action,
            "preset_mode": self.preset,
            "friendly_name": self.name,
            "supported_features": 401,
        }
        # json.dumps writes floats with repr(), so this is byte for byte what it would write.
        text = (
            f'{self._static_json},"current_temperature":{self.current!r},'
            f'"temperature":{self.target!r},"hvac_action":"{action}",'
            f'"preset_mode":"{self.preset}"{self._tail_json}'
        )
        return attributes, text

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        mode = self.text
        roll = rng.random()
        if roll < 0.03:
            mode = rng.choice([m for m in self.MODES if m != mode])
        elif roll < 0.12:
            self.target = min(30.0, max(15.0, self.target + rng.choice((-0.5, 0.5))))
            self.preset = rng.choice(self.PRESETS)
        # The measured temperature always moves, so every event changes something.
        self.current = round(self.current + rng.choice((-0.2, -0.1, 0.1, 0.2)), 1)
        self.attributes, self.attributes_json = self._render(mode)
        return mode, self.attributes, self.attributes_json


class Light(Entity):
    """A colour light: list attributes, and nulls for colour and brightness while off (as HA)."""

    domain = "light"
    weight = 0.5

    def __init__(self, object_id: str, name: str) -> None:
        self.name = name
        self._name_json = _quote(name)
        super().__init__(object_id, self._render(None, None)[0], "off")
        self._off = (self.attributes, self.attributes_json)

    def _render(self, brightness: int | None, rgb: list[int] | None) -> tuple[dict[str, Any], str]:
        attributes = {
            "supported_color_modes": ["rgb"],
            "color_mode": "rgb" if rgb is not None else None,
            "brightness": brightness,
            "rgb_color": rgb,
            "friendly_name": self.name,
            "supported_features": 40,
        }
        if rgb is None or brightness is None:
            return attributes, dumps(attributes)
        text = (
            f'{{"supported_color_modes":["rgb"],"color_mode":"rgb","brightness":{brightness},'
            f'"rgb_color":[{rgb[0]},{rgb[1]},{rgb[2]}],"friendly_name":{self._name_json},'
            f'"supported_features":40}}'
        )
        return attributes, text

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        if self.text == "on" and rng.random() < 0.3:
            self.attributes, self.attributes_json = self._off
            return "off", self.attributes, self.attributes_json
        rgb = [rng.randrange(256), rng.randrange(256), rng.randrange(256)]
        brightness = rng.randrange(1, 256)
        self.attributes, self.attributes_json = self._render(brightness, rgb)
        return "on", self.attributes, self.attributes_json


# unit, device_class, state_class, low, high, step, decimals, weight
_NUMERIC = {
    "temperature": ("°C", "temperature", "measurement", 16.0, 28.0, 0.3, 1, 1.0),
    "humidity": ("%", "humidity", "measurement", 30.0, 70.0, 1.0, 1, 1.0),
    "power": ("W", "power", "measurement", 0.0, 3500.0, 150.0, 1, 2.0),
    "energy": ("kWh", "energy", "total_increasing", 100.0, 2000.0, 0.05, 3, 1.5),
    "pressure": ("hPa", "pressure", "measurement", 980.0, 1040.0, 0.4, 1, 0.5),
}
# The order entities are created in: every kind shows up even in a home of ten entities.
_KINDS = ("temperature", "humidity", "power", "switch", "motion")
_KINDS += ("energy", "status", "climate", "light", "pressure")
_ROOMS = ("living_room", "kitchen", "bedroom", "bathroom", "office", "hallway", "garage")
_ROOMS += ("basement", "attic", "garden", "dining_room", "kids_room", "guest_room", "laundry")
_ROOMS += ("porch", "pantry", "study", "gym", "workshop", "cellar")


def _make_entity(kind: str, room: str, suffix: str, rng: random.Random) -> Entity:
    name = room.replace("_", " ").title()
    if kind in _NUMERIC:
        object_id = f"{room}_{kind}{suffix}"
        return NumericSensor(object_id, f"{name} {kind.title()}", _NUMERIC[kind], rng)
    if kind == "switch":
        attributes = {"friendly_name": f"{name} Plug"}
        return Toggle("switch", f"{room}_plug{suffix}", attributes, 0.5)
    if kind == "motion":
        attributes = {"device_class": "motion", "friendly_name": f"{name} Motion"}
        return Toggle("binary_sensor", f"{room}_motion{suffix}", attributes, 1.0)
    if kind == "status":
        return StatusSensor(f"{room}_appliance_status{suffix}", f"{name} Appliance Status")
    if kind == "climate":
        return Climate(f"{room}_thermostat{suffix}", f"{name} Thermostat", rng)
    return Light(f"{room}_light{suffix}", f"{name} Light")


def make_entities(count: int, rng: random.Random) -> list[Entity]:
    entities = []
    per_round = len(_KINDS) * len(_ROOMS)
    for i in range(count):
        kind = _KINDS[i % len(_KINDS)]
        room = _ROOMS[(i // len(_KINDS)) % len(_ROOMS)]
        suffix = f"_{i // per_round + 1}" if i >= per_round else ""
        entities.append(_make_entity(kind, room, suffix, rng))
    return entities


# --- protocol messages ----------------------------------------------------------------------
def result_message(msg_id: int, result: Any = None) -> str:
    return dumps({"id": msg_id, "type": "result", "success": True, "result": result})


def error_message(msg_id: Any, code: str, message: str) -> str:
    error = {"code": code, "message": message}
    return dumps({"id": msg_id, "type": "result", "success": False, "error": error})


def _auth_problem(message: Any) -> str | None:
    """Why an auth message fails HA's AUTH_MESSAGE_SCHEMA, in voluptuous' words; None if fine."""
    if not isinstance(message, dict):
        return "expected a dictionary"
    if "type" not in message:
        return "required key not provided @ data['type']. Got None"
    if message["type"] != "auth":
        return f"not a valid value for dictionary value @ data['type']. Got {message['type']!r}"
    extra = sorted(set(message) - {"type", "access_token", "api_password"})
    if extra:
        return f"extra keys not allowed @ data[{extra[0]!r}]. Got {message[extra[0]]!r}"
    for key in ("access_token", "api_password"):
        if key in message and not isinstance(message[key], str):
            return f"expected str for dictionary value @ data[{key!r}]. Got {message[key]!r}"
    return None


def _parse_time(value: Any) -> int | None:
    """HA's parse_datetime, as microseconds since the epoch; naive times are taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- one client connection ------------------------------------------------------------------
class Connection:
    """A client's state: subscriptions, the outgoing queue its writer drains, drop flags."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.authenticated = False
        self.last_id = 0
        self.coalesce = False
        self.subscriptions: dict[int, str | None] = {}  # id -> event type, None = all
        self._targets: dict[str, tuple[int, ...]] = {}
        # (message JSON, index of the generated event it carries or -1)
        self.outbox: deque[tuple[str, int]] = deque()
        self.wakeup = asyncio.Event()
        self.sending = False
        self.dropping = False
        self.closing = False
        self.writer: asyncio.Task[None] | None = None

    def send(self, text: str, index: int = -1) -> None:
        self.outbox.append((text, index))
        self.wakeup.set()

    def subscribe(self, sub_id: int, event_type: str | None) -> None:
        self.subscriptions[sub_id] = event_type
        self._targets.clear()

    def unsubscribe(self, sub_id: int) -> bool:
        self._targets.clear()
        return self.subscriptions.pop(sub_id, False) is not False

    def targets(self, event_type: str) -> tuple[int, ...]:
        """Subscription ids an event of this type goes to, in subscription order."""
        found = self._targets.get(event_type)
        if found is None:
            subs = self.subscriptions.items()
            found = tuple(sid for sid, kind in subs if kind is None or kind == event_type)
            self._targets[event_type] = found
        return found

    def take_frame(self) -> tuple[str, list[int]]:
        """The next frame: one message, or with coalescing everything queued (up to a cap)."""
        outbox = self.outbox
        count = min(len(outbox), MAX_FRAME_MESSAGES) if self.coalesce else 1
        if count == 1:
            text, index = outbox.popleft()
            return text, ([index] if index >= 0 else [])
        items = [outbox.popleft() for _ in range(count)]
        frame = "[" + ",".join([text for text, _ in items]) + "]"
        return frame, [index for _, index in items if index >= 0]

    @property
    def busy(self) -> bool:
        return bool(self.outbox) or self.sending


def _half_close(ws: ServerConnection) -> None:
    """End the connection without a close frame, like a crashed HA, but lose nothing written.

    write_eof() sends FIN only after asyncio's buffer is flushed, and unlike close() it cannot
    turn into a RST that makes the kernel discard data already queued for the client.
    """
    transport = ws.transport
    with contextlib.suppress(OSError, RuntimeError):
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()


def _abort_if_open(ws: ServerConnection) -> None:
    if ws.state is not State.CLOSED:
        ws.transport.abort()


# --- the simulator --------------------------------------------------------------------------
class HomeAssistantSimulator:
    """A Home Assistant WebSocket API server with a load generator, on the running event loop.

    ``events`` bounds the run; ``max_recorded`` bounds how many generated events are kept in
    ``generated`` (None = all, 0 = none: only counters), which also bounds what history can
    answer, like HA's recorder purge. Delivery flags cost one byte per event and are always kept.
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
    ) -> None:
        self.host, self.port, self.token = host, port, token
        self.rate, self.events = float(rate), events
        self.seed = seed
        self.wait_for_subscriber = wait_for_subscriber
        self.other_events_ratio = other_events_ratio
        self.drop_every = drop_every or None
        self.max_recorded = max_recorded if record else 0
        # aiohttp (and so HA) negotiates permessage-deflate when the client offers it.
        self.compression = compression
        # HA disconnects a client with more than 16384 queued messages; None = never.
        self.max_pending = max_pending
        # Benchmarks: generation pauses while a client has this many messages queued, so "as
        # fast as possible" is as fast as the client reads, not a backlog growing in memory
        # and taking CPU from the pipeline under test. None = generate at `rate` regardless.
        self.max_outbox = max_outbox
        self.ha_version = ha_version
        self._setup_generation(entities, seed)
        self._setup_accounting()
        self._clients: set[Connection] = set()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed: asyncio.Event | None = None

    def _setup_generation(self, entities: int, seed: int) -> None:
        # Separate streams, so which entity comes next never depends on how the events were
        # split into time slices: the same seed gives the same sequence of changes.
        self._pick_rng = random.Random(f"{seed}:pick")
        self._kind_rng = random.Random(f"{seed}:kind")
        self._value_rng = random.Random(f"{seed}:value")
        self._stamp = IsoStamps()
        self._ulid = Ulids(random.Random(f"{seed}:ulid"))
        self.entities = make_entities(entities, self._value_rng)
        self._by_id = {entity.entity_id: entity for entity in self.entities}
        switchable = [e for e in self.entities if e.domain in ("switch", "light")]
        self._switchable = switchable or self.entities
        weights, total = [], 0.0
        for entity in self.entities:
            total += entity.weight
            weights.append(total)
        self._cum_weights = weights
        self._user_id = self._value_rng.randbytes(16).hex()
        self.started_us = now_us()
        self._initial: dict[str, dict[str, Any]] = {}
        for entity in self.entities:
            self._set_initial_state(entity, self.started_us)
        self._slice_us = self._last_us = self.started_us

    def _setup_accounting(self) -> None:
        self.generated: list[dict[str, Any]] = []
        self._times = array("q")  # last_updated / time_fired of `generated`, for history
        self._base = 0  # absolute index of generated[0] once old records are trimmed
        # One byte per generated event (absolute index): written to a live subscription or not.
        self.delivered = bytearray()
        self.generated_count = 0
        self.delivered_count = 0
        self.connection_count = 0  # connections authenticated since start
        self.dropped_count = 0
        self.generation_finished = self.events is not None and self.events <= 0

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/websocket"

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

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        """(entity_id, new_state) of every recorded state change written to a subscription."""
        flags = self.delivered
        base = self._base
        return [
            (event["data"]["entity_id"], event["data"]["new_state"])
            for i, event in enumerate(self.generated)
            if flags[base + i] and event["event_type"] == "state_changed"
        ]

    def delivered_events(self) -> list[dict[str, Any]]:
        base = self._base
        return [e for i, e in enumerate(self.generated) if self.delivered[base + i]]

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
            _half_close(conn.ws)
        asyncio.get_running_loop().call_later(DROP_GRACE_SECONDS, _abort_if_open, conn.ws)

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
            if await self._authenticate(conn):
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

    async def _authenticate(self, conn: Connection) -> bool:
        ws = conn.ws
        await ws.send(dumps({"type": "auth_required", "ha_version": self.ha_version}))
        try:
            raw = await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT)
        except TimeoutError:
            return False  # HA: "Did not receive auth message within 10 seconds"
        try:
            message = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return False  # HA disconnects on invalid JSON without a word
        if message is None:
            return False  # non-text frame: disconnected as well
        problem = _auth_problem(message)
        if problem is None and self._token_ok(message.get("access_token")):
            await ws.send(dumps({"type": "auth_ok", "ha_version": self.ha_version}))
            return True
        reason = (
            f"Auth message incorrectly formatted: {problem}"
            if problem
            else "Invalid access token or password"
        )
        await ws.send(dumps({"type": "auth_invalid", "message": reason}))
        return False

    def _token_ok(self, token: Any) -> bool:
        if not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(token.encode(), self.token.encode())

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
                self._handle(conn, message)

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
                    self._mark_delivered(indices)
        except ConnectionClosed:
            conn.outbox.clear()
        finally:
            conn.sending = False
            if conn.dropping:
                _half_close(conn.ws)
            self._notify()

    def _mark_delivered(self, indices: list[int]) -> None:
        flags = self.delivered
        fresh = 0
        for index in indices:
            if not flags[index]:
                flags[index] = 1
                fresh += 1
        self.delivered_count += fresh

    # --- commands --------------------------------------------------------------------------
    def _handle(self, conn: Connection, message: Any) -> None:
        """HA's ActiveConnection.async_handle: validate, check the id, dispatch."""
        msg_id = message.get("id") if isinstance(message, dict) else None
        kind = message.get("type") if isinstance(message, dict) else None
        if not msg_id or type(msg_id) is not int or not kind or type(kind) is not str:
            code, text = "invalid_format", "Message incorrectly formatted."
            conn.send(error_message(msg_id if isinstance(message, dict) else 0, code, text))
            return
        if msg_id <= conn.last_id:
            text = "Identifier values have to increase."
            conn.send(error_message(msg_id, "id_reuse", text))
            return
        handler = self._commands.get(kind)
        if handler is None:
            conn.send(error_message(msg_id, "unknown_command", "Unknown command."))
            return
        handler(self, conn, msg_id, message)
        conn.last_id = msg_id

    def _cmd_ping(self, conn: Connection, msg_id: int, _message: dict[str, Any]) -> None:
        conn.send(dumps({"id": msg_id, "type": "pong"}))

    def _cmd_supported_features(
        self, conn: Connection, msg_id: int, message: dict[str, Any]
    ) -> None:
        features = message.get("features")
        if not isinstance(features, dict):
            text = "required key not provided @ data['features']. Got None"
            conn.send(error_message(msg_id, "invalid_format", text))
            return
        conn.coalesce = bool(features.get("coalesce_messages"))
        conn.send(result_message(msg_id))

    def _cmd_subscribe_events(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        event_type = message.get("event_type", MATCH_ALL)
        if not isinstance(event_type, str):
            text = f"expected str for dictionary value @ data['event_type']. Got {event_type!r}"
            conn.send(error_message(msg_id, "invalid_format", text))
            return
        conn.subscribe(msg_id, None if event_type == MATCH_ALL else event_type)
        conn.send(result_message(msg_id))
        self._notify()

    def _cmd_unsubscribe_events(
        self, conn: Connection, msg_id: int, message: dict[str, Any]
    ) -> None:
        sub_id = message.get("subscription")
        if type(sub_id) is not int or sub_id < 0:
            text = f"expected int for dictionary value @ data['subscription']. Got {sub_id!r}"
            conn.send(error_message(msg_id, "invalid_format", text))
        elif conn.unsubscribe(sub_id):
            conn.send(result_message(msg_id))
            self._notify()
        else:
            conn.send(error_message(msg_id, "not_found", "Subscription not found."))

    def _cmd_get_states(self, conn: Connection, msg_id: int, _message: dict[str, Any]) -> None:
        states = ",".join([entity.state_json for entity in self.entities])
        conn.send(f'{{"id":{msg_id},"type":"result","success":true,"result":[{states}]}}')

    def _cmd_history(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        problem, query = _history_query(message)
        if problem:
            conn.send(error_message(msg_id, *problem))
        elif query["start"] > now_us():
            conn.send(result_message(msg_id, {}))
        else:
            conn.send(result_message(msg_id, self.history(**query)))

    _commands: dict[str, Callable[[Any, Connection, int, dict[str, Any]], None]] = {
        "ping": _cmd_ping,
        "supported_features": _cmd_supported_features,
        "subscribe_events": _cmd_subscribe_events,
        "unsubscribe_events": _cmd_unsubscribe_events,
        "get_states": _cmd_get_states,
        "history/history_during_period": _cmd_history,
    }

    # --- history ---------------------------------------------------------------------------
    def history(
        self,
        start: int,
        end: int | None,
        entity_ids: list[str],
        include_start_time_state: bool = True,
        significant_changes_only: bool = True,
        minimal_response: bool = False,
        no_attributes: bool = False,
    ) -> dict[str, list[dict[str, Any]]]:
        """history_during_period in HA's compressed form, from the recorded state changes.

        Rows with start < last_updated < end; the state at the start (when asked) carries the
        start time as its ``lu``, as HA's recorder does. Times are float epoch seconds.
        """
        wanted = [eid for eid in entity_ids if eid in self._by_id]
        rows: dict[str, list[tuple[int, dict[str, Any], bool]]] = {eid: [] for eid in wanted}
        if include_start_time_state and start > self.started_us:
            for eid, state in self._states_before(start, set(wanted)).items():
                rows[eid].append((start, state, True))
        for us, state in self._states_between(start, end, set(wanted)):
            rows[state["entity_id"]].append((us, state, False))
        options = (significant_changes_only, minimal_response, no_attributes)
        result = {eid: _compress(eid, found, *options) for eid, found in rows.items()}
        return {eid: found for eid, found in result.items() if found}

    def _states_between(
        self, start: int, end: int | None, wanted: set[str]
    ) -> list[tuple[int, dict[str, Any]]]:
        found = []
        if start < self.started_us and (end is None or self.started_us < end):
            found += [(self.started_us, self._initial[eid]) for eid in sorted(wanted)]
        lo = bisect.bisect_right(self._times, start)
        hi = len(self._times) if end is None else bisect.bisect_left(self._times, end)
        for j in range(lo, hi):
            event = self.generated[j]
            if event["event_type"] == "state_changed" and event["data"]["entity_id"] in wanted:
                found.append((self._times[j], event["data"]["new_state"]))
        return found

    def _states_before(self, moment: int, wanted: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for j in range(bisect.bisect_left(self._times, moment) - 1, -1, -1):
            event = self.generated[j]
            eid = event["data"].get("entity_id")
            if eid in wanted and eid not in found and event["event_type"] == "state_changed":
                found[eid] = event["data"]["new_state"]
                if len(found) == len(wanted):
                    return found
        if self._base == 0:  # nothing trimmed: the start-up states are still known
            for eid in wanted - set(found):
                found[eid] = self._initial[eid]
        return found

    # --- generation ------------------------------------------------------------------------
    def _set_initial_state(self, entity: Entity, us: int) -> None:
        stamp = self._stamp(us)
        context = {"id": self._ulid(us), "parent_id": None, "user_id": None}
        entity.last_changed = stamp
        entity.state = {
            "entity_id": entity.entity_id,
            "state": entity.text,
            "attributes": entity.attributes,
            "last_changed": stamp,
            "last_reported": stamp,
            "last_updated": stamp,
            "context": context,
        }
        entity.state_json = dumps(entity.state)
        self._initial[entity.entity_id] = entity.state

    async def _generate(self) -> None:
        if self.wait_for_subscriber:
            await self.wait_for(lambda: self.subscriber_count > 0, None, "a subscriber")
        loop = asyncio.get_running_loop()
        started, emitted = loop.time(), 0
        self._slice_us = now_us()
        burst = max(1, int(self.rate * MAX_CATCH_UP_SECONDS))
        while not self.generation_finished:
            await asyncio.sleep(TICK_SECONDS)
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

    def _backlogged(self) -> bool:
        limit = self.max_outbox or 0
        return any(len(c.outbox) >= limit for c in self._live() if c.subscriptions)

    def emit(self, count: int) -> None:
        """Generate `count` events now, spread over the time since the last slice, and queue
        them on every matching live subscription."""
        targets = [c for c in self._live() if c.subscriptions]
        for us in self._spread(count):
            kind, event, text = self._next_event(us)
            index = self._record(event, us)
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

    def _spread(self, count: int) -> list[int]:
        """Timestamps for `count` events between the last slice and now, strictly increasing
        (bumped by 1 µs where the clock has not moved), so each entity's are too."""
        now = now_us()
        start, last = self._slice_us, self._last_us
        span = max(now - start, 0)
        stamps = []
        for k in range(1, count + 1):
            us = start + span * k // count
            if us <= last:
                us = last + 1
            stamps.append(us)
            last = us
        self._last_us, self._slice_us = last, max(now, last)
        return stamps

    def _next_event(self, us: int) -> tuple[str, dict[str, Any] | None, str]:
        """(event type, event dict or None when nothing is recorded, event JSON)."""
        if self.other_events_ratio and self._kind_rng.random() < self.other_events_ratio:
            event = self._other_event(us)
            return event["event_type"], event, dumps(event)
        index = bisect.bisect_right(
            self._cum_weights, self._pick_rng.random() * self._cum_weights[-1]
        )
        return self._state_changed(self.entities[min(index, len(self.entities) - 1)], us)

    def _state_changed(self, entity: Entity, us: int) -> tuple[str, dict[str, Any] | None, str]:
        stamp = self._stamp(us)
        text, attributes, attributes_json = entity.next_state(self._value_rng)
        last_changed = stamp if text != entity.text else entity.last_changed
        cid = self._ulid(us)
        context_json = f'{{"id":"{cid}","parent_id":null,"user_id":null}}'
        eid = entity.entity_id
        new_json = (
            f'{{"entity_id":"{eid}","state":{_quote(text)},"attributes":{attributes_json},'
            f'"last_changed":"{last_changed}","last_reported":"{stamp}",'
            f'"last_updated":"{stamp}","context":{context_json}}}'
        )
        event_json = (
            f'{{"event_type":"state_changed","data":{{"entity_id":"{eid}",'
            f'"old_state":{entity.state_json},"new_state":{new_json}}},"origin":"LOCAL",'
            f'"time_fired":"{stamp}","context":{context_json}}}'
        )
        event = None
        new_state = None
        if self.max_recorded != 0:
            # The same objects, as dicts, for the record. Skipped when nothing is recorded:
            # building them (and the garbage collector tracking them) is half the cost.
            context = {"id": cid, "parent_id": None, "user_id": None}
            new_state = {
                "entity_id": eid,
                "state": text,
                "attributes": attributes,
                "last_changed": last_changed,
                "last_reported": stamp,
                "last_updated": stamp,
                "context": context,
            }
            event = {
                "event_type": "state_changed",
                "data": {"entity_id": eid, "old_state": entity.state, "new_state": new_state},
                "origin": "LOCAL",
                "time_fired": stamp,
                "context": context,
            }
        entity.text, entity.last_changed = text, last_changed
        entity.state, entity.state_json = new_state, new_json
        return "state_changed", event, event_json

    def _other_event(self, us: int) -> dict[str, Any]:
        rng = self._kind_rng
        if rng.random() < 0.6:
            data, parent, user = self._service_call(rng), None, self._user_id
        else:
            data, parent, user = self._automation_run(rng)
        return {
            "event_type": "call_service" if "service" in data else "automation_triggered",
            "data": data,
            "origin": "LOCAL",
            "time_fired": self._stamp(us),
            "context": {"id": self._ulid(us), "parent_id": parent, "user_id": user},
        }

    def _service_call(self, rng: random.Random) -> dict[str, Any]:
        entity = rng.choice(self._switchable)
        service = rng.choice(("turn_on", "turn_off", "toggle"))
        service_data: dict[str, Any] = {"entity_id": entity.entity_id}
        if entity.domain == "light" and service == "turn_on":
            service_data["brightness_pct"] = rng.randrange(1, 101)
        return {"domain": entity.domain, "service": service, "service_data": service_data}

    def _automation_run(self, rng: random.Random) -> tuple[dict[str, Any], str, None]:
        # An automation's run context has the triggering state's context as its parent.
        trigger = rng.choice(self.entities)
        object_id = trigger.entity_id.split(".", 1)[1]
        data = {
            "name": f"React to {trigger.attributes.get('friendly_name') or object_id}",
            "entity_id": f"automation.react_to_{object_id}",
            "source": f"state of {trigger.entity_id}",
        }
        return data, trigger.state["context"]["id"], None

    def _record(self, event: dict[str, Any] | None, us: int) -> int:
        index = self.generated_count
        self.generated_count += 1
        self.delivered.append(0)
        if event is None or self.max_recorded == 0:
            return index
        self.generated.append(event)
        self._times.append(us)
        if self.max_recorded is not None and len(self.generated) > self.max_recorded * 5 // 4:
            # Trim in chunks: deleting from the front of a list is linear in its length.
            excess = len(self.generated) - self.max_recorded
            del self.generated[:excess]
            del self._times[:excess]
            self._base += excess
        return index


def _history_query(message: dict[str, Any]) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """Validate a history/history_during_period command as HA's schema does."""
    entity_ids = message.get("entity_ids")
    if not isinstance(entity_ids, list) or not all(isinstance(e, str) for e in entity_ids):
        text = "required key not provided @ data['entity_ids']. Got None"
        return ("invalid_format", text), {}
    start = _parse_time(message.get("start_time"))
    if start is None:
        return ("invalid_start_time", "Invalid start_time"), {}
    end = None
    if message.get("end_time"):
        end = _parse_time(message["end_time"])
        if end is None:
            return ("invalid_end_time", "Invalid end_time"), {}
    query = {
        "start": start,
        "end": end,
        "entity_ids": list(dict.fromkeys(e.lower() for e in entity_ids)),
        "include_start_time_state": bool(message.get("include_start_time_state", True)),
        "significant_changes_only": bool(message.get("significant_changes_only", True)),
        "minimal_response": bool(message.get("minimal_response", False)),
        "no_attributes": bool(message.get("no_attributes", False)),
    }
    return None, query


def _compress(
    entity_id: str,
    rows: list[tuple[int, dict[str, Any], bool]],
    significant_changes_only: bool,
    minimal_response: bool,
    no_attributes: bool,
) -> list[dict[str, Any]]:
    """HA's compressed history rows: {"s", "a", "lu"} (+ "lc" when it differs and was asked)."""
    domain = entity_id.split(".", 1)[0]
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for us, state, at_start in rows:
        changed_here = state["last_changed"] == state["last_updated"]
        significant = changed_here or at_start or domain in SIGNIFICANT_DOMAINS
        if significant_changes_only and not significant:
            continue  # an attribute-only change
        if minimal_response and out and domain not in NEED_ATTRIBUTE_DOMAINS:
            if state["state"] != previous:
                out.append({"s": state["state"], "lu": us / 1e6})
            previous = state["state"]
            continue
        row: dict[str, Any] = {"s": state["state"]}
        row["a"] = {} if no_attributes else state["attributes"]
        row["lu"] = us / 1e6
        if not significant_changes_only and not changed_here and not at_start:
            row["lc"] = _parse_time(state["last_changed"]) / 1e6  # type: ignore[operator]
        out.append(row)
        previous = state["state"]
    return out


# --- a simulator in a thread of its own -----------------------------------------------------
class SimulatorThread:
    """HomeAssistantSimulator on its own event loop in a daemon thread, for synchronous code.

    Everything that reads or changes the simulator's state runs on that loop, so callers see
    consistent snapshots; the counters are plain ints and are read directly.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self.simulator: HomeAssistantSimulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        """Start the thread; returns once the server is listening."""
        self._thread = threading.Thread(target=self._run, name="ha-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"simulator did not start listening within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"simulator failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.simulator = HomeAssistantSimulator(**self._options)
            loop.run_until_complete(self.simulator.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.simulator.stop())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)  # run() then stops the server on its own loop
        thread.join(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run function() on the simulator's loop and return its result."""
        if threading.current_thread() is self._thread:
            return function()  # already on the loop (a wait_for predicate): no round trip

        async def run() -> T:
            return function()

        return self.run(run(), timeout)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the simulator thread is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def sim(self) -> HomeAssistantSimulator:
        if self.simulator is None:
            raise RuntimeError("the simulator thread has not started")
        return self.simulator

    # --- read access ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def token(self) -> str:
        return self.sim.token

    @property
    def connection_count(self) -> int:
        return self.sim.connection_count

    @property
    def subscriber_count(self) -> int:
        return self.call(lambda: self.sim.subscriber_count)

    @property
    def open_connections(self) -> int:
        return self.call(lambda: self.sim.open_connections)

    @property
    def generated_count(self) -> int:
        return self.sim.generated_count

    @property
    def delivered_count(self) -> int:
        return self.sim.delivered_count

    @property
    def done(self) -> bool:
        return self.call(lambda: self.sim.done)

    @property
    def generated(self) -> list[dict[str, Any]]:
        return self.call(lambda: list(self.sim.generated))

    @property
    def delivered(self) -> list[bool]:
        return self.call(lambda: [bool(flag) for flag in self.sim.delivered])

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        return self.call(self.sim.delivered_state_changes)

    def delivered_events(self) -> list[dict[str, Any]]:
        return self.call(self.sim.delivered_events)

    def states(self) -> list[dict[str, Any]]:
        """The current state objects, as get_states would answer."""
        return self.call(lambda: [entity.state for entity in self.sim.entities])

    # --- control and waiting ---------------------------------------------------------------
    def drop_connections(self) -> int:
        return self.call(self.sim.drop_connections)

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float, what: str = "a condition"
    ) -> None:
        """Wait until predicate() holds; it runs on the simulator's loop, after each change."""
        # The extra seconds only cover a wedged loop; the simulator's own deadline comes first.
        self.run(self.sim.wait_for(predicate, timeout, what), timeout + 5)

    def wait_until_done(self, timeout: float) -> None:
        self.wait_for(lambda: self.sim.done, timeout, "every event generated and written out")

    def wait_for_subscribers(self, count: int = 1, timeout: float = 10.0) -> None:
        what = f"{count} subscription(s)"
        self.wait_for(lambda: self.sim.subscriber_count >= count, timeout, what)

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        what = f"{count} authenticated connection(s) since start"
        self.wait_for(lambda: self.sim.connection_count >= count, timeout, what)

    def wait_for_delivered(self, count: int, timeout: float = 10.0) -> None:
        what = f"{count} events delivered"
        self.wait_for(lambda: self.sim.delivered_count >= count, timeout, what)
