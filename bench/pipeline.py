"""The pipeline benchmark: the real services of this machine, the HA simulator as the source.

    .venv/bin/python bench/pipeline.py [--smoke] [--seconds 30] [--out bench-results]

Reports, in one run (JSON in --out, markdown table on stdout and in docs/benchmarks.md with
--write-docs):
- the direct-write ceiling: pre-built line protocol, 5,000-line batches, straight to InfluxDB;
- sustained end-to-end throughput at the simulator's maximum rate (points counted in InfluxDB,
  not in our counters), with metrics on and off, and the ratio to the ceiling;
- the same for the MQTT path: HA's mqtt_eventstream messages, QoS 1, published flat out to
  the machine's Mosquitto and read by listen_mqtt (bench/mqtt_path.py);
- lag from HA's timestamp to queryable in InfluxDB at a steady 500 events/s (p50/p95/p99),
  measured by polling InfluxDB for new points;
- peak RSS of each process and CPU seconds per 1,000 events;
- /health and /ready p99 at 500 and 1,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
INFLUX = os.environ.get("BENCH_INFLUX_URL", "http://127.0.0.1:18086")
BROKER = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "bench-token-0123456789abcdef"


# --- small clients -------------------------------------------------------------------------------
def influx_query(q: str, db: str | None = None) -> dict:
    params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
    with urlopen(Request(f"{INFLUX}/query", data=urlencode(params).encode()), timeout=60) as r:
        return json.load(r)


def count_points(db: str) -> int:
    # Every simulated entity has a friendly_name, so every point has friendly_name_str.
    result = influx_query("SELECT count(friendly_name_str) FROM /.*/", db)["results"][0]
    return sum(series["values"][0][1] for series in result.get("series", []))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- process accounting --------------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            found.append(int(child))
            frontier.append(int(child))
    return found


def proc_stats(pids: list[int]) -> dict[int, dict]:
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        stats[pid] = {
            "cpu_s": (int(fields[11]) + int(fields[12])) / tick,
            "peak_rss_mib": hwm / 1024,
        }
    return stats


SERVICES = {"rabbitmq": "beam.smp", "influxdb": "influxd", "postgresql": "postgres"}


def service_pids() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {name: [] for name in SERVICES}
    by_command = {command: name for name, command in SERVICES.items()}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if command in by_command:
                found[by_command[command]].append(int(entry.name))
    return found


class Stack:
    """Simulator, listener, worker and web as child processes, ended by pid.

    ``source="mqtt"`` runs ``listen_mqtt`` instead of the HA listener, and no simulator: the
    caller sets the MQTT variables in ``env`` and spawns its own publisher (bench/mqtt_path.py).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        rate: float,
        metrics: bool,
        events: int | None,
        concurrency: int,
        batch_size: int,
        flush: float,
        source: str = "homeassistant",
    ) -> None:
        self.workdir, self.children, self.source = workdir, {}, source
        self.db = f"bench_{uuid.uuid4().hex[:8]}"
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.sim_port, self.web_port = free_port(), free_port()
        self.pg = f"bench_{uuid.uuid4().hex[:8]}"
        self.rate, self.events, self.concurrency = rate, events, concurrency
        metrics_dir = workdir / f"metrics-{self.db}"
        metrics_dir.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
            "DJANGO_SETTINGS_MODULE": "ingestor_project.settings",
            "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "CELERY_BROKER_URL": BROKER,
            "CELERY_INGEST_QUEUE": self.queue,
            "CELERY_MAINTENANCE_QUEUE": self.queue + "-m",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.pg}",
            "INFLUX_URL": INFLUX,
            "INFLUX_DATABASE": self.db,
            "HA_URL": f"ws://127.0.0.1:{self.sim_port}/api/websocket",
            "HA_TOKEN": TOKEN,
            "INGEST_BATCH_SIZE": str(batch_size),
            "INGEST_FLUSH_INTERVAL": str(flush),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "METRICS_ENABLED": "true" if metrics else "false",
            "READY_LISTENERS": source,
            "BACKFILL_ENABLED": "false",
        }

    def start(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg}"')
        influx_query(f'CREATE DATABASE "{self.db}"')
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], env=self.env, cwd=ROOT, check=True)
        if self.source == "homeassistant":
            self._start_simulator()
        self._spawn(
            "worker",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "ingestor_project",
                "worker",
                "-Q",
                self.queue,
                "-c",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
                "-n",
                f"{self.queue}@%h",
            ],
        )
        self._spawn(
            "web",
            [
                PY,
                "-m",
                "gunicorn",
                "ingestor_project.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "2",
            ],
        )
        self._spawn("listener", [PY, "manage.py", f"listen_{self.source}"])
        wait(lambda: port_open(self.web_port), 30, "web")

    def _start_simulator(self) -> None:
        sim = [
            "manage.py",
            "simulate_homeassistant",
            "--port",
            str(self.sim_port),
            "--token",
            TOKEN,
            "--entities",
            "200",
            "--rate",
            str(self.rate),
            "--max-recorded",
            "0",
            "--no-compression",
            # At the maximum rate, generate as fast as the listener reads (not a backlog).
            "--max-outbox",
            "4096",
            *(["--events", str(self.events)] if self.events else []),
        ]
        self._spawn("simulator", [PY, *sim])
        wait(lambda: port_open(self.sim_port), 30, "simulator")

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.children[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stats(self) -> dict[str, dict]:
        out = {}
        groups = {
            name: (tree(proc.pid) if proc.poll() is None else [])
            for name, proc in self.children.items()
        }
        # The machine's services do part of the work: their CPU counts against the same cores
        # (every process of theirs, so other work on the machine shows up here too).
        groups.update(service_pids())
        for name, pids in groups.items():
            per_pid = proc_stats(pids)
            out[name] = {
                "processes": len(per_pid),
                "cpu_s": round(sum(p["cpu_s"] for p in per_pid.values()), 2),
                "peak_rss_mib_max": round(
                    max((p["peak_rss_mib"] for p in per_pid.values()), default=0), 1
                ),
            }
        return out

    def stop(self) -> None:
        import psycopg

        for proc in self.children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.children.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        influx_query(f'DROP DATABASE "{self.db}"')
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pg}" WITH (FORCE)')
        from kombu import Connection

        with Connection(BROKER) as conn:
            channel = conn.channel()
            for queue in (self.queue, self.queue + "-m"):
                channel.queue_delete(queue)


