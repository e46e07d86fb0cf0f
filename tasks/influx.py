"""Synchronous InfluxDB writers for API v1 (``/write``) and API v2 (influxdb-client).

Every failure raises a classified WriteError; nothing is buffered here, so a batch is either
written or its task fails and Celery decides what happens next.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import urlencode

import urllib3

from ingestor_project.tls import TlsFiles, client_context
from tasks.errors import AuthWriteError, TransientWriteError, WriteError, error_for_status

# Bodies smaller than this are sent as they are: compressing them costs more than it saves.
GZIP_MIN_BYTES = 1024


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...

    def ping(self) -> bool: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


class V1Writer:
    """InfluxDB 1.x HTTP API: POST /write?db=...; basic auth so the password stays out of URLs."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        precision: str = "ns",
        timeout: float = 10.0,
        gzip_bodies: bool = True,
        verify_ssl: bool = True,
        tls: TlsFiles | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.query = urlencode({"db": database, "precision": precision})
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if username:
            pair = f"{username}:{password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.gzip = gzip_bodies
        self.http = pool(self.url, timeout, verify_ssl, tls)

    def write(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        headers = dict(self.headers)
        if self.gzip and len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = self.request("POST", f"{self.url}/write?{self.query}", body, headers)
        if response.status != 204:
            raise error_for_status(
                response.status,
                response.data.decode(errors="replace"),
                response.headers.get("Retry-After"),
            )

    def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str]):
        try:
            return self.http.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise unreachable(exc) from None

    def ping(self) -> bool:
        try:
            return self.request("GET", f"{self.url}/ping", None, self.headers).status == 204
        except WriteError:
            return False

    def check(self) -> None:
        """Raise a classified WriteError unless InfluxDB answers, accepts our credentials and
        has our database (what readiness reports)."""
        query = urlencode({"q": "SHOW DATABASES"})
        response = self.request("POST", f"{self.url}/query?{query}", None, self.headers)
        if response.status != 200:
            raise error_for_status(response.status, response.data.decode(errors="replace"))
        series = json.loads(response.data)["results"][0].get("series") or [{}]
        names = {row[0] for row in series[0].get("values") or []}
        if self.database not in names:
            raise AuthWriteError(f"database {self.database!r} does not exist", status=404)

    def close(self) -> None:
        self.http.clear()


class V2Writer:
    """InfluxDB API v2 (2.x, 3.x, Cloud, 1.8+ compatibility) through influxdb-client, SYNCHRONOUS:
    never the client's batching mode, which swallows errors and loses buffered points on exit."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        precision: str = "ns",
        timeout: float = 10.0,
        gzip_bodies: bool = True,
        verify_ssl: bool = True,
        tls: TlsFiles | None = None,
    ) -> None:
        # Imported here: influxdb-client and reactivex are large, and only v2 deployments use them.
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.rest import ApiException

        self.api_exception = ApiException
        self.client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            timeout=int(timeout * 1000),
            enable_gzip=gzip_bodies,
            verify_ssl=verify_ssl,
            ssl_context=tls_context(url, verify_ssl, tls),
        )
        # The client's own retries would hide failures from Celery's retry policy.
        self.client.api_client.configuration.retries = False
        self.api = self.client.write_api(write_options=SYNCHRONOUS)
        self.org, self.bucket = org, bucket
        # For ensure_dbrp, which speaks to the HTTP API itself.
        self.url, self.token = url.rstrip("/"), token
        self.pool_options = (timeout, verify_ssl, tls)
        self.precision = {
            "s": WritePrecision.S,
            "ms": WritePrecision.MS,
            "us": WritePrecision.US,
            "ns": WritePrecision.NS,
        }[precision]

    @contextlib.contextmanager
    def classified(self) -> Iterator[None]:
        """influxdb-client's failures, raised as classified WriteErrors."""
        try:
            yield
        except self.api_exception as exc:
            retry_after = (exc.headers or {}).get("Retry-After")
            body = str(exc.body or exc.reason)
            raise tls_failure(exc) or error_for_status(exc.status or 0, body, retry_after) from None
        except urllib3.exceptions.HTTPError as exc:
            raise unreachable(exc) from None

    def write(self, lines: list[str]) -> None:
        with self.classified():
            self.api.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(lines),
                write_precision=self.precision,
            )

    def check(self) -> None:
        with self.classified():
            bucket = self.client.buckets_api().find_bucket_by_name(self.bucket)
        if bucket is None:
            raise AuthWriteError(f"bucket {self.bucket!r} does not exist", status=404)

    def ensure_dbrp(self, database: str, retention_policy: str = "autogen") -> str:
        """Map InfluxQL's database/retention policy to the bucket (InfluxDB 2's DBRP mapping), so
        InfluxQL clients such as Grafana can query it. Returns "exists" or "created"; raises a
        classified WriteError otherwise."""
        http = pool(self.url, *self.pool_options)
        headers = {"Authorization": f"Token {self.token}"}
        query = urlencode({"name": self.bucket, "org": self.org})
        try:
            found = _v2_json(http, "GET", f"{self.url}/api/v2/buckets?{query}", None, headers)
            if not found.get("buckets"):
                raise AuthWriteError(f"bucket {self.bucket!r} does not exist", status=404)
            bucket_id = found["buckets"][0]["id"]
            query = urlencode({"org": self.org, "db": database, "rp": retention_policy})
            mappings = _v2_json(http, "GET", f"{self.url}/api/v2/dbrps?{query}", None, headers)
            # A virtual mapping (2.2+: bucket name = database) already answers InfluxQL.
            if any(m.get("bucketID") == bucket_id for m in mappings.get("content") or []):
                return "exists"
            body = {
                "org": self.org,
                "bucketID": bucket_id,
                "database": database,
                "retention_policy": retention_policy,
                "default": True,
            }
            _v2_json(http, "POST", f"{self.url}/api/v2/dbrps", json.dumps(body).encode(), headers)
            return "created"
        finally:
            http.clear()

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for a ping
            return False

    def close(self) -> None:
        self.api.close()
        self.client.close()


