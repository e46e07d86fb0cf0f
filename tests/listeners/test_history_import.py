"""History import pieces: the resume plan, the durable position, pacing, the first-start rule,
and a whole import against the simulator with a fake publisher."""

from __future__ import annotations

import asyncio

import pytest

from hasim.preload import preload_history
from hasim.server import HomeAssistantSimulator
from ingestor_project.durations import parse_duration
from listeners.batching import Batch, Batcher
from listeners.filters import EntityFilter
from listeners.homeassistant.backfill import BackfillPolicy
from listeners.homeassistant.history_import import HistoryImport, Pacer, import_name
from listeners.homeassistant.import_launch import import_arguments
from listeners.homeassistant.import_progress import Covered, ImportProgress, load_covered, plan

HOUR = 3600 * 10**9


def test_durations_read_as_people_write_them():
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("12h") == 43200
    assert parse_duration("90m") == 5400
    assert parse_duration("45") == 45
    for bad in ("", "soon", "-3d", "0s", "3 days"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_bad_first_start_duration_stops_the_settings():
    from tests.ingestor_project.test_settings import start

    result = start(SECRET_KEY="x" * 50, HA_IMPORT_HISTORY_ON_FIRST_START="a month")
    assert result.returncode != 0
    assert "HA_IMPORT_HISTORY_ON_FIRST_START: 'a month' is not a duration" in result.stderr
    assert start(SECRET_KEY="x" * 50, HA_IMPORT_HISTORY_ON_FIRST_START="30d").returncode == 0


def test_a_run_inside_what_is_imported_skips_it_and_anything_else_starts_afresh():
    covered = Covered(start_ns=100, position_ns=500, end_ns=900)
    assert plan(0, 1000, None) == (0, 0)
    assert plan(200, 1000, covered) == (500, 100)  # resumes at the position
    assert plan(100, 400, covered) == (500, 100)  # nothing left: reading_from >= end
    assert plan(0, 1000, covered) == (0, 0)  # starts before: the earlier part is new
    assert plan(600, 1000, covered) == (600, 600)  # a gap after the position is not skipped


def test_imports_of_different_entities_keep_their_own_progress():
    assert import_name("home", [], []) == "import:home"
    lights = import_name("home", [], ["light"])
    assert lights.startswith("import:home:") and lights != import_name("home", ["light.*"], [])
    assert lights == import_name("home", [], ["light"])


def test_the_first_start_import_runs_once_and_an_interrupted_one_resumes():
    assert import_arguments(None, None, None) is None
    assert import_arguments("30d", None, None) == ["--since", "30d"]
    assert import_arguments("30d", 12345, None) is None  # not the first run
    unfinished = Covered(0, 10, 20)
    assert import_arguments("30d", 12345, unfinished) == ["--resume"]
    assert import_arguments("30d", 12345, Covered(0, 20, 20)) is None


def test_the_pacer_holds_the_average_rate():
    now = [0.0]
    pacer = Pacer(1000, clock=lambda: now[0])
    assert pacer.delay(500) == pytest.approx(0.5)
    now[0] = 2.0
    assert pacer.delay(500) == 0.0  # behind schedule: no wait
    assert Pacer(0).delay(10**9) == 0.0


def _batch(seq: int, events: int = 1) -> Batch:
    return Batch([{"time": 1}] * events, seq=seq)


@pytest.mark.django_db
def test_a_window_counts_only_once_the_batch_with_its_last_event_is_in_the_broker():
    batcher = Batcher(lambda batch: None, size=2, interval=60, max_pending=10)
    progress = ImportProgress("import:t", 0, 10 * HOUR)
    progress.begin(0, 0)
    assert load_covered("import:t") == Covered(0, 0, 10 * HOUR)
    batcher.add({"time": 1})
    batcher.add({"time": 2})  # batch 1 sealed
    batcher.add({"time": 3})  # in the open buffer: batch 2
    progress.window_done(batcher, HOUR)
    progress.on_published(_batch(1, 2))
    assert progress.position_ns == 0, "the window's last event is not in the broker yet"
    batcher.seal()
    progress.window_done(batcher, 2 * HOUR)  # nothing more: also ends with batch 2
    progress.on_published(_batch(2))
    assert progress.position_ns == 2 * HOUR
    progress.finish()
    assert load_covered("import:t").position_ns == 2 * HOUR
    assert progress.stats()["percent"] == 20.0 and progress.stats()["events"] == 3


def _sim_with_history(states: int) -> HomeAssistantSimulator:
    sim = HomeAssistantSimulator(entities=30, rate=0, seed=11)
    preload_history(sim, states, days=2)
    return sim


async def _import(sim, batcher, progress, **options) -> HistoryImport:
    await sim.start()
    try:
        importer = HistoryImport(
            sim.url,
            sim.token,
            batcher,
            progress,
            policy=BackfillPolicy(window_ns=6 * HOUR),
            **options,
        )
        await importer.run()
        return importer
    finally:
        await sim.stop()


def test_an_import_reads_every_row_once_in_windows_and_honours_the_filters():
    sim = _sim_with_history(3000)
    published: list[dict] = []
    batcher = Batcher(lambda b: published.extend(b.events), size=500, interval=60, max_pending=2)
    start = sim.recorder.started_us * 1000 - 3 * 86400 * 10**9
    progress = ImportProgress("import:x", start, sim.recorder.started_us * 1000 + 10**9)
    only_sensors = (EntityFilter(include_domains=["sensor"]),)

    def pump() -> None:  # the publisher thread's part, on the loop for a deterministic test
        while batcher.publish_next():
            pass

    async def main() -> HistoryImport:
        loop = asyncio.get_running_loop()
        task = loop.create_task(_import(sim, batcher, progress, filters=only_sensors))
        while not task.done():
            pump()
            await asyncio.sleep(0.01)
        return task.result()

    importer = asyncio.run(main())
    batcher.seal()
    pump()
    expected = [
        (e["data"]["entity_id"], e["data"]["new_state"]["state"])
        for e in sim.recorder.events
        if e["data"]["entity_id"].startswith("sensor.")
    ]
    expected += [
        (eid, s["state"]) for eid, s in sim.recorder.initial.items() if eid.startswith("sensor.")
    ]
    got = [(e["entity_id"], e["state"]) for e in published]
    assert sorted(got) == sorted(expected)
    assert len({(e["entity_id"], e["time"]) for e in published}) == len(published)
    assert importer.done and importer.stats["unparseable"] == 0
