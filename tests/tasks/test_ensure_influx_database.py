from __future__ import annotations

import uuid

from django.core.management import call_command

from tests.helpers import TEST_INFLUX_URL, InfluxV1


def test_it_creates_the_database_once_and_is_idempotent(influx, settings):
    name = f"test_created_{uuid.uuid4().hex[:8]}"
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, name
    try:
        call_command("ensure_influx_database")
        call_command("ensure_influx_database")
        databases = influx.query("SHOW DATABASES", database=False)["results"][0]["series"][0]
        assert [name] in databases["values"]
    finally:
        InfluxV1(TEST_INFLUX_URL, name).query(f'DROP DATABASE "{name}"', database=False)


def test_an_unreachable_influxdb_is_a_warning_not_a_crash(settings):
    settings.INFLUX_URL, settings.INFLUX_TIMEOUT = "http://127.0.0.1:9", 1.0
    call_command("ensure_influx_database")
