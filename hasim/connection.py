"""One client connection: its subscriptions and the queue of messages its writer drains."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

# HA joins everything that is queued into one frame; a cap keeps a frame around 100-300 KB,
# under the 1 MiB a default `websockets` client accepts.
MAX_FRAME_MESSAGES = 256


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


def half_close(ws: ServerConnection) -> None:
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


def abort_if_open(ws: ServerConnection) -> None:
    if ws.state is not State.CLOSED:
        ws.transport.abort()
