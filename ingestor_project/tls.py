"""TLS for every client we run (InfluxDB, Home Assistant, MQTT): PEM files named by the settings,
checked once at start-up, and the one place an ``ssl.SSLContext`` is built from them.

Like HA's ``ssl_ca_cert``: a CA bundle verifies a server whose certificate a private CA (or the
server itself) signed; a client certificate and key answer a server that asks for one. Without a
CA file the system's trust store verifies, as before.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from ingestor_project.env import env_str


class PemFile(str):
    """A PEM file's path that remembers which variable named it, for error messages."""

    variable: str

    def __new__(cls, path: str, variable: str) -> PemFile:
        pem = super().__new__(cls, path)
        pem.variable = variable
        return pem


def env_pem(name: str) -> PemFile | None:
    """The readable file named by variable ``name``, or None when it is unset."""
    path = env_str(name, None)
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}={path!r} cannot be read: {exc.strerror}") from None
    return PemFile(path, name)


@dataclass(frozen=True)
class TlsFiles:
    """What one connection's TLS needs from files; validated on creation (ImproperlyConfigured
    names the variable at fault)."""

    ca_file: PemFile | None = None
    cert_file: PemFile | None = None
    key_file: PemFile | None = None

    def __post_init__(self) -> None:
        if self.key_file and not self.cert_file:
            cert = self.key_file.variable.replace("_KEY_FILE", "_CERT_FILE")
            raise ImproperlyConfigured(f"{self.key_file.variable} is set without {cert}")
        if self.configured:
            client_context(self)  # a file that is not PEM, or a key of another cert, stops here

    @property
    def configured(self) -> bool:
        return bool(self.ca_file or self.cert_file)


def client_context(files: TlsFiles, *, verify: bool = True) -> ssl.SSLContext:
    """A client-side context: the CA file (in place of the system's trust store, like HA's
    ``ssl_ca_cert``) verifies the server, hostname included; ``verify=False`` checks nothing."""
    try:
        context = ssl.create_default_context(cafile=files.ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise _unusable([files.ca_file], "PEM CA certificates", exc) from None
    if not verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if files.cert_file:
        try:
            # An encrypted key would make OpenSSL prompt on the terminal: refuse it instead.
            context.load_cert_chain(files.cert_file, files.key_file, password=_encrypted)
        except (ssl.SSLError, OSError, ValueError) as exc:
            expected = "a PEM certificate and its unencrypted private key"
            raise _unusable([files.cert_file, files.key_file], expected, exc) from None
    return context


def _unusable(files: list[PemFile | None], expected: str, exc: Exception) -> ImproperlyConfigured:
    named = " and ".join(f"{pem.variable}={str(pem)!r}" for pem in files if pem)
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return ImproperlyConfigured(f"{named}: not {expected} ({reason})")


def _encrypted() -> bytes:
    raise ValueError("the private key is encrypted")


def connection_category(exc: BaseException, *, tls: bool = False) -> str:
    """How a failed connection is logged: "tls" when a TLS failure is behind it (a certificate
    refused either way, a handshake alert), else "connection"."""
    seen: BaseException | None = exc
    for _ in range(5):  # the cause chain of a failed connect is short; never loop on a cycle
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return "tls"
        # TLS 1.3 servers refuse a client certificate (or its absence) after the client's side
        # of the handshake is done: the client only sees the connection end before any answer.
        if tls and isinstance(seen, EOFError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    return "connection"
