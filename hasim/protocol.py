"""HA's WebSocket protocol as a server speaks it: the auth phase, then commands and their replies.

Follows ``homeassistant/components/websocket_api`` (auth.py, connection.py, commands.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from hasim.codec import dumps, now_us
from hasim.connection import Connection
from hasim.entities import Entity
from hasim.history import Recorder, parse_history_query

# HA closes a connection that has not authenticated within 10 s (websocket_api/http.py).
AUTH_TIMEOUT = 10.0
MATCH_ALL = "*"


def result_message(msg_id: int, result: Any = None) -> str:
    return dumps({"id": msg_id, "type": "result", "success": True, "result": result})


def error_message(msg_id: Any, code: str, message: str) -> str:
    error = {"code": code, "message": message}
    return dumps({"id": msg_id, "type": "result", "success": False, "error": error})


def auth_problem(message: Any) -> str | None:
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


def token_ok(presented: Any, token: str) -> bool:
    if not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(presented.encode(), token.encode())


async def authenticate(ws: ServerConnection, token: str, ha_version: str) -> bool:
    """The auth phase: auth_required, then auth_ok or auth_invalid; False means disconnect."""
    await ws.send(dumps({"type": "auth_required", "ha_version": ha_version}))
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
    problem = auth_problem(message)
    if problem is None and token_ok(message.get("access_token"), token):
        await ws.send(dumps({"type": "auth_ok", "ha_version": ha_version}))
        return True
    reason = (
        f"Auth message incorrectly formatted: {problem}"
        if problem
        else "Invalid access token or password"
    )
    await ws.send(dumps({"type": "auth_invalid", "message": reason}))
    return False


class Commands:
    """HA's ActiveConnection.async_handle: validate a command, check its id, dispatch it.

    ``on_change`` is called when a subscription comes or goes, so waiters re-check.
    """

    def __init__(
        self, entities: list[Entity], recorder: Recorder, on_change: Callable[[], None]
    ) -> None:
        self.entities = entities
        self.recorder = recorder
        self.on_change = on_change
        self._handlers: dict[str, Callable[[Connection, int, dict[str, Any]], None]] = {
            "ping": self._ping,
            "supported_features": self._supported_features,
            "subscribe_events": self._subscribe_events,
            "unsubscribe_events": self._unsubscribe_events,
            "get_states": self._get_states,
            "history/history_during_period": self._history,
        }

    def handle(self, conn: Connection, message: Any) -> None:
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
        handler = self._handlers.get(kind)
        if handler is None:
            conn.send(error_message(msg_id, "unknown_command", "Unknown command."))
            return
        handler(conn, msg_id, message)
        conn.last_id = msg_id

    def _ping(self, conn: Connection, msg_id: int, _message: dict[str, Any]) -> None:
        conn.send(dumps({"id": msg_id, "type": "pong"}))

    def _supported_features(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        features = message.get("features")
        if not isinstance(features, dict):
            text = "required key not provided @ data['features']. Got None"
            conn.send(error_message(msg_id, "invalid_format", text))
            return
        conn.coalesce = bool(features.get("coalesce_messages"))
        conn.send(result_message(msg_id))

    def _subscribe_events(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        event_type = message.get("event_type", MATCH_ALL)
        if not isinstance(event_type, str):
            text = f"expected str for dictionary value @ data['event_type']. Got {event_type!r}"
            conn.send(error_message(msg_id, "invalid_format", text))
            return
        conn.subscribe(msg_id, None if event_type == MATCH_ALL else event_type)
        conn.send(result_message(msg_id))
        self.on_change()

    def _unsubscribe_events(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        sub_id = message.get("subscription")
        if type(sub_id) is not int or sub_id < 0:
            text = f"expected int for dictionary value @ data['subscription']. Got {sub_id!r}"
            conn.send(error_message(msg_id, "invalid_format", text))
        elif conn.unsubscribe(sub_id):
            conn.send(result_message(msg_id))
            self.on_change()
        else:
            conn.send(error_message(msg_id, "not_found", "Subscription not found."))

    def _get_states(self, conn: Connection, msg_id: int, _message: dict[str, Any]) -> None:
        states = ",".join([entity.state_json for entity in self.entities])
        conn.send(f'{{"id":{msg_id},"type":"result","success":true,"result":[{states}]}}')

    def _history(self, conn: Connection, msg_id: int, message: dict[str, Any]) -> None:
        problem, query = parse_history_query(message)
        if problem:
            conn.send(error_message(msg_id, *problem))
        elif query["start"] > now_us():
            conn.send(result_message(msg_id, {}))
        else:
            conn.send(result_message(msg_id, self.recorder.history(**query)))
