"""The redaction processor scrubs registered secrets and secret-named keys from every line."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from ingestor_project.logging import REDACTED, logging_config, redact_secrets, register_secrets

TOKEN = "redaction-test-token-0123456789abcdef"


def test_registered_secret_values_are_scrubbed_from_any_value():
    register_secrets([TOKEN])
    event = redact_secrets(
        None,
        "info",
        {"event": "x", "url": f"ws://h/?t={TOKEN}", "error": ValueError(f"bad {TOKEN}")},
    )
    assert TOKEN not in str(event)
    assert event["url"] == f"ws://h/?t={REDACTED}"


def test_values_under_secret_looking_keys_are_hidden_whatever_they_are():
    event = redact_secrets(
        None,
        "info",
        {"event": "x", "access_token": "abc", "INFLUX_PASSWORD": "p", "token_count": 0},
    )
    assert event["access_token"] == REDACTED and event["INFLUX_PASSWORD"] == REDACTED


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_stdlib_and_structlog_lines_and_tracebacks_are_scrubbed(fmt):
    register_secrets([TOKEN])
    options = dict(logging_config("INFO", fmt)["formatters"]["structlog"])
    options.pop("()")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(**options))
    logging.getLogger().addHandler(handler)
    try:
        structlog.get_logger("t").info("connecting", header=f"Bearer {TOKEN}")
        logging.getLogger("websockets.client").warning("sent %s", TOKEN)
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            structlog.get_logger("t").exception("boom")
    finally:
        logging.getLogger().removeHandler(handler)
    output = buffer.getvalue()
    assert "connecting" in output and "boom" in output and "RuntimeError" in output
    assert TOKEN not in output


def test_passwords_inside_urls_are_masked_in_any_log_value():
    event = redact_secrets(
        None,
        "error",
        {
            "event": "broker unreachable at amqp://ingestor:hunter2-pass@rabbitmq:5672//",
            "url": "redis://:another-pass@redis:6379/0",
            "error": OSError("cannot reach postgres://app:db-pass@db/app"),
        },
    )
    text = str(event)
    assert not any(p in text for p in ("hunter2-pass", "another-pass", "db-pass"))
    assert "amqp://ingestor:********@rabbitmq:5672//" in event["event"]


def test_django_request_objects_are_logged_as_method_and_redacted_path():
    from django.test import RequestFactory

    request = RequestFactory().get("/metrics", {"token": "query-token-abc123", "page": "2"})
    event = redact_secrets(None, "warning", {"event": "Not Found: /metrics", "request": request})
    assert event["request"] == {"method": "GET", "path": f"/metrics?token={REDACTED}&page=2"}
    assert "query-token-abc123" not in str(event)
