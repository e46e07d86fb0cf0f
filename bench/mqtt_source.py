"""The MQTT benchmark's source: publishes what HA's ``mqtt_eventstream`` publishes for
``state_changed`` events, QoS 1, as fast as it can (or at ``--rate``, or as far as
``--allowance`` lets it), until SIGTERM.

    .venv/bin/python bench/mqtt_source.py --topic bench-x/eventstream --client-id bench-x-pub

HA's integration sends ``json.dumps({"event_type": ..., "event_data": event.data},
cls=JSONEncoder)`` (default separators), the states as ``State.as_dict()``. The payloads are
built once, from the simulator's entities, as templates cut at the timestamps: publishing one
is a join of a few byte strings with a fresh stamp. The stamps strictly increase (a point's
time is part of its identity in InfluxDB, so a repeated stamp would overwrite, not add, a
point), which makes every published state change a point of its own.

``--progress FILE`` gets ``published acked`` rewritten twice a second, so the benchmark can
tell the offered rate from the rate that reaches InfluxDB.

``--allowance FILE`` closes the loop: the file holds the total number of messages the publisher
may have sent so far (the benchmark writes "landed in InfluxDB + backlog" into it several times
a second), so it never runs more than that backlog ahead of the pipeline (why: docs/benchmarks.md,
"Notes from profiling").
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hasim.codec import IsoStamps, Ulids  # noqa: E402
from hasim.entities import make_entities  # noqa: E402

STAMP = "@@STAMP@@"
# Messages published and not yet acknowledged by the broker. The loop keeps to this window
# itself, and paho's own in-flight limit is off: with one set, paho scans every message it
# holds after each PUBACK. A few thousand keep the socket busy without holding the whole run
# in memory.
WINDOW = 2000
# Messages published per turn before the network loop reads acknowledgements.
BURST = 200
PROGRESS_EVERY = 0.5
# How often the allowance file is read again: a fraction of the benchmark's rewrite interval.
ALLOWANCE_EVERY = 0.02


def templates(entities: int, count: int, seed: int) -> list[list[bytes]]:
    """``count`` state_changed payloads (entities picked by the simulator's weights), each cut
    at its new state's timestamps: ``stamp.join(parts)`` is the payload."""
    rng = random.Random(seed)
    home = make_entities(entities, rng)
    ulids = Ulids(rng)
    cumulative, total = [], 0.0
    for entity in home:
        total += entity.weight
        cumulative.append(total)
    # The old states' times only have to look like HA's: an hour ago.
    then_us = time.time_ns() // 1000 - 3_600_000_000
    then = IsoStamps()(then_us)
    old = {
        e.entity_id: state_dict(e.entity_id, e.text, e.attributes, then, then, ulids(then_us))
        for e in home
    }
    built = []
    for n in range(count):
        entity = home[min(bisect.bisect_right(cumulative, rng.random() * total), len(home) - 1)]
        text, attributes, _ = entity.next_state(rng)
        before = old[entity.entity_id]
        changed = STAMP if text != before["state"] else before["last_changed"]
        context_id = ulids(then_us + n)
        new = state_dict(entity.entity_id, text, attributes, STAMP, changed, context_id)
        message = {
            "event_type": "state_changed",
            "event_data": {"entity_id": entity.entity_id, "old_state": before, "new_state": new},
        }
        built.append([part.encode() for part in json.dumps(message).split(STAMP)])
        entity.text = text
        old[entity.entity_id] = state_dict(
            entity.entity_id, text, attributes, then, then, context_id
        )
    return built


def state_dict(
    entity_id: str, state: str, attributes: dict, stamp: str, last_changed: str, context_id: str
) -> dict:
    """``State.as_dict()``, in HA's key order."""
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": dict(attributes),
        "last_changed": last_changed,
        "last_reported": stamp,
        "last_updated": stamp,
        "context": {"id": context_id, "parent_id": None, "user_id": None},
    }


