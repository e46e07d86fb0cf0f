"""The API v1 writer against the real InfluxDB 1.x."""

from __future__ import annotations

import pytest

from tasks.errors import AuthWriteError, RejectedWriteError, TransientWriteError
from tasks.influx import V1Writer
from tests.helpers import TEST_INFLUX_URL


def test_it_writes_points_that_read_back(influx):
    writer = V1Writer(TEST_INFLUX_URL, influx.database)
    writer.write(["°C,domain=sensor,entity_id=kitchen value=21.5 1767323045123456000"])
    assert influx.points() == [
        {
            "measurement": "°C",
            "time": 1767323045123456000,
            "domain": "sensor",
            "entity_id": "kitchen",
            "value": 21.5,
        }
    ]


def test_large_bodies_are_gzipped_and_accepted(influx):
    writer = V1Writer(TEST_INFLUX_URL, influx.database, gzip_bodies=True)
    writer.write([f"m,entity_id=e{n} value={n}.0 {1_000_000_000 + n}" for n in range(2000)])
    assert influx.count() == 2000


def test_a_rewritten_point_overwrites_itself(influx):
    writer = V1Writer(TEST_INFLUX_URL, influx.database)
    for _ in range(3):
        writer.write(["m,entity_id=e value=1.0 1000"])
    assert influx.count() == 1


def test_a_type_conflict_is_rejected(influx):
    writer = V1Writer(TEST_INFLUX_URL, influx.database)
    writer.write(["m value=1.0 1000"])
    with pytest.raises(RejectedWriteError, match="field type conflict") as caught:
        writer.write(['m value="text" 2000'])
    assert caught.value.status == 400


def test_a_missing_database_is_an_auth_class_error(influx):
    writer = V1Writer(TEST_INFLUX_URL, influx.database + "_missing")
    with pytest.raises(AuthWriteError) as caught:
        writer.write(["m value=1.0 1000"])
    assert caught.value.status == 404


def test_an_unreachable_server_is_transient():
    writer = V1Writer("http://127.0.0.1:9", "db", timeout=1)
    with pytest.raises(TransientWriteError, match="unreachable"):
        writer.write(["m value=1.0 1000"])
    assert writer.ping() is False
