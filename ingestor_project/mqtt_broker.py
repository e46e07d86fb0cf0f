"""The MQTT broker's address and credentials, from MQTT_URL and MQTT_USERNAME/MQTT_PASSWORD.

Pure parsing, no I/O: settings.py calls it in every process, where no broker need be reachable.
Error messages never repeat the URL, because it may hold a password.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

# scheme: (default port, TLS)
_SCHEMES = {"mqtt": (1883, False), "mqtts": (8883, True)}


@dataclass(frozen=True)
class MqttBroker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def broker_from_url(url: str) -> MqttBroker:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; ValueError says what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL like mqtt://host:1883 (bad port?)") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"scheme {parts.scheme!r} is not mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("has no host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme://host:port only, without a path or query")
    default_port, tls = _SCHEMES[parts.scheme]
    return MqttBroker(
        host=parts.hostname,
        port=port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def mqtt_broker(url: str, username: str | None, password: str | None) -> MqttBroker:
    """The broker of MQTT_URL with the credentials of either the URL or MQTT_USERNAME and
    MQTT_PASSWORD (not both); ValueError names the variable at fault."""
    try:
        broker = broker_from_url(url)
    except ValueError as exc:
        raise ValueError(f"MQTT_URL {exc}") from None
    if (username or password) and broker.username:
        raise ValueError(
            "set the MQTT credentials either in MQTT_URL or in MQTT_USERNAME/MQTT_PASSWORD"
        )
    if password and not username:
        raise ValueError("MQTT_PASSWORD needs MQTT_USERNAME")
    if username:
        broker = dataclasses.replace(broker, username=username, password=password)
    return broker
