"""The MQTT half of the load: Zigbee2MQTT-style JSON reports (each with its own ``last_seen``)
and a seeded share of poison payloads, published at QoS 1 to the private Mosquitto.

A message counts as emitted once the broker acknowledged it (PUBACK): that is when a device
bridge lets go of it. paho keeps unacknowledged messages and sends them again after a
reconnect, so a Mosquitto restart delays messages without dropping them.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

# Far from the HA load's times (the present), so one time index serves both sources.
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
# Over MQTT_MAX_PAYLOAD_BYTES' default of 256 KiB.
HUGE_BYTES = 300 * 1024
POISON_KINDS = ("deep", "not_json", "nan", "huge", "list")


@dataclass
class Sent:
    number: int
    topic: str
    poison: str | None
    mid: int
    acknowledged: bool = False

    @property
    def time_ns(self) -> int:
        return (BASE_MS + self.number) * 1_000_000

    @property
    def token(self) -> str:
        return self.topic.rsplit("/", 1)[1]


def payload(kind: str | None, number: int) -> bytes:
    seen = BASE_MS + number
    if kind is None:
        return json.dumps({"n": number, "temperature": 20 + number % 97 / 10, "last_seen": seen})
    if kind == "deep":
        return ('{"x": ' + "[" * 1000 + "]" * 1000 + f', "last_seen": {seen}}}').encode()
    if kind == "not_json":
        return b"not json {"
    if kind == "nan":
        return f'{{"reading": NaN, "n": {number}, "last_seen": {seen}}}'.encode()
    if kind == "huge":
        return json.dumps({"blob": "x" * HUGE_BYTES, "last_seen": seen}).encode()
    return b"[1, 2, 3]"


class MqttLoad:
    def __init__(self, port: int, seed: int, rate: float, poison: float) -> None:
        self.rate, self.poison = rate, poison
        self.rng = random.Random(f"{seed}:mqtt")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"chaos-pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_publish = self._acknowledged
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent: list[Sent] = []
        # PUBACKs by packet id (unique here: a run publishes fewer than 65,535 messages). One
        # published while the broker was away stays queued in paho and is acknowledged later.
        self.in_flight: dict[int, Sent] = {}
        self.early: set[int] = set()  # PUBACKs that came before publish() returned
        # Never held while calling paho: its network thread calls back under its own locks.
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mqtt-load", daemon=True)

    def start(self) -> MqttLoad:
        self.thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        number = 0
        while not self.stop_event.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while number < due:
                self._send(number)
                number += 1
            time.sleep(0.02)

    def _send(self, number: int) -> None:
        kind = self.rng.choice(POISON_KINDS) if self.rng.random() < self.poison else None
        device = f"mqpoison{number:07d}" if kind else f"dev{number % 25}"
        topic = f"chaos/z/{device}"
        info = self.client.publish(topic, payload(kind, number), qos=1)
        sent = Sent(number, topic, kind, info.mid)
        with self.lock:
            self.sent.append(sent)
            if info.mid in self.early:
                self.early.discard(info.mid)
                sent.acknowledged = True
            else:
                self.in_flight[info.mid] = sent

    def _acknowledged(self, client, userdata, mid, reason_code, properties) -> None:
        with self.lock:
            sent = self.in_flight.pop(mid, None)
            if sent is None:
                self.early.add(mid)
            else:
                sent.acknowledged = True

    def finish(self, timeout: float) -> int:
        """Stop publishing; wait for the broker to acknowledge all; returns those it did not."""
        self.stop_event.set()
        self.thread.join(10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.in_flight:
                break
            time.sleep(0.2)
        self.client.loop_stop()
        self.client.disconnect()
        return len(self.in_flight)
