"""HA_URL: the base URL or the WebSocket URL, both turned into the WebSocket API address."""

from __future__ import annotations

import pytest

from ingestor_project.ha_url import websocket_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://ha.local:8123", "ws://ha.local:8123/api/websocket"),
        ("https://ha.example.org/", "wss://ha.example.org/api/websocket"),
        ("ws://10.0.0.2:8123/api/websocket", "ws://10.0.0.2:8123/api/websocket"),
        ("http://proxy/ha", "ws://proxy/ha/api/websocket"),
    ],
)
def test_it_accepts_the_base_url_or_the_websocket_url(given, expected):
    assert websocket_url(given) == expected


@pytest.mark.parametrize("given", ["ftp://ha", "ha.local:8123", "http://"])
def test_it_rejects_what_is_not_an_ha_url(given):
    with pytest.raises(ValueError, match="expected"):
        websocket_url(given)
