"""The seeded fault schedule and how each fault is injected and healed.

Faults run one after another: each is injected, held for a seeded number of seconds, healed
(and waited on until the component is back), then a seeded pause lets the stack catch up.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.stack import Stack

COMMON = (
    "influxdb_kill",
    "worker_kill",
    "ha_listener_kill",
    "mqtt_listener_kill",
    "rabbitmq_restart",
    "mosquitto_restart",
    "ha_disconnect",
)
DATABASE_FAULT = {"postgres": "postgres_stop", "sqlite": "sqlite_lock"}


def kinds_for(database: str) -> tuple[str, ...]:
    return (*COMMON, DATABASE_FAULT[database])


@dataclass
class Fault:
    kind: str
    hold: float  # seconds the component stays away (or the lock is held)
    pause: float  # seconds after healing before the next fault
    started_ns: int = 0
    healed_ns: int = 0


@dataclass
class Schedule:
    seed: int
    kinds: tuple[str, ...]
    faults: list[Fault] = field(default_factory=list)
    _round: list[str] = field(default_factory=list)

    def next_fault(self, rng: random.Random, number: int) -> Fault:
        # Every kind once, in a seeded order, before any repeats: even a short run covers all.
        if number % len(self.kinds) == 0:
            self._round = rng.sample(self.kinds, len(self.kinds))
        kind = self._round[number % len(self.kinds)]
        return Fault(kind, hold=round(rng.uniform(0.5, 6.0), 1), pause=round(rng.uniform(1, 4), 1))


def inject(stack: Stack, fault: Fault) -> None:
    """Break, hold, heal; the fault's times are wall-clock nanoseconds, as the events' are."""
    fault.started_ns = time.time_ns()
    INJECTORS[fault.kind](stack, fault.hold)
    fault.healed_ns = time.time_ns()


def _influxdb_kill(stack: Stack, hold: float) -> None:
    stack.influx.stop(signal.SIGKILL)
    time.sleep(hold)
    stack.influx.start()


def _restart_process(name: str) -> Callable[[Stack, float], None]:
    def restart(stack: Stack, hold: float) -> None:
        stack.kill(name, signal.SIGKILL)
        time.sleep(hold)
        stack.spawn(name)
        if name == "listen_homeassistant":
            stack.sim.wait_for_subscribers(1, timeout=60)
        elif name == "listen_mqtt":
            stack.wait_mqtt_subscribed()

    return restart


def _rabbitmq_restart(stack: Stack, hold: float) -> None:
    stack.rabbit.stop()
    time.sleep(hold)
    stack.rabbit.start()


def _mosquitto_restart(stack: Stack, hold: float) -> None:
    stack.mosquitto.stop()
    time.sleep(hold)
    stack.mosquitto.start()


def _ha_disconnect(stack: Stack, hold: float) -> None:
    # HA restarting: every connection cut, queued messages never sent.
    stack.sim.drop_connections()
    stack.sim.wait_for(lambda: stack.sim.sim.subscriber_count > 0, 60, "the listener back")


def _postgres_stop(stack: Stack, hold: float) -> None:
    assert stack.postgres is not None
    stack.postgres.stop("fast")
    time.sleep(hold)
    stack.postgres.start()


def _sqlite_lock(stack: Stack, hold: float) -> None:
    stack.hold_sqlite_lock(hold).join(hold + 60)


INJECTORS: dict[str, Callable[[Stack, float], None]] = {
    "influxdb_kill": _influxdb_kill,
    "worker_kill": _restart_process("worker"),
    "ha_listener_kill": _restart_process("listen_homeassistant"),
    "mqtt_listener_kill": _restart_process("listen_mqtt"),
    "rabbitmq_restart": _rabbitmq_restart,
    "mosquitto_restart": _mosquitto_restart,
    "ha_disconnect": _ha_disconnect,
    "postgres_stop": _postgres_stop,
    "sqlite_lock": _sqlite_lock,
}
