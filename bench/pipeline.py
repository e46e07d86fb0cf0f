"""The pipeline benchmark: the real services of this machine, the HA simulator as the source.

    .venv/bin/python bench/pipeline.py [--smoke] [--seconds 30] [--out bench-results]

Reports, in one run (JSON in --out, markdown table on stdout and in docs/benchmarks.md with
--write-docs):
- the direct-write ceiling: pre-built line protocol, 5,000-line batches, straight to InfluxDB;
- sustained end-to-end throughput at the simulator's maximum rate (points counted in InfluxDB,
  not in our counters), with metrics on and off, and the ratio to the ceiling;
- the same for the MQTT path: HA's mqtt_eventstream messages, QoS 1, published as fast as the
  pipeline takes them to the machine's Mosquitto and read by listen_mqtt (bench/mqtt_path.py,
  run as a script of its own);
- lag from HA's timestamp to queryable in InfluxDB at a steady 500 events/s (p50/p95/p99),
  measured by polling InfluxDB for new points;
- peak RSS of each process and CPU seconds per 1,000 events;
- /health and /ready p99 at 500 and 1,000 events/s.

The process stack is bench/stack.py, InfluxDB's side bench/influx.py, the report bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.influx import count_points, influx_query, write_ceiling
from bench.report import markdown, targets, write_docs
from bench.stack import PY, ROOT, Stack, wait


def ceiling(lines: int, workdir: Path) -> dict:
    """The same points as the pipeline writes (the simulator's events through the listener's and
    the worker's code, built beforehand by bench/stages.py), as pre-built line protocol in
    5,000-line batches straight to the same InfluxDB."""
    path = workdir / "ceiling.lp"
    subprocess.run(
        [PY, str(ROOT / "bench" / "stages.py"), "--events", str(lines), "--lines-out", str(path)],
        cwd=ROOT,
        env={**os.environ, "METRICS_ENABLED": "false", "DATA_DIR": str(workdir)},
        check=True,
        capture_output=True,
    )
    return write_ceiling(path.read_text().splitlines())


def throughput(
    workdir: Path,
    seconds: float,
    metrics: bool,
    concurrency: int,
    rate: float,
    batch_size: int = 2000,
) -> dict:
    stack = Stack(
        workdir,
        rate=rate,
        metrics=metrics,
        events=None,
        concurrency=concurrency,
        batch_size=batch_size,
        flush=0.5,
    )
    stack.start()
    try:
        wait(lambda: count_points(stack.db) > 0, 60, "first points")
        time.sleep(min(5.0, seconds / 4))  # past the start-up transient
        t0, c0 = time.monotonic(), count_points(stack.db)
        before = stack.stats()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), count_points(stack.db)
        after = stack.stats()
    finally:
        stack.stop()
    events = c1 - c0
    cpu = {
        name: round((after[name]["cpu_s"] - before[name]["cpu_s"]) / max(events, 1) * 1000, 3)
        for name in after
    }
    return {
        "metrics": metrics,
        "events": events,
        "seconds": round(t1 - t0, 1),
        "events_per_s": round(events / (t1 - t0)),
        "cpu_s_per_1000_events": cpu,
        "processes": after,
    }


# Our own processes: what the metrics overhead in CPU per event is computed on.
PIPELINE = ("listener", "worker", "web")


def metrics_on_and_off(
    workdir: Path, seconds: float, concurrency: int, rate: float, repeats: int
) -> dict:
    """Throughput with metrics on and off, runs interleaved so a noisy spell on the machine
    touches both. Each summary is the run with the median rate, with every run's rate and the
    means beside it; the overhead is given on the mean rates and on CPU per event of our own
    processes (listener, worker, web), which the machine's other load disturbs much less."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for _ in range(repeats):
        for metrics in (True, False):
            runs[metrics].append(throughput(workdir, seconds, metrics, concurrency, rate))

    def summary(results: list[dict]) -> dict:
        ranked = sorted(results, key=lambda r: r["events_per_s"])
        rates = [r["events_per_s"] for r in results]
        cpu = [sum(r["cpu_s_per_1000_events"].get(name, 0) for name in PIPELINE) for r in results]
        return {
            **ranked[len(ranked) // 2],
            "runs_events_per_s": rates,
            "mean_events_per_s": round(statistics.fmean(rates)),
            "mean_pipeline_cpu_s_per_1000_events": round(statistics.fmean(cpu), 4),
        }

    on, off = summary(runs[True]), summary(runs[False])
    return {
        "throughput_metrics_on": on,
        "throughput_metrics_off": off,
        "metrics_overhead": {
            "throughput_pct": round(
                (1 - on["mean_events_per_s"] / off["mean_events_per_s"]) * 100, 1
            ),
            "cpu_pct": round(
                (
                    on["mean_pipeline_cpu_s_per_1000_events"]
                    / off["mean_pipeline_cpu_s_per_1000_events"]
                    - 1
                )
                * 100,
                1,
            ),
        },
    }


def latency(workdir: Path, seconds: float, rate: float) -> dict:
    stack = Stack(
        workdir, rate=rate, metrics=True, events=None, concurrency=2, batch_size=1000, flush=0.1
    )
    stack.start()
    lags: list[float] = []
    health: dict[str, list[float]] = {"/health": [], "/ready": []}
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            for path in health:
                started = time.perf_counter()
                try:
                    with urlopen(f"http://127.0.0.1:{stack.web_port}{path}", timeout=5) as r:
                        r.read()
                except OSError:
                    pass  # an unready 503 still counts: its latency is what we measure
                health[path].append(time.perf_counter() - started)
            time.sleep(0.02)

    try:
        wait(lambda: count_points(stack.db) > 0, 60, "first points")
        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        seen: set[tuple] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = influx_query(
                "SELECT friendly_name_str FROM /.*/ WHERE time > now() - 10s", stack.db
            )["results"][0]
            now = time.time_ns()
            for series in result.get("series", []):
                for stamp, _ in series["values"]:
                    key = (series["name"], stamp)
                    if key not in seen:
                        seen.add(key)
                        lags.append((now - stamp) / 1e9)
            time.sleep(0.05)
        stop.set()
        thread.join(10)
        processes = stack.stats()
    finally:
        stack.stop()
    # The first poll sees a backlog of points written before polling began: drop that second.
    lags = lags[int(rate) :] or lags
    # Each web worker's first request loads Django's URLconf and apps: not steady state.
    for path in health:
        health[path] = health[path][5:] or health[path]
    q = statistics.quantiles(lags, n=100)

    def p99(values: list[float]) -> float:
        return round(statistics.quantiles(values, n=100)[98] * 1000, 1) if len(values) > 2 else 0

    return {
        "rate": rate,
        "samples": len(lags),
        "p50_s": round(q[49], 3),
        "p95_s": round(q[94], 3),
        "p99_s": round(q[98], 3),
        "poll_interval_s": 0.05,
        "health_p99_ms": p99(health["/health"]),
        "ready_p99_ms": p99(health["/ready"]),
        "health_requests": len(health["/health"]),
        "processes": processes,
    }


def mqtt_throughput(workdir: Path, seconds: float, concurrency: int) -> dict:
    """The MQTT path's run: bench/mqtt_path.py, a script of its own, with its defaults."""
    result = workdir / "mqtt_path.json"
    command = [PY, str(ROOT / "bench" / "mqtt_path.py"), "--seconds", str(seconds)]
    command += ["--concurrency", str(concurrency), "--workdir", str(workdir)]
    command += ["--result", str(result)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few seconds each, for CI")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--sim-rate",
        type=float,
        default=25_000,
        help="simulator rate for the throughput runs (events/s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="throughput runs with metrics on and off each, interleaved (one in --smoke)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    seconds = 3 if args.smoke else args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="ingestor-bench-"))
    result = {
        "machine": {
            "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "smoke": args.smoke,
        "ceiling": ceiling(20_000 if args.smoke else 200_000, workdir),
        **metrics_on_and_off(
            workdir, seconds, args.concurrency, args.sim_rate, 1 if args.smoke else args.repeats
        ),
        "latency": latency(workdir, seconds, 500),
        "health_at_1000": latency(workdir, seconds, 1000),
        "throughput_mqtt": mqtt_throughput(workdir, seconds, args.concurrency),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    print(table)
    print(targets(result))
    if args.write_docs:
        write_docs(result, table)


if __name__ == "__main__":
    main()
