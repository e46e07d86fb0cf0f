"""Why a connection to Home Assistant ended, as the listener tells them apart."""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI


class AuthFailed(Exception):
    """HA refused the token: retrying quickly cannot help, an operator has to act."""


class ProtocolFailed(Exception):
    """HA answered something the protocol does not allow at this point."""


# What ends a connection in the ordinary course of things: reconnect with backoff.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    ConnectionClosed,
    InvalidHandshake,
    InvalidURI,
    ProtocolFailed,
)
