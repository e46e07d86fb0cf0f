"""The write path against the real InfluxDB: splitting, dead letters, replay."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tasks import deadletters, ingest, replay
from tasks.errors import RejectedWriteError, TooLargeWriteError
from tasks.influx import V1Writer
from tasks.models import Category, FailedWrite, PayloadFormat, Status
from tests.helpers import TEST_INFLUX_URL

pytestmark = pytest.mark.django_db
T = 1767323045000000000


def sensor(n: int, unit: str = "W") -> dict:
    return {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": T + n,
        "entity_id": f"sensor.plug_{n}",
        "state": str(n),
        "attributes": {"unit_of_measurement": unit},
    }


@pytest.fixture
def writer(influx, settings):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, influx.database
    ingest.reset_process_state()
    yield V1Writer(TEST_INFLUX_URL, influx.database)
    ingest.reset_process_state()


def test_one_rejected_point_is_isolated_the_rest_written_and_replay_works_after_a_fix(
    influx, writer
):
    # Someone wrote text into "value" of measurement "kWh" before us: a field type conflict.
    influx.write(f'kWh,domain=sensor,entity_id=legacy value="text" {T - 1}')
    events = [sensor(n) for n in range(99)] + [sensor(99, unit="kWh")]

    assert ingest.write_batch(events, batch_id="b1", writer=writer) == 99

    assert len([p for p in influx.points() if p["measurement"] == "W"]) == 99
    letter = FailedWrite.objects.get()
    assert (letter.category, letter.batch_id, letter.points) == (Category.REJECTED, "b1", 1)
    assert letter.payload_format == PayloadFormat.LINE_PROTOCOL
    assert "field type conflict" in letter.error
    assert letter.entity_ids == "sensor.plug_99"

    influx.query('DROP MEASUREMENT "kWh"')  # the operator fixes the conflict
    call_command("replay_failed_writes", "--category", "rejected")
    letter.refresh_from_db()
    assert letter.status == Status.REPLAYED
    assert [p["value"] for p in influx.points() if p["measurement"] == "kWh"] == [99]


class SizeLimitedWriter:
    """InfluxDB answers 413 above a body size; the batch must be split and resent."""

    def __init__(self, inner: V1Writer, max_lines: int) -> None:
        self.inner, self.max_lines, self.calls = inner, max_lines, 0

    def write(self, lines: list[str]) -> None:
        self.calls += 1
        if len(lines) > self.max_lines:
            raise TooLargeWriteError("InfluxDB answered 413: Request Entity Too Large", status=413)
        self.inner.write(lines)


def test_a_batch_too_large_is_split_and_every_point_written(influx, writer):
    limited = SizeLimitedWriter(writer, max_lines=30)
    assert ingest.write_batch([sensor(n) for n in range(200)], writer=limited) == 200
    assert influx.count() == 200
    assert not FailedWrite.objects.exists()


def test_an_event_that_cannot_become_a_point_is_a_dead_letter_and_others_are_written(
    influx, writer
):
    broken = {"event_type": "state_changed", "time": T, "entity_id": "sensor.x"}  # no state
    assert ingest.write_batch([sensor(1), broken, sensor(2)], writer=writer) == 2
    letter = FailedWrite.objects.get()
    assert letter.category == Category.UNREPRESENTABLE
    assert letter.payload_format == PayloadFormat.EVENTS


def test_replay_of_a_still_failing_letter_counts_the_attempt(writer):
    letter = deadletters.record_lines(
        ["m value=1.0 1"], category=Category.TRANSIENT, error="down", batch_id="b"
    )

    class Down:
        def write(self, lines):
            raise RejectedWriteError("InfluxDB answered 400: nope", status=400)

    assert replay.replay_letter(letter, Down(), ingest.settings.INGEST_SCHEMA) is False
    letter.refresh_from_db()
    assert (letter.attempts, letter.status, letter.error) == (
        2,
        Status.PENDING,
        "InfluxDB answered 400: nope",
    )


def test_raw_source_messages_are_kept_but_not_replayable():
    letter = deadletters.record_raw(
        "\x00\x01garbage", source="mqtt", error="not JSON", context="zigbee2mqtt/plug"
    )
    assert letter.category == Category.UNPARSEABLE
    with pytest.raises(ValueError, match="cannot be replayed"):
        replay.lines_of(letter, ingest.settings.INGEST_SCHEMA)


def test_unparseable_markers_from_a_listener_become_dead_letters(influx, writer):
    from events.contract import unparseable_event

    marker = unparseable_event("homeassistant", b"{broken", "not JSON", "ws://ha/api/websocket")
    assert ingest.write_batch([sensor(1), marker], writer=writer) == 1
    letter = FailedWrite.objects.get()
    assert (letter.category, letter.source, letter.payload) == (
        Category.UNPARSEABLE,
        "homeassistant",
        "{broken",
    )


def test_a_nul_byte_in_a_poison_payload_is_kept_visible_and_good_events_written(influx, writer):
    from events.contract import unparseable_event

    marker = unparseable_event("mqtt", b"\x00\x01binary", "not JSON", "zigbee2mqtt/plug")
    assert ingest.write_batch([sensor(1), marker], writer=writer) == 1
    assert FailedWrite.objects.get().payload == "\\x00\x01binary"


def test_a_batch_retried_three_times_keeps_its_three_poison_records_once(influx, writer):
    from events.contract import unparseable_event

    markers = [unparseable_event("mqtt", "garbage", "not JSON", "a/topic") for _ in range(3)]
    for _ in range(4):  # the first delivery and three retries of one batch
        ingest.write_batch([sensor(1), *markers, sensor(2)], batch_id="retried", writer=writer)
    assert FailedWrite.objects.filter(batch_id="retried").count() == 3
    assert influx.count() == 2


def test_a_poison_message_redelivered_in_another_batch_is_kept_once(influx, writer):
    """MQTT: a broker that lost our PUBACK (a restart) delivers the message again, to a new
    batch; it is the same dead letter, not a second one."""
    from events.contract import unparseable_event

    poison = unparseable_event("mqtt", "not json {", "not JSON", "home/z/dev1")
    again = {**poison, "redelivered": True}
    same_garbage_sent_twice = dict(poison)
    other_topic = unparseable_event("mqtt", "not json {", "not JSON", "home/z/dev2")
    ingest.write_batch([sensor(1), poison], batch_id="first", writer=writer)
    ingest.write_batch([again, other_topic, sensor(2)], batch_id="second", writer=writer)
    ingest.write_batch([same_garbage_sent_twice], batch_id="third", writer=writer)
    assert sorted(FailedWrite.objects.values_list("entity_ids", "batch_id")) == [
        ("home/z/dev1", "first"),
        ("home/z/dev1", "third"),  # a second message with the same text is a second letter
        ("home/z/dev2", "second"),
    ]


def test_an_event_from_the_year_9999_is_a_clock_dead_letter_and_the_rest_is_written(influx, writer):
    far = dict(sensor(1), time=253_402_300_800 * 10**9)
    assert ingest.write_batch([sensor(0), far, sensor(2)], batch_id="clock", writer=writer) == 2
    letter = FailedWrite.objects.get()
    assert (letter.category, letter.entity_ids) == (Category.CLOCK, "sensor.plug_1")


def test_an_event_with_only_a_nan_state_is_counted_as_dropped(influx, writer):
    from ingestor_project import metrics

    dropped = metrics.EVENTS_DROPPED.labels("non_finite")
    before = dropped._value.get()
    nan = dict(sensor(1), state="nan", attributes={})
    assert ingest.write_batch([nan, sensor(2)], batch_id="nan", writer=writer) == 1
    assert dropped._value.get() == before + 1
