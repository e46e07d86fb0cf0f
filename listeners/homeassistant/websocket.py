"""What every connection to Home Assistant's WebSocket API does before its own commands: open,
authenticate, read JSON frames; and the stop flag the loops around those connections share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from listeners.homeassistant.errors import AuthFailed, ProtocolFailed

# HA answers the handshake at once; waiting longer than this means it is not really there.
HANDSHAKE_TIMEOUT = 10.0
# A read shorter than this means a light stream (a home's events, one frame each): reading then
# pauses for READ_PACE_SECONDS and the next frames gather in the kernel's buffer, so 100 events
# a second wake the listener about 10 times, not 100. A wake costs more than the event it
# brings (50 ms: ~110 µs of CPU an event, 100 ms: ~75, bench/ha_path_cpu.py); 100 ms is short
# beside the batch flush interval, and HA holds far more. Above ~1,500 events a second reads are
# longer, and a busy stream (or a history answer) is read without pauses.
LIGHT_READ_BYTES = 64 * 1024
READ_PACE_SECONDS = 0.1


class PacedConnection(ClientConnection):
    """A client connection that can read a light stream in gulps instead of a wake per frame:
    off until ``pace`` is set, so request-answer exchanges (auth, history) never wait on it."""

    pace = 0.0
    last_read = 0.0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        now, previous = self.loop.time(), self.last_read
        self.last_read = now
        # Only when frames come often: a quiet home's sparse reads gain nothing from a pause.
        # Not reading already means websockets' own flow control paused it; that pause is its.
        frequent = now - previous < 2 * self.pace
        if frequent and len(data) < LIGHT_READ_BYTES and self.transport.is_reading():
            self.transport.pause_reading()
            self.loop.call_later(self.pace, self.transport.resume_reading)


def open_websocket(url: str, ssl_context: ssl.SSLContext | None, max_size: int) -> connect:
    """``async with open_websocket(...) as ws``: one connection, capped at ``max_size`` a frame."""
    return connect(
        url,
        ssl=ssl_context,
        # No permessage-deflate: HA's aiohttp server compresses only when the client offers it,
        # and on a LAN it buys nothing while deflating and inflating every frame was the largest
        # cost of an event on both ends.
        compression=None,
        open_timeout=HANDSHAKE_TIMEOUT,
        max_size=max_size,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
        create_connection=PacedConnection,
    )


async def receive_json(ws: ClientConnection, timeout: float = HANDSHAKE_TIMEOUT) -> Any:
    raw = await asyncio.wait_for(ws.recv(decode=False), timeout)
    try:
        return orjson.loads(raw)
    except ValueError:
        # Not JSON, or nested deeper than a decoder takes (orjson stops at 1024 levels).
        raise ProtocolFailed("Home Assistant sent a frame that is not JSON") from None


async def authenticate(ws: ClientConnection, token: str) -> str | None:
    """The auth exchange; returns HA's version. Raises AuthFailed when the token is refused."""
    first = await receive_json(ws)
    if not isinstance(first, dict) or first.get("type") != "auth_required":
        raise ProtocolFailed(f"expected auth_required, got {str(first)[:100]}")
    await ws.send(json.dumps({"type": "auth", "access_token": token}))
    answer = await receive_json(ws)
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind == "auth_invalid":
        raise AuthFailed(str(answer.get("message") or "access token refused"))
    if kind != "auth_ok":
        raise ProtocolFailed(f"expected auth_ok, got {kind!r}")
    return answer.get("ha_version")


class StopFlag:
    """A loop's stop request: set from a signal handler, checked between units of work."""

    def __init__(self) -> None:
        self.stop_event = asyncio.Event()

    def request_stop(self) -> None:
        """Safe to call from a signal handler: it only sets a flag the loop checks."""
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a stop is requested meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)
