"""The DBRP step of ensure_influx_database against a stub of InfluxDB 2's HTTP API.

No InfluxDB 2 runs on this machine. The stub answers the way InfluxDB 2's API reference
documents /ping, GET /api/v2/buckets, GET /api/v2/dbrps and POST /api/v2/dbrps (token auth,
org filter, DBRPCreate body with bucketID, database, retention_policy and org or orgID) and
refuses anything else, so a request of the wrong shape fails the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from structlog.testing import capture_logs

TOKEN = "stub-admin-token"
ORG, ORG_ID, BUCKET, BUCKET_ID = "home", "0f0f0f0f0f0f0f0f", "ha_bucket", "b1b1b1b1b1b1b1b1"


class InfluxDB2Stub(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.buckets = [{"id": BUCKET_ID, "name": BUCKET, "orgID": ORG_ID}]
        self.dbrps: list[dict] = []
        self.posts: list[dict] = []
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: InfluxDB2Stub

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def reply(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status: int, code: str, message: str) -> None:
        self.server.refused.append(f"{self.command} {self.path}: {message}")
        self.reply(status, {"code": code, "message": message})

    def authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Token {TOKEN}":
            self.refuse(401, "unauthorized", "unauthorized access")
            return False
        return True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/ping":
            return self.reply(204)
        if not self.authorised():
            return None
        if query.get("org", ORG) != ORG:
            return self.refuse(404, "not found", f'organization name "{query["org"]}" not found')
        if parts.path == "/api/v2/buckets":
            found = [b for b in self.server.buckets if b["name"] == query.get("name", b["name"])]
            return self.reply(200, {"buckets": found})
        if parts.path == "/api/v2/dbrps":
            keys = {"db": "database", "rp": "retention_policy", "bucketID": "bucketID"}
            found = [
                m
                for m in self.server.dbrps
                if all(m[field] == query[key] for key, field in keys.items() if key in query)
            ]
            return self.reply(200, {"content": found})
        return self.refuse(404, "not found", "path not found")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/api/v2/dbrps":
            return self.refuse(404, "not found", "path not found")
        if not self.authorised():
            return None
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self.refuse(415, "invalid", "Content-Type must be application/json")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        required = {"bucketID", "database", "retention_policy"}
        allowed = required | {"org", "orgID", "default"}
        if not required <= set(body) or set(body) - allowed or ("org" in body) == ("orgID" in body):
            return self.refuse(400, "invalid", f"bad DBRPCreate body: {sorted(body)}")
        if body.get("org", ORG) != ORG or body.get("orgID", ORG_ID) != ORG_ID:
            return self.refuse(404, "not found", "organization not found")
        if body["bucketID"] not in {b["id"] for b in self.server.buckets}:
            return self.refuse(404, "not found", "bucket not found")
        self.server.posts.append(body)
        mapping = {
            "id": f"d{len(self.server.posts):015d}",
            "orgID": ORG_ID,
            "bucketID": body["bucketID"],
            "database": body["database"],
            "retention_policy": body["retention_policy"],
            "default": bool(body.get("default", False)),
            "virtual": False,
        }
        self.server.dbrps.append(mapping)
        return self.reply(201, {"content": mapping})


@pytest.fixture
def stub() -> Iterator[InfluxDB2Stub]:
    server = InfluxDB2Stub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def v2_settings(settings, stub):
    settings.INFLUX_API_VERSION = "2"
    settings.INFLUX_URL, settings.INFLUX_TOKEN = stub.url, TOKEN
    settings.INFLUX_ORG, settings.INFLUX_BUCKET = ORG, BUCKET
    settings.INFLUX_DATABASE, settings.INFLUX_TIMEOUT = "home_assistant", 5.0
    return settings


def test_it_maps_the_database_to_the_bucket_once(stub, v2_settings):
    with capture_logs() as logs:
        call_command("ensure_influx_database")
        call_command("ensure_influx_database")
    assert stub.refused == []
    assert stub.posts == [
        {
            "org": ORG,
            "bucketID": BUCKET_ID,
            "database": "home_assistant",
            "retention_policy": "autogen",
            "default": True,
        }
    ]
    outcomes = [e["outcome"] for e in logs if e["event"] == "influx_dbrp_ready"]
    assert outcomes == ["created", "exists"]


def test_a_virtual_mapping_of_the_bucket_is_enough(stub, v2_settings):
    v2_settings.INFLUX_DATABASE = BUCKET
    stub.dbrps.append(
        {
            "id": BUCKET_ID,
            "orgID": ORG_ID,
            "bucketID": BUCKET_ID,
            "database": BUCKET,
            "retention_policy": "autogen",
            "default": True,
            "virtual": True,
        }
    )
    call_command("ensure_influx_database")
    assert stub.posts == [] and stub.refused == []


def test_a_refused_token_is_a_warning_not_a_crash(stub, v2_settings):
    v2_settings.INFLUX_TOKEN = "wrong-token-value"
    with capture_logs() as logs:
        call_command("ensure_influx_database")
    assert stub.posts == []
    warning = next(e for e in logs if e["event"] == "influx_dbrp_not_created")
    assert warning["category"] == "auth" and "401" in warning["error"]
    assert "wrong-token-value" not in json.dumps(logs)


def test_a_missing_bucket_is_reported_by_name(stub, v2_settings):
    v2_settings.INFLUX_BUCKET = "no_such_bucket"
    with capture_logs() as logs:
        call_command("ensure_influx_database")
    assert stub.posts == []
    warning = next(e for e in logs if e["event"] == "influx_dbrp_not_created")
    assert "no_such_bucket" in warning["error"]
