"""Microseconds per event for the point conversion (tasks/schema.py), on the representative
states of the parity table and on the simulator's entity mix.

    .venv/bin/python bench/schema_speed.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from hasim.server import HomeAssistantSimulator  # noqa: E402
from listeners.homeassistant.normalise import normalise_event  # noqa: E402
from tasks.schema import SchemaOptions, convert  # noqa: E402
from tests.tasks.test_schema_parity import ROWS, T  # noqa: E402


def per_event_us(events: list[dict], options: SchemaOptions, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        for event in events:
            convert(event, options)
    return (time.perf_counter() - started) / (repeat * len(events)) * 1e6


def main() -> None:
    table = [
        {
            "event_type": "state_changed",
            "time": T,
            "entity_id": r[1],
            "state": r[2],
            "attributes": r[3],
        }
        for r in ROWS
    ]
    simulator = HomeAssistantSimulator(entities=200, rate=1, events=None)
    simulator.emit(5000)
    mix = [normalise_event(e) for e in simulator.generated]
    options = SchemaOptions()
    print(f"parity table ({len(table)} states): {per_event_us(table, options, 2000):.2f} µs/event")
    print(f"simulator mix (5000 events):       {per_event_us(mix, options, 20):.2f} µs/event")


if __name__ == "__main__":
    main()
