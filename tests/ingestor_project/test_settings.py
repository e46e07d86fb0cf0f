"""The settings module validates at start-up: a bad value stops the process naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT

BASE = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "ingestor_project.settings"}
CHECK = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env={**BASE, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_is_off_and_secret_key_required_by_default():
    result = start()
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_it_starts_with_a_secret_key_and_debug_off():
    result = start(SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_malformed_value_names_the_variable():
    result = start(SECRET_KEY="x" * 50, INGEST_BATCH_SIZE="lots")
    assert result.returncode != 0
    assert "INGEST_BATCH_SIZE='lots' is not an integer" in result.stderr


def test_api_v2_requires_token_org_and_bucket():
    result = start(
        SECRET_KEY="x" * 50, INFLUX_API_VERSION="2", INFLUX_ORG="home", INFLUX_BUCKET="ha"
    )
    assert "INFLUX_TOKEN is required when INFLUX_API_VERSION=2" in result.stderr


def test_ha_url_needs_a_token_and_a_usable_url():
    assert "HA_TOKEN is required" in start(SECRET_KEY="x" * 50, HA_URL="http://ha:8123").stderr
    assert (
        "HA_URL='ftp://ha' is not usable"
        in start(SECRET_KEY="x" * 50, HA_URL="ftp://ha", HA_TOKEN="t" * 20).stderr
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("INFLUX_COMPONENT_CONFIG", "{", "INFLUX_COMPONENT_CONFIG is not valid JSON"),
        ("INFLUX_COMPONENT_CONFIG_GLOB", '{"*": {"colour": 1}}', "_GLOB['*'] must be an object"),
        ("INFLUX_TAGS", "site", "INFLUX_TAGS: 'site' is not key=value"),
        ("INFLUX_PRECISION", "h", "INFLUX_PRECISION='h' is not one of"),
        ("INFLUX_MEASUREMENT_ATTR", "friendly_name", "INFLUX_MEASUREMENT_ATTR='friendly_name'"),
        ("METRICS_ENABLED", "maybe", "METRICS_ENABLED='maybe' is not a boolean"),
    ],
)
def test_a_bad_point_schema_or_metrics_value_stops_start_up(variable, value, message):
    result = start(SECRET_KEY="x" * 50, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_the_point_schema_is_built_from_the_settings_at_start_up():
    check = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.INGEST_SCHEMA.precision, settings.INGEST_SCHEMA.tags)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**BASE, "SECRET_KEY": "x" * 50, "INFLUX_PRECISION": "ms", "INFLUX_TAGS": "site=home"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ms {'site': 'home'}"


@pytest.mark.django_db
def test_the_admin_requires_a_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_health_answers_without_io(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
