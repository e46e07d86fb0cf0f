"""The chaos run: a seeded load through the HA and MQTT paths, a seeded fault schedule on
private instances, then a reconciliation of every emitted event.

    python -m tests.chaos --seed 7 --minutes 10          (make chaos SEED=7 MINUTES=10)

Without --minutes each fault kind is injected once (the short run inside `make test`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hasim.poison import KINDS as POISON_KINDS
from tests.chaos import reconcile
from tests.chaos.faults import Fault, Schedule, inject, kinds_for
from tests.chaos.mqtt_load import MqttLoad
from tests.chaos.stack import Stack
from tests.helpers import wait_until


@dataclass
class Options:
    seed: int
    database: str = "postgres"
    minutes: float = 0.0  # 0: every fault kind once
    ha_rate: float = 120.0
    mqtt_rate: float = 40.0
    poison: float = 0.004  # share of HA events that are poison records
    mqtt_poison: float = 0.01
    poison_kinds: tuple[str, ...] = POISON_KINDS
    settle: float = 150.0  # seconds after the last fault for everything to land
    kinds: tuple[str, ...] = ()  # the fault kinds (default: all for the database)


@dataclass
class Result:
    options: Options
    workdir: Path
    faults: list[Fault] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    report: reconcile.Report | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.report is None or self.report.failed or bool(self.crashes)

    def summary(self) -> dict[str, Any]:
        counts = self.report.counts if self.report else Counter()
        return {
            "seed": self.options.seed,
            "database": self.options.database,
            "seconds": round(self.seconds),
            "faults": dict(Counter(f.kind for f in self.faults)),
            "counts": dict(counts),
            "crashes": self.crashes,
            "failed": self.failed,
            "workdir": str(self.workdir),
        }

    def lines(self) -> list[str]:
        o = self.options
        faults = Counter(f.kind for f in self.faults)
        out = [
            f"chaos run seed={o.seed} database={o.database} seconds={round(self.seconds)} "
            f"faults={len(self.faults)} {dict(sorted(faults.items()))}",
        ]
        out += self.report.lines() if self.report else ["no reconciliation (the run broke)"]
        out += [f"  process ended by itself: {crash}" for crash in self.crashes]
        verdict = "FAILED" if self.failed else "passed"
        minutes = f" MINUTES={o.minutes:g}" if o.minutes else ""
        out.append(
            f"chaos run {verdict}; repeat with: make chaos SEED={o.seed}{minutes} "
            f"CHAOS_DATABASES={o.database}  (logs: {self.workdir})"
        )
        return out


def run(options: Options, workdir: Path, say=print) -> Result:
    result = Result(options, workdir)
    started = time.monotonic()
    stack = Stack(
        workdir,
        database=options.database,
        seed=options.seed,
        ha_rate=options.ha_rate,
        poison=options.poison,
        poison_kinds=options.poison_kinds,
    )
    say(f"chaos run: seed={options.seed} database={options.database} workdir={workdir}")
    try:
        stack.start()
        load = MqttLoad(stack.mosquitto.port, options.seed, options.mqtt_rate, options.mqtt_poison)
        load.start()
        wait_until(lambda: stack.db.count() > 0, 60, "the first points", interval=0.5)
        _inject_faults(stack, options, result, say)
        result.report = _settle(stack, load, options, result, say)
        _check_processes(stack, result)
    finally:
        result.seconds = time.monotonic() - started
        stack.stop()
    return result


def _inject_faults(stack: Stack, options: Options, result: Result, say) -> None:
    rng = random.Random(options.seed)
    kinds = options.kinds or kinds_for(options.database)
    schedule = Schedule(options.seed, kinds)
    deadline = time.monotonic() + options.minutes * 60
    number = 0
    while number < len(kinds) or time.monotonic() < deadline:
        fault = schedule.next_fault(rng, number)
        inject(stack, fault)
        at = datetime.fromtimestamp(fault.started_ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
        say(f"  fault {number + 1} at {at}Z: {fault.kind} hold={fault.hold}s pause={fault.pause}s")
        result.faults.append(fault)
        _check_processes(stack, result)
        time.sleep(fault.pause)
        number += 1


def _check_processes(stack: Stack, result: Result) -> None:
    """No input and no fault of another component may end one of our processes."""
    for name, code in stack.alive().items():
        if code is not None:
            tail = stack.log_path(name).read_text(errors="replace")[-1500:]
            result.crashes.append(f"{name} exited {code}: {tail}")
            stack.spawn(name)


def _settle(stack: Stack, load: MqttLoad, options: Options, result: Result, say):
    stack.sim.finish_generation()
    unacked = load.finish(timeout=60)
    say(f"  load stopped; MQTT messages the broker never acknowledged: {unacked}")
    stack.sim.wait_until_done(timeout=60)
    deadline = time.monotonic() + options.settle
    while True:
        report = _reconcile(stack, load, result)
        if not report.failed or time.monotonic() > deadline:
            return report
        time.sleep(5)


def _reconcile(stack: Stack, load: MqttLoad, result: Result) -> reconcile.Report:
    sim = stack.sim
    generated, delivered = sim.call(lambda: (list(sim.sim.generated), list(sim.sim.delivered)))
    emitted = reconcile.ha_emitted(generated, [bool(f) for f in delivered])
    emitted += reconcile.mqtt_emitted(load.sent)
    letters = reconcile.DeadLetters(reconcile.dead_letter_rows(stack.env["DATABASE_URL"]))
    kills = [f.started_ns for f in result.faults if f.kind == "ha_listener_kill"]
    outages = [f.started_ns for f in result.faults if f.kind == "rabbitmq_restart"]
    return reconcile.reconcile(
        emitted,
        reconcile.point_times(stack.db),
        letters,
        listener_kills_ns=kills,
        broker_outages_ns=outages,
        initial_ns=sim.sim.source.started_us * 1000,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--minutes", type=float, default=0.0, help="0: every fault kind once")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--poison-kinds",
        default=",".join(POISON_KINDS),
        help="HA poison record kinds (a diagnosis narrows them; the proof uses all)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    kinds = tuple(k for k in args.poison_kinds.split(",") if k)
    options = Options(seed, args.database, args.minutes, poison_kinds=kinds)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-{args.database}-"))
    result = run(options, workdir, say=lambda text: print(text, flush=True))
    print("\n".join(result.lines()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result.summary(), indent=2) + "\n")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
