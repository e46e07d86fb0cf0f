"""The pipeline benchmark's MQTT path: a publisher process (bench/mqtt_source.py) sending HA's
``mqtt_eventstream`` state_changed messages, QoS 1, as fast as it can to the machine's
Mosquitto -> ``listen_mqtt`` -> RabbitMQ -> Celery worker -> InfluxDB.

    .venv/bin/python bench/mqtt_path.py [--seconds 15] [--concurrency 2] [--rate 0]

Events are counted in InfluxDB (points with a ``friendly_name_str`` field: every published
entity has a friendly name), over a steady window after a warm-up, as ``throughput()`` in
bench/pipeline.py does for the WebSocket path. Each run has its own topic prefix and client ids,
so runs and tests sharing the Mosquitto never see each other's messages, and it removes the
listener's persistent MQTT session at the end (its databases and queues go with Stack.stop()).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import PY, Stack, count_points, proc_stats, wait  # noqa: E402

MQTT_HOST = os.environ.get("BENCH_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("BENCH_MQTT_PORT", "1883"))
MOSQUITTO_PID_FILE = Path("/run/mosquitto/mosquitto.pid")


def mqtt_throughput(
    workdir: Path, seconds: float, concurrency: int, metrics: bool = True, rate: float = 0
) -> dict:
    """Sustained events/s from the publisher to InfluxDB; ``rate`` 0 publishes flat out."""
    run = f"bench-{uuid.uuid4().hex[:8]}"
    topic, listener_id = f"{run}/eventstream", f"{run}-listener"
    stack = Stack(
        workdir,
        rate=rate,
        metrics=metrics,
        events=None,
        concurrency=concurrency,
        batch_size=2000,
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
    )
    progress = workdir / f"{run}-publisher.progress"
    try:
        stack.start()
        stack._spawn("publisher", publisher_command(topic, f"{run}-publisher", progress, rate))
        wait(lambda: count_points(stack.db) > 0, 60, "first points")
        time.sleep(min(5.0, seconds / 4))  # past the start-up transient
        t0, c0, p0 = time.monotonic(), count_points(stack.db), published(progress)
        before, mosquitto0 = stack.stats(), mosquitto_cpu_s()
        time.sleep(seconds)
        t1, c1, p1 = time.monotonic(), count_points(stack.db), published(progress)
        after, mosquitto1 = stack.stats(), mosquitto_cpu_s()
    finally:
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
        # What the publisher offered in the same window: above events_per_s, Mosquitto queued
        # or dropped the rest for the listener (its max_queued_messages).
        "published_per_s": round((p1 - p0) / (t1 - t0)),
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


def publisher_command(topic: str, client_id: str, progress: Path, rate: float) -> list[str]:
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
    ]


def published(progress: Path) -> int:
    """Messages the publisher has sent so far (it rewrites the file twice a second)."""
    try:
        return int(progress.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0  # not written yet, or caught mid-rewrite


def mosquitto_cpu_s() -> float | None:
    try:
        pid = int(MOSQUITTO_PID_FILE.read_text())
    except (OSError, ValueError):
        return None
    stats = proc_stats([pid])
    return stats[pid]["cpu_s"] if pid in stats else None


def end_session(client_id: str) -> None:
    """Remove the listener's persistent session and whatever Mosquitto still queues for it:
    connecting with clean start and no session expiry ends the stored session."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(MQTT_HOST, MQTT_PORT, 10, clean_start=True, properties=properties)
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0, help="publisher rate; 0: flat out")
    parser.add_argument("--metrics-off", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ingestor-bench-mqtt-"))
    result = mqtt_throughput(
        workdir, args.seconds, args.concurrency, not args.metrics_off, args.rate
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
