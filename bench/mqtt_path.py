"""The pipeline benchmark's MQTT path: a publisher process (bench/mqtt_source.py) sending HA's
``mqtt_eventstream`` state_changed messages, QoS 1, as fast as the pipeline takes them, to the
machine's Mosquitto -> ``listen_mqtt`` -> RabbitMQ -> Celery worker -> InfluxDB.

    .venv/bin/python bench/mqtt_path.py [--seconds 15] [--concurrency 2] [--rate 0]
                                        [--max-unacked 20000] [--backlog 6000]
                                        [--workdir DIR] [--result FILE]

Events are counted in InfluxDB (points with a ``friendly_name_str`` field: every published
entity has a friendly name), over a steady window after a warm-up, as ``throughput()`` in
bench/pipeline.py does for the WebSocket path. Each run has its own topic prefix and client ids,
so runs and tests sharing the Mosquitto never see each other's messages, and it removes the
listener's persistent MQTT session at the end (its databases and queues go with Stack.stop()).

Closed loop, as the WebSocket path's simulator (which stops generating while its client has
4,096 messages unsent): a pacer thread asks InfluxDB every PACE_EVERY seconds how many points it
has written and allows the publisher "landed + backlog" messages in all, through a file, because
an open-loop publisher overran the pipeline (docs/benchmarks.md, "Notes from profiling"). After
the run, Mosquitto's log is read for drops for the listener's client id (``mosquitto_dropped``).
The result is printed as JSON; bench/pipeline.py runs this script for its MQTT row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.influx import count_points, points_written  # noqa: E402
from bench.stack import PY, Stack, proc_stats, wait  # noqa: E402

MQTT_HOST = os.environ.get("BENCH_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("BENCH_MQTT_PORT", "1883"))
MOSQUITTO_PID_FILE = Path("/run/mosquitto/mosquitto.pid")
MOSQUITTO_LOG = Path(os.environ.get("BENCH_MOSQUITTO_LOG", "/var/log/mosquitto/mosquitto.log"))
# How far the publisher may run ahead of InfluxDB: enough to cover the round trip to a point
# the pacer sees (under a second) at this machine's rates, so the cores never wait for work.
BACKLOG = 6000
# The listener's MQTT 5 Receive Maximum (MQTT_MAX_UNACKED): far above the backlog, so the
# backlog, not Mosquitto's queue limits, bounds what Mosquitto holds for the listener. Drops were
# still seen on this machine, cause not found: every run reports mosquitto_dropped and totals.
MAX_UNACKED = 20_000
BATCH_SIZE = 2000
# Points counted (a 1-2 ms query) and the publisher's allowance rewritten this often.
PACE_EVERY = 0.1


def mqtt_throughput(
    workdir: Path,
    seconds: float,
    concurrency: int,
    metrics: bool = True,
    rate: float = 0,
    max_unacked: int = MAX_UNACKED,
    backlog: int = BACKLOG,
) -> dict:
    """Sustained events/s from the publisher to InfluxDB; ``rate`` 0 publishes as fast as the
    pipeline takes the messages, at most ``backlog`` ahead of InfluxDB."""
    if backlog + BATCH_SIZE > max_unacked:
        raise ValueError("the backlog and a batch must fit in the listener's window")
    run = f"bench-{uuid.uuid4().hex[:8]}"
    topic, listener_id = f"{run}/eventstream", f"{run}-listener"
    stack = Stack(
        workdir,
        rate=rate,
        metrics=metrics,
        events=None,
        concurrency=concurrency,
        batch_size=BATCH_SIZE,
        flush=0.5,
        source="mqtt",
    )
    stack.env.update(
        MQTT_URL=f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        MQTT_CLIENT_ID=listener_id,
        MQTT_SUBSCRIPTIONS=f"{topic}=eventstream",
        # The shortest expiry the settings allow: a run that dies before its clean-up leaves
        # its session (and what Mosquitto queued for it) for a minute, not for a week.
        MQTT_SESSION_EXPIRY="60",
        MQTT_MAX_UNACKED=str(max_unacked),
    )
    progress = workdir / f"{run}-publisher.progress"
    pacer = Pacer(stack.db, workdir / f"{run}-publisher.allowance", backlog)
    try:
        open_session(listener_id, topic)
        stack.start()
        # Queued for an absent session, Mosquitto keeps only max_queued_messages (1,000).
        wait(lambda: listener_connected(stack), 60, "the listener's connection")
        pacer.start()
        stack.spawn(
            "publisher", publisher_command(topic, f"{run}-publisher", progress, pacer.path, rate)
        )
        wait(lambda: count_points(stack.db) > 0, 60, "first points")
        time.sleep(min(5.0, seconds / 4))  # past the start-up transient
        t0, c0, p0 = time.monotonic(), count_points(stack.db), published(progress)
        before, mosquitto0 = stack.stats(), mosquitto_cpu_s()
        time.sleep(seconds)
        t1, c1, p1 = time.monotonic(), count_points(stack.db), published(progress)
        after, mosquitto1 = stack.stats(), mosquitto_cpu_s()
        if stack.children["publisher"].poll() is not None:
            raise RuntimeError(f"the publisher exited early: see {workdir}/publisher.log")
        sent, taken, landed = drain(stack, progress)
    finally:
        pacer.stop()
        stack.stop()
        end_session(listener_id)
    events = c1 - c0

    def per_1000(cpu_s: float) -> float:
        return round(cpu_s / max(events, 1) * 1000, 3)

    return {
        "path": "mqtt_eventstream",
        "metrics": metrics,
        "events": events,
        "seconds": round(t1 - t0, 1),
        "events_per_s": round(events / (t1 - t0)),
        # What the publisher sent in the same window: equal to events_per_s give or take the
        # change of the backlog (at most backlog_limit), since the publisher is paced.
        "published_per_s": round((p1 - p0) / (t1 - t0)),
        "backlog_limit": backlog,
        # The whole run, once the publisher stopped and the pipeline landed what it had: sent,
        # acknowledged by Mosquitto, and points in InfluxDB. All three equal: nothing dropped.
        "published_total": sent,
        "broker_acked_total": taken,
        "landed_total": landed,
        "mosquitto_dropped": mosquitto_dropped(listener_id),
        "cpu_s_per_1000_events": {
            name: per_1000(after[name]["cpu_s"] - before[name]["cpu_s"]) for name in after
        },
        # The machine's shared broker, not a child of ours: reported on its own.
        "mosquitto_cpu_s_per_1000_events": (
            per_1000(mosquitto1 - mosquitto0)
            if mosquitto0 is not None and mosquitto1 is not None
            else None
        ),
        "processes": after,
    }


class Pacer(threading.Thread):
    """Keeps the publisher at most ``backlog`` messages ahead of the points in InfluxDB: writes
    "landed + backlog" into the publisher's allowance file every PACE_EVERY seconds."""

    def __init__(self, db: str, path: Path, backlog: int) -> None:
        super().__init__(name="mqtt-pacer", daemon=True)
        self.db, self.path, self.backlog = db, path, backlog
        self._stop_event = threading.Event()
        self.allow(0)  # before the publisher starts: one backlog, nothing more

    def run(self) -> None:
        while not self._stop_event.wait(PACE_EVERY):
            try:
                landed = points_written(self.db)
            except OSError:
                continue  # InfluxDB slow or busy: the last allowance stands, which is safe
            self.allow(landed)

    def allow(self, landed: int) -> None:
        # Replaced whole, so the publisher never reads a half-written number.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(f"{landed + self.backlog}\n")
        os.replace(partial, self.path)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=70)  # one InfluxDB query at most (influx_query waits 60 s)