def _v2_json(http, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict:
    headers = {**headers, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = http.request(method, url, body=body, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise unreachable(exc) from None
    if response.status not in (200, 201):
        raise error_for_status(response.status, response.data.decode(errors="replace"))
    return json.loads(response.data or b"{}")


def pool(url: str, timeout: float, verify_ssl: bool, tls: TlsFiles | None) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=False,
        cert_reqs="CERT_REQUIRED" if verify_ssl else "CERT_NONE",
        ssl_context=tls_context(url, verify_ssl, tls),
    )


def tls_context(url: str, verify_ssl: bool, tls: TlsFiles | None):
    """INFLUX_CA_FILE (else the system's trust store) and the client certificate, for https://
    only: building a context loads the trust store, which costs tens of milliseconds."""
    if not url.startswith("https://"):
        return None
    return client_context(tls or TlsFiles(), verify=verify_ssl)


def unreachable(exc: urllib3.exceptions.HTTPError) -> WriteError:
    """No answer. A TLS failure (a certificate refused either way) needs an operator, as wrong
    credentials do: AuthWriteError, retried no faster than WRITE_AUTH_RETRY_MIN."""
    if isinstance(exc, urllib3.exceptions.SSLError):
        return AuthWriteError(f"InfluxDB TLS failed (INFLUX_CA_FILE/INFLUX_CERT_FILE?): {exc}")
    return TransientWriteError(f"InfluxDB unreachable: {type(exc).__name__}")


def tls_failure(exc) -> WriteError | None:
    """influxdb-client reports urllib3's SSLError as an ApiException of status 0."""
    if exc.status or not str(exc.reason).startswith("SSLError"):
        return None
    detail = str(exc.reason).removeprefix("SSLError").strip()
    return AuthWriteError(f"InfluxDB TLS failed (INFLUX_CA_FILE/INFLUX_CERT_FILE?): {detail}")


def writer_from_settings(settings) -> Writer:
    precision = getattr(settings, "INFLUX_PRECISION", "ns")
    common = {
        "precision": precision,
        "timeout": settings.INFLUX_TIMEOUT,
        "gzip_bodies": settings.INFLUX_GZIP,
        "verify_ssl": settings.INFLUX_VERIFY_SSL,
        "tls": settings.INFLUX_TLS,
    }
    if settings.INFLUX_API_VERSION == "2":
        return V2Writer(
            settings.INFLUX_URL,
            settings.INFLUX_TOKEN,
            settings.INFLUX_ORG,
            settings.INFLUX_BUCKET,
            **common,
        )
    return V1Writer(
        settings.INFLUX_URL,
        settings.INFLUX_DATABASE,
        username=settings.INFLUX_USERNAME,
        password=settings.INFLUX_PASSWORD,
        **common,
    )