class Allowance:
    """The total the publisher may have sent, read from a file another process rewrites (whole,
    by rename); without a file, no limit."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.total = 0 if path else sys.maxsize
        self.read_at = 0.0

    def __call__(self) -> int:
        now = time.monotonic()
        if self.path and now - self.read_at >= ALLOWANCE_EVERY:
            self.read_at = now
            # Not written yet: the last total stays (0 at first).
            with contextlib.suppress(OSError, ValueError):
                self.total = int(self.path.read_text())
        return self.total


class Source:
    def __init__(
        self,
        client: mqtt.Client,
        topic: str,
        payloads: list[list[bytes]],
        rate: float,
        allowance: Allowance,
    ):
        self.client, self.topic, self.payloads, self.rate = client, topic, payloads, rate
        self.allowance = allowance
        self.published = self.acked = 0
        self.stopping = False
        self.stamps = IsoStamps()
        self.last_us = 0
        client.on_publish = self.on_publish

    def on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acked += 1

    def publish_one(self) -> None:
        us = max(time.time_ns() // 1000, self.last_us + 1)
        self.last_us = us
        parts = self.payloads[self.published % len(self.payloads)]
        self.client.publish(self.topic, self.stamps(us).encode().join(parts), qos=1)
        self.published += 1

    def due(self, started: float) -> int:
        """How many messages may go out now: the window, the allowance, and the rate when one
        is set."""
        room = min(WINDOW - (self.published - self.acked), self.allowance() - self.published)
        if self.rate:
            room = min(room, int((time.monotonic() - started) * self.rate) - self.published)
        return max(0, min(room, BURST))

    def run(self, progress: Path | None) -> None:
        started = last_progress = time.monotonic()
        while not self.stopping:
            for _ in range(self.due(started)):
                self.publish_one()
            # Reads acknowledgements; waits a little only when there is nothing to send (at most
            # until the allowance is read again).
            rc = self.client.loop(0 if self.due(started) else ALLOWANCE_EVERY / 2)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise SystemExit(f"mqtt_source: connection lost: {mqtt.error_string(rc)}")
            if progress and time.monotonic() - last_progress >= PROGRESS_EVERY:
                last_progress = time.monotonic()
                self.report(progress)
        self.settle()
        if progress:
            self.report(progress)

    def settle(self, timeout: float = 10) -> None:
        """On the way out: wait (bounded) for the broker to acknowledge what was sent, so the
        last report says how many messages the broker took."""
        deadline = time.monotonic() + timeout
        while self.acked < self.published and time.monotonic() < deadline:
            if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break

    def report(self, progress: Path) -> None:
        # Replaced whole, so a reader never sees a half-written file.
        partial = progress.with_name(progress.name + ".partial")
        partial.write_text(f"{self.published} {self.acked}\n")
        os.replace(partial, progress)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--templates", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0, help="messages/s; 0: as fast as it can")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progress", type=Path)
    parser.add_argument(
        "--allowance", type=Path, help="file holding how many messages may be sent in all"
    )
    args = parser.parse_args()
    payloads = templates(args.entities, args.templates, args.seed)
    # A clean MQTT 3.1.1 session, as HA's MQTT integration uses by default: nothing of this
    # publisher stays on the broker after it disconnects.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, clean_session=True)
    client.max_inflight_messages_set(0)
    client.connect(args.host, args.port, keepalive=60)
    deadline = time.monotonic() + 10
    while not client.is_connected():  # the CONNACK
        if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
            raise SystemExit(f"mqtt_source: no connection to {args.host}:{args.port}")
    source = Source(client, args.topic, payloads, args.rate, Allowance(args.allowance))
    signal.signal(signal.SIGTERM, lambda *_: setattr(source, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(source, "stopping", True))
    source.run(args.progress)
    client.disconnect()


if __name__ == "__main__":
    main()