def publisher_command(
    topic: str, client_id: str, progress: Path, allowance: Path, rate: float
) -> list[str]:
    return [
        PY,
        str(ROOT / "bench" / "mqtt_source.py"),
        "--host",
        MQTT_HOST,
        "--port",
        str(MQTT_PORT),
        "--topic",
        topic,
        "--client-id",
        client_id,
        "--entities",
        "200",
        "--rate",
        str(rate),
        "--progress",
        str(progress),
        "--allowance",
        str(allowance),
    ]


def drain(stack: Stack, progress: Path, quiet: float = 5.0) -> tuple[int, int, int]:
    """Stop the publisher (it waits for the broker's last acknowledgements and reports), then
    wait until InfluxDB holds everything the broker took, or its count stops moving for
    ``quiet`` seconds: (published, acknowledged by the broker, landed)."""
    publisher = stack.children["publisher"]
    os.killpg(publisher.pid, signal.SIGTERM)
    publisher.wait(30)
    sent, taken = (int(n) for n in progress.read_text().split())
    landed, moved = count_points(stack.db), time.monotonic()
    while landed < taken and time.monotonic() - moved < quiet:
        time.sleep(0.5)
        now = count_points(stack.db)
        if now != landed:
            landed, moved = now, time.monotonic()
    return sent, taken, landed


