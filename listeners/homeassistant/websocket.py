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


def open_websocket(url: str, ssl_context: ssl.SSLContext | None, max_size: int) -> connect:
    """``async with open_websocket(...) as ws``: one connection, capped at ``max_size`` a frame."""
    return connect(
        url,
        ssl=ssl_context,
        open_timeout=HANDSHAKE_TIMEOUT,
        max_size=max_size,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
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
