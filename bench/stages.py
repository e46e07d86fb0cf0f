"""CPU cost of each stage of the WebSocket path, per event, measured in isolation.

    .venv/bin/python bench/stages.py [--events 40000]

No network and no services: the HA simulator's generator writes the frames a coalescing client
receives; the listener's frame handling turns them into normalised events and task bodies (the
codec the HA listener publishes with); the worker's half decodes the bodies and builds the line
protocol and the gzip body the writer sends. Process CPU time (not wall time), so other work on
the machine inflates the figures far less than it does the end-to-end benchmark's. Complements
bench/pipeline.py: the end-to-end rate is bounded by the sum of these per-event costs (plus
RabbitMQ's and InfluxDB's) over the machine's cores.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ingestor_project.settings")
os.environ.setdefault("SECRET_KEY", "bench-stages-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("METRICS_ENABLED", "true")


def cpu() -> float:
    return time.process_time()


def simulator_frames(events: int) -> tuple[list[bytes], float]:
    from hasim.connection import Connection
    from hasim.server import HomeAssistantSimulator

    sim = HomeAssistantSimulator(entities=200, rate=1, max_recorded=0, compression=False)
    conn = Connection(ws=None)  # type: ignore[arg-type] - frames are taken, never sent
    conn.authenticated, conn.coalesce = True, True
    conn.subscribe(1, "state_changed")
    sim._clients.add(conn)
    frames: list[str] = []
    started = cpu()
    for _ in range(events // 500):
        sim.emit(500)
        while conn.outbox:
            frames.append(conn.take_frame()[0].encode())  # the listener reads bytes
    return frames, cpu() - started


def listener_bodies(frames: list[bytes], serializer: str) -> tuple[list[bytes], int, float]:
    from kombu.serialization import dumps

    from events.codec import pack_events
    from listeners.batching import Batcher
    from listeners.homeassistant.client import HomeAssistantListener

    bodies: list[bytes] = []

    def publish(batch) -> None:
        # What send_task serialises: (args, kwargs, embed).
        packed = pack_events(batch.events, exact_orjson=serializer == "orjson")
        body = ([packed], {"batch_id": batch.batch_id}, {})
        bodies.append(dumps(body, serializer=serializer)[2])

    batcher = Batcher(publish, size=2000, interval=0.5, max_pending=1_000_000)
    listener = HomeAssistantListener("ws://bench/api/websocket", "token", batcher)
    started = cpu()
    taken = 0
    for frame in frames:
        taken += listener.handle_frame(frame)
        listener.metrics.flush()
        while batcher.publish_next():
            pass
    batcher.seal()
    while batcher.publish_next():
        pass
    return bodies, taken, cpu() - started


def worker_lines(
    bodies: list[bytes], content_type: str, keep: list[str] | None = None
) -> tuple[int, float]:
    from kombu.serialization import loads

    from events.codec import unpack_events
    from tasks.ingest import events_to_lines
    from tasks.schema import SchemaOptions

    options = SchemaOptions()  # HA's defaults, whatever the environment says
    written = 0
    started = cpu()
    for body in bodies:
        args, _kwargs, _embed = loads(body, content_type, "binary")
        lines, _ = events_to_lines(unpack_events(args[0]), options)
        gzip.compress("\n".join(lines).encode(), compresslevel=1)
        written += len(lines)
        if keep is not None:
            keep.extend(lines)
    return written, cpu() - started


def metrics_code(events: int) -> float:
    """CPU per event of the metric updates themselves: the listener's counts (flushed every
    frame of 256 events, as often as the listener's tick at full rate) and the worker's per-batch
    observations (2,000 events). The end-to-end on/off comparison cannot resolve this: it is
    smaller than the run-to-run noise."""
    from ingestor_project import metrics
    from listeners.instrumentation import ListenerMetrics

    listener = ListenerMetrics("homeassistant")
    frame = [{"event_type": "state_changed", "entity_id": f"sensor.e{i % 200}"} for i in range(256)]
    lags = [0.2] * 2000
    started = cpu()
    for _ in range(events // 256):
        for event in frame:
            listener.received(event)
        listener.flush()
    for _ in range(events // 2000):
        metrics.observe_many(metrics.LAG_SECONDS, lags)
        metrics.POINTS_WRITTEN.inc(2000)
        metrics.WRITE_SECONDS.observe(0.1)
        metrics.BATCH_EVENTS.observe(2000)
    return cpu() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--serializer", default="orjson", choices=["orjson", "json"])
    parser.add_argument(
        "--lines-out", help="also write the line protocol the worker built to this file"
    )
    args = parser.parse_args()
    import django

    django.setup()
    from events.codec import CONTENT_TYPE, register_orjson

    register_orjson()
    from django.conf import settings

    from ingestor_project.gc_tuning import tune_gc

    tune_gc(settings.GC_THRESHOLD)  # as the listener and worker processes do
    content_type = CONTENT_TYPE if args.serializer == "orjson" else "application/json"
    frames, sim_s = simulator_frames(args.events)
    bodies, taken, listen_s = listener_bodies(frames, args.serializer)
    kept: list[str] | None = [] if args.lines_out else None
    written, work_s = worker_lines(bodies, content_type, kept)
    if args.lines_out:
        Path(args.lines_out).write_text("\n".join(kept or []) + "\n")
    assert taken == written == args.events // 500 * 500, (taken, written)
    per = 1e6 / taken
    print(f"events {taken}, frames {len(frames)}, bodies {len(bodies)}, codec {args.serializer}")
    for name, seconds in (("simulator", sim_s), ("listener", listen_s), ("worker", work_s)):
        print(f"{name:10s} {seconds * per:7.1f} µs/event CPU")
    print(f"{'total':10s} {(sim_s + listen_s + work_s) * per:7.1f} µs/event CPU")
    print(f"{'metrics':10s} {metrics_code(args.events) * 1e6 / args.events:7.2f} µs/event CPU")


if __name__ == "__main__":
    main()