def published(progress: Path) -> int:
    """Messages the publisher has sent so far (it rewrites the file twice a second)."""
    try:
        return int(progress.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0  # not written yet, or caught mid-rewrite


def mosquitto_dropped(client_id: str) -> bool | None:
    """Whether Mosquitto logged dropping messages for this client id (it logs that once each
    time it starts dropping for a client); None when its log cannot be read."""
    try:
        text = MOSQUITTO_LOG.read_text(errors="replace")
    except OSError:
        return None
    return f"Outgoing messages are being dropped for client {client_id}." in text


def mosquitto_cpu_s() -> float | None:
    try:
        pid = int(MOSQUITTO_PID_FILE.read_text())
    except (OSError, ValueError):
        return None
    stats = proc_stats([pid])
    return stats[pid]["cpu_s"] if pid in stats else None


def open_session(client_id: str, topic: str) -> None:
    """Make the listener's persistent session, subscription included, before anything is
    published. Mosquitto gives a message to the subscriptions that exist when it arrives: a
    publisher that starts before the listener has subscribed loses its first messages for good
    (and they never land, so the backlog shrinks by as many). From here on Mosquitto keeps them
    for the listener's session."""
    client = _session(client_id, expiry=60, clean_start=True)
    subscribed = []
    client.on_subscribe = lambda *args: subscribed.append(True)
    client.subscribe(topic, qos=1)
    _loop_until(client, lambda: bool(subscribed), "the subscription")
    client.disconnect()


def end_session(client_id: str) -> None:
    """Remove the listener's persistent session and whatever Mosquitto still queues for it:
    connecting with clean start and no session expiry ends the stored session."""
    try:
        _session(client_id, expiry=0, clean_start=True).disconnect()
    except (OSError, RuntimeError) as exc:  # clean-up: the session expires in a minute anyway
        print(f"mqtt_path: could not end the session {client_id}: {exc}", file=sys.stderr)


def _session(client_id: str, expiry: int, clean_start: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry
    client.connect(MQTT_HOST, MQTT_PORT, 10, clean_start=clean_start, properties=properties)
    _loop_until(client, client.is_connected, "the connection")
    return client


def _loop_until(client: mqtt.Client, done, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline or client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT}: no {what}")


def listener_connected(stack: Stack) -> bool:
    """The listener's heartbeat says it is connected (it subscribes as it connects)."""
    import psycopg

    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT connected FROM listeners_listenerheartbeat WHERE name = 'mqtt'"
        ).fetchone()
    return bool(row and row[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=0, help="publisher rate; 0: as fast as the pipeline takes"
    )
    parser.add_argument("--metrics-off", action="store_true")
    parser.add_argument(
        "--max-unacked", type=int, default=MAX_UNACKED, help="the listener's MQTT_MAX_UNACKED"
    )
    parser.add_argument(
        "--backlog", type=int, default=BACKLOG, help="how far the publisher may run ahead"
    )
    parser.add_argument("--workdir", type=Path, help="for logs; default: a new temporary one")
    parser.add_argument("--result", type=Path, help="also write the result (JSON) to this file")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ingestor-bench-mqtt-"))
    result = mqtt_throughput(
        workdir,
        args.seconds,
        args.concurrency,
        not args.metrics_off,
        args.rate,
        args.max_unacked,
        args.backlog,
    )
    text = json.dumps(result, indent=2)
    if args.result:
        args.result.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
