"""The API v2 writer (influxdb-client) against a real server speaking /api/v2/write.

VictoriaMetrics stores numeric fields only, so the points here are numeric; a recording proxy
in front of it captures the request the client sends, so org, bucket, precision and token are
checked as they travel on the wire.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

import pytest

from tasks.errors import AuthWriteError
from tasks.influx import V2Writer
from tests.helpers import wait_until


class RecordingProxy(ThreadingHTTPServer):
    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        self.requests: list[dict] = []
        self.reject_with: int | None = None


class ProxyHandler(BaseHTTPRequestHandler):
    server: RecordingProxy

    def log_message(self, *_args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        parts = urlsplit(self.path)
        self.server.requests.append(
            {
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": dict(self.headers),
                "body": raw.decode(),
            }
        )
        if self.server.reject_with:
            self._answer(self.server.reject_with, b'{"code":"unauthorized","message":"no"}')
            return
        request = Request(self.server.upstream + self.path, data=raw, method="POST")
        with urlopen(request, timeout=10) as response:
            self._answer(response.status, response.read())

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def proxy(victoria_metrics) -> Iterator[RecordingProxy]:
    server = RecordingProxy(victoria_metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def exported(url: str) -> list[dict]:
    with urlopen(f"{url}/api/v1/export?match[]=" + '{__name__=~".%2B"}', timeout=10) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line]


def test_it_sends_org_bucket_precision_and_token_and_the_server_stores_the_points(proxy):
    now = time.time_ns()
    writer = V2Writer(
        f"http://127.0.0.1:{proxy.server_port}",
        "test-token-v2",
        "home",
        "ha",
        precision="ns",
        gzip_bodies=True,
    )
    lines = [f"W,domain=sensor,entity_id=plug_{n} value={n}.5 {now + n}" for n in range(300)]
    writer.write(lines)
    writer.close()

    request = proxy.requests[0]
    assert request["path"] == "/api/v2/write"
    assert request["query"] == {"org": ["home"], "bucket": ["ha"], "precision": ["ns"]}
    assert request["headers"]["Authorization"] == "Token test-token-v2"
    assert request["body"].splitlines() == lines

    series = wait_until(lambda: exported(proxy.upstream), 30, "points to be queryable")
    stored = {s["metric"]["entity_id"]: s["values"][0] for s in series}
    assert len(stored) == 300
    assert stored["plug_7"] == 7.5
    assert {s["metric"]["__name__"] for s in series} == {"W_value"}


def test_a_refused_token_is_an_auth_class_error(proxy):
    proxy.reject_with = 401
    writer = V2Writer(f"http://127.0.0.1:{proxy.server_port}", "wrong-token", "home", "ha")
    with pytest.raises(AuthWriteError) as caught:
        writer.write(["m value=1.0 1"])
    assert caught.value.status == 401
    assert "wrong-token" not in str(caught.value)