# --- measurements --------------------------------------------------------------------------------
def ceiling(lines: int, workdir: Path) -> dict:
    """The same points as the pipeline writes (the simulator's events through the listener's and
    the worker's code, built beforehand by bench/stages.py), as pre-built line protocol in
    5,000-line batches straight to the same InfluxDB."""
    from tasks.influx import V1Writer

    path = workdir / "ceiling.lp"
    subprocess.run(
        [PY, str(ROOT / "bench" / "stages.py"), "--events", str(lines), "--lines-out", str(path)],
        cwd=ROOT,
        env={**os.environ, "METRICS_ENABLED": "false", "DATA_DIR": str(workdir)},
        check=True,
        capture_output=True,
    )
    batch = path.read_text().splitlines()
    db = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    influx_query(f'CREATE DATABASE "{db}"')
    writer = V1Writer(INFLUX, db, gzip_bodies=True)
    try:
        started = time.perf_counter()
        for i in range(0, len(batch), 5000):
            writer.write(batch[i : i + 5000])
        elapsed = time.perf_counter() - started
    finally:
        influx_query(f'DROP DATABASE "{db}"')
    return {
        "points": len(batch),
        "seconds": round(elapsed, 2),
        "points_per_s": round(len(batch) / elapsed),
        "fields_per_point": round(sum(line.count("=") for line in batch[:1000]) / 1000 - 2, 1),
    }


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


