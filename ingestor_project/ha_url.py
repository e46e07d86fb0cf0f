"""Turn whatever an operator writes in HA_URL into Home Assistant's WebSocket API address."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

WEBSOCKET_PATH = "/api/websocket"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def websocket_url(value: str) -> str:
    """``http://host:8123`` and ``ws://host:8123/api/websocket`` both give the WebSocket URL.

    Raises ValueError with a message fit for an operator when the value is not a URL we can use.
    """
    parts = urlsplit(value.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError("expected http(s)://host:port or ws(s)://host:port/api/websocket")
    path = parts.path.rstrip("/")
    if not path.endswith(WEBSOCKET_PATH):
        path = path + WEBSOCKET_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))
