"""`make run` at a given simulator rate: how far InfluxDB's newest point trails the clock, how
many batches wait in the embedded broker, and the CPU of everything make run started.

    .venv/bin/python bench/demo_lag.py --rate 1000 --seconds 60

It starts `make run` on private ports and a temporary data directory, samples every 2 s after
the first points land, then stops it (SIGTERM). Figures: docs/benchmarks.md, "Embedded broker".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import ROOT, InfluxV1, wait_until
from tests.services import free_port
from tests.test_make_run import BASE_ENV, descendants, free_influx_port, influxd

TICKS = os.sysconf("SC_CLK_TCK")


def newest_point_ns(influx: InfluxV1) -> int:
    result = influx.query("SELECT last(value) FROM /.*/")["results"][0]
    return max((s["values"][0][0] for s in result.get("series", [])), default=0)


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def measure(rate: float, seconds: float, data: Path) -> dict:
    influx_port = free_influx_port()
    env = {
        **BASE_ENV,
        "DATA_DIR": str(data),
        "INFLUX_PORT": str(influx_port),
        "WEB_PORT": str(free_port()),
        "FLOWER_PORT": str(free_port()),
        "SIMULATOR_RATE": str(rate),
    }
    with open(data.parent / "make-run.log", "wb") as log:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    influx = InfluxV1(f"http://127.0.0.1:{influx_port}", "home_assistant")
    try:
        wait_until(lambda: _safe(newest_point_ns, influx), 120, "first points")
        time.sleep(5)  # past start-up (imports, migrations): measure the steady state
        pids = descendants(make.pid) - {make.pid} | influxd(data)
        ours = pids - influxd(data)
        cpu_start, wall_start, lags, backlog = cpu_seconds(ours), time.time(), [], []
        while time.time() - wall_start < seconds:
            lags.append(time.time() - newest_point_ns(influx) / 1e9)
            backlog.append(len(list((data / "broker").glob("*.ingest.msg"))))
            time.sleep(2)
        cpu = cpu_seconds(ours) - cpu_start
        wall = time.time() - wall_start
    finally:
        make.send_signal(signal.SIGTERM)
        make.wait(60)
    lags.sort()
    return {
        "rate": rate,
        "samples": len(lags),
        "lag_p50_s": round(statistics.median(lags), 2),
        "lag_max_s": round(lags[-1], 2),
        "broker_backlog_max": max(backlog),
        "cpu_pct_of_one_core_excluding_influxdb": round(100 * cpu / wall, 1),
    }


def _safe(function, *args):
    try:
        return function(*args)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-lag-") as folder:
        print(json.dumps(measure(args.rate, args.seconds, Path(folder) / "data")))


if __name__ == "__main__":
    main()