def markdown(result: dict) -> str:
    on, off, lat, ceil, mqtt = (
        result["throughput_metrics_on"],
        result["throughput_metrics_off"],
        result["latency"],
        result["ceiling"],
        result["throughput_mqtt"],
    )
    overhead = result["metrics_overhead"]

    def rates(run: dict) -> str:
        each = " / ".join(f"{r:,}" for r in run["runs_events_per_s"])
        return f"{run['mean_events_per_s']:,} events/s (runs: {each})"

    rows = [
        (
            f"Direct-write ceiling: the same points ({ceil['fields_per_point']} fields each), "
            "pre-built, 5,000-line batches",
            f"{ceil['points_per_s']:,} points/s",
        ),
        ("End to end, WebSocket path, metrics on (mean)", rates(on)),
        ("End to end, WebSocket path, metrics off (mean)", rates(off)),
        ("End to end, MQTT path (eventstream), metrics on", f"{mqtt['events_per_s']:,} events/s"),
        ("MQTT path: offered by the publisher (QoS 1)", f"{mqtt['published_per_s']:,} messages/s"),
        (
            "Ratio end to end / ceiling (metrics on, mean)",
            f"{on['mean_events_per_s'] / ceil['points_per_s']:.2f}",
        ),
        (
            "Metrics overhead: throughput (means), CPU per event of listener + worker + web",
            f"{overhead['throughput_pct']} %, {overhead['cpu_pct']} %",
        ),
        (
            f"Lag HA → queryable at {lat['rate']:.0f} events/s p50 / p95 / p99",
            f"{lat['p50_s']} / {lat['p95_s']} / {lat['p99_s']} s",
        ),
        (
            "/health p99, /ready p99 at 500 events/s",
            f"{lat['health_p99_ms']} ms, {lat['ready_p99_ms']} ms",
        ),
        (
            "/health p99, /ready p99 at 1,000 events/s",
            f"{result['health_at_1000']['health_p99_ms']} ms, "
            f"{result['health_at_1000']['ready_p99_ms']} ms",
        ),
    ]
    for name, proc in on["processes"].items():
        if name in SERVICES:
            continue
        rows.append(
            (
                f"Peak RSS {name} (largest process of {proc['processes']}), median run",
                f"{proc['peak_rss_mib_max']} MiB",
            )
        )
    for name, cpu in on["cpu_s_per_1000_events"].items():
        rows.append((f"CPU s per 1,000 events: {name}, median run", f"{cpu}"))
    rows.append(
        (
            "Peak RSS listener, MQTT path",
            f"{mqtt['processes']['listener']['peak_rss_mib_max']} MiB",
        )
    )
    for name, cpu in mqtt["cpu_s_per_1000_events"].items():
        rows.append((f"CPU s per 1,000 events, MQTT path: {name}", f"{cpu}"))
    lines = ["| measure | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]]
    return "\n".join(lines)


def main() -> None:
    from bench.mqtt_path import mqtt_throughput  # it builds on this module's Stack

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
        "throughput_mqtt": mqtt_throughput(workdir, seconds, args.concurrency, metrics=True),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    print(table)
    print(targets(result))
    if args.write_docs:
        write_docs(result, table)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_docs(result: dict, table: str) -> None:
    """The measured part of docs/benchmarks.md, between its markers; the rest is kept."""
    machine = result["machine"]
    generated = (
        f"{BEGIN}\nMeasured by `make bench` (`bench/pipeline.py`) on {machine['cpus']} cores, "
        f"{machine['platform']}, Python {machine['python']}, at {machine['load']} load average "
        "before the run; RabbitMQ, PostgreSQL, Mosquitto and InfluxDB 1.x of the same machine, "
        "the HA simulator as the source.\n\n"
        f"{table}\n\n## Against the targets\n\n{targets(result)}\n{END}"
    )
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = f"# Benchmarks\n\n{BEGIN}\n{END}\n\n" + text
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + generated + rest.split(END, 1)[1])


def targets(result: dict) -> str:
    """DESIGN.md's targets, each with what this run measured."""
    on, lat, fast = result["throughput_metrics_on"], result["latency"], result["health_at_1000"]
    rss = {name: proc["peak_rss_mib_max"] for name, proc in on["processes"].items()}
    worst_health = max(lat["health_p99_ms"], fast["health_p99_ms"])
    worst_ready = max(lat["ready_p99_ms"], fast["ready_p99_ms"])
    rows = [
        ("≥ 20,000 events/s end to end", on["mean_events_per_s"] >= 20_000,
         f"{on['mean_events_per_s']:,} events/s (mean of {len(on['runs_events_per_s'])} runs)"),
        ("lag p50 ≤ 0.5 s, p99 ≤ 1.5 s at 500 events/s",
         lat["p50_s"] <= 0.5 and lat["p99_s"] <= 1.5,
         f"p50 {lat['p50_s']} s, p99 {lat['p99_s']} s"),
        ("listener ≤ 100 MiB RSS", rss["listener"] <= 100, f"{rss['listener']} MiB"),
        ("worker ≤ 150 MiB RSS (each process)", rss["worker"] <= 150, f"{rss['worker']} MiB"),
        ("metrics overhead ≤ 5 %", result["metrics_overhead"]["throughput_pct"] <= 5,
         f"{result['metrics_overhead']['throughput_pct']} % of throughput, "
         f"{result['metrics_overhead']['cpu_pct']} % of CPU per event"),
        ("health endpoints p99 ≤ 50 ms under load", max(worst_health, worst_ready) <= 50,
         f"/health {worst_health} ms, /ready {worst_ready} ms (worst of 500 and 1,000 events/s)"),
    ]  # fmt: skip
    lines = ["| target | met | measured |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} | {value} |" for name, ok, value in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
