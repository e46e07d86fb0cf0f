"""The footprint of what `make run` starts (everything but InfluxDB): memory and CPU beside HA.

    .venv/bin/python bench/footprint.py [--seconds 60] [--shape home|scale]
                                        [--source beside-ha|built-in ...] [--write-docs]

For each source and load (idle: the simulator at 0.01 events/s, no event in the window; then
100 events/s) a fresh `make run` on private ports and a private data directory: once /ready
answers and a settling spell has passed, every process of ours is sampled over the window: PSS
and RSS from /proc/<pid>/smaps_rollup (the largest total seen), CPU from utime + stime + cutime
+ cstime of /proc/<pid>/stat (children included), as a percentage of one core over the window,
and wake-ups a second: the context switches of all its threads (/proc/<pid>/task/*/status).
make, run.sh and its output prefixers are counted too; InfluxDB is not.

Sources: `beside-ha` is what a home runs: HA_URL set, so `make run` starts no simulator; the
simulator stands in for Home Assistant in a process of its own and, like HA and InfluxDB, is
not counted. `built-in` is `make run` with nothing configured: the simulator is a thread of the
listener process, its CPU shown apart (`simulator_cpu_pct`), its memory inside the listener's.
The backlog is the ingest messages waiting in the embedded broker at the window's end: 0 means
the worker keeps up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import ROOT, free_port, tree, wait

BEGIN, END = "<!-- footprint:begin -->", "<!-- footprint:end -->"
TICK = os.sysconf("SC_CLK_TCK")
LOADS = {"idle": 0.01, "100 events/s": 100.0}
TARGET_PSS_MIB, TARGET_CPU_BUSY, TARGET_CPU_IDLE = 250, 2.0, 0.5
SOURCES = {"beside-ha": "beside Home Assistant", "built-in": "built-in simulator"}
HA_TOKEN = "footprint-bench-token"  # the bench's own simulator, nothing else
# The first word of our command lines that names the role (gunicorn's contains "--workers").
ROLES = {
    "gunicorn": "web",
    "listen_homeassistant": "listener_homeassistant",
    "listen_mqtt": "listener_mqtt",
    "flower": "flower",
    "beat": "beat",
    "worker": "worker",
}


def role(cmdline: list[str]) -> str:
    """A readable name for one of our processes, from its command line."""
    text = " ".join(cmdline)
    if cmdline and cmdline[0].endswith("sh") and "-c" in cmdline[1:2]:
        return f"shell: {role([w for w in cmdline[2].split() if w != 'exec'])}"
    if "honcho" in text:
        return "honcho"
    if "run.sh" in text:
        return "run.sh"
    if cmdline and cmdline[0].endswith("make"):
        return "make"
    for word, name in ROLES.items():
        if word in cmdline or any(part.endswith(word) for part in cmdline[:2]):
            return name
    return os.path.basename(cmdline[0]) if cmdline else "?"


def snapshot(root: int) -> dict[int, dict]:
    """Every live process under root (but influxd): name, parent, PSS/RSS MiB, CPU ticks."""
    found = {}
    for pid in tree(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if "influxd" in " ".join(cmdline[:1]):
            continue
        kib = {
            line.split(":")[0]: int(line.split()[1])
            for line in rollup.splitlines()[1:]
            if line.endswith("kB")
        }
        found[pid] = {
            "simulator_ticks": simulator_ticks(pid),
            "name": role(cmdline),
            "ppid": int(stat[1]),
            "pss_mib": kib.get("Pss", 0) / 1024,
            "rss_mib": kib.get("Rss", 0) / 1024,
            "ticks": sum(int(stat[i]) for i in (11, 12, 13, 14)),
            "wakeups": wakeups(pid),
        }
    return found


def wakeups(pid: int) -> int:
    """Context switches of every thread of the process so far: about how often it woke up."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        total += sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return total


def simulator_ticks(pid: int) -> int:
    """CPU ticks of the built-in HA simulator's thread (hasim names it), 0 for other processes."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if (task / "comm").read_text().strip() == "ha-simulator":
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(stat[11]) + int(stat[12])
        except OSError:
            continue
    return ticks


def label(pid: int, procs: dict[int, dict]) -> str:
    """The process's role, marked as a child when its parent has the same role (pool, workers)."""
    proc = procs[pid]
    parent = procs.get(proc["ppid"])
    child = parent is not None and parent["name"] == proc["name"]
    return f"{proc['name']} (child)" if child else proc["name"]


def window(root: int, seconds: float) -> dict:
    """Sample root's tree over `seconds`: the peak-PSS snapshot and each process's CPU %."""
    first = snapshot(root)
    started, samples = time.monotonic(), [first]
    while time.monotonic() - started < seconds:
        time.sleep(min(10.0, seconds - (time.monotonic() - started)) or 0)
        samples.append(snapshot(root))
    elapsed = time.monotonic() - started
    last = samples[-1]
    peak = max(samples, key=lambda s: sum(p["pss_mib"] for p in s.values()))
    rows = []
    for pid, proc in sorted(last.items()):
        before = first.get(pid, proc)
        used = (proc["ticks"] - before["ticks"]) / TICK
        simulator = (proc["simulator_ticks"] - before["simulator_ticks"]) / TICK
        memory = peak.get(pid, proc)
        rows.append(
            {
                "pid": pid,
                "process": label(pid, last),
                "pss_mib": round(memory["pss_mib"], 1),
                "rss_mib": round(memory["rss_mib"], 1),
                "cpu_pct": round(used / elapsed * 100, 2),
                "simulator_cpu_pct": round(simulator / elapsed * 100, 2),
                "wakeups_per_s": round((proc["wakeups"] - before["wakeups"]) / elapsed, 1),
                "new": pid not in first,
            }
        )
    return {
        "seconds": round(elapsed, 1),
        "processes": rows,
        "pss_mib": round(sum(r["pss_mib"] for r in rows), 1),
        "rss_mib": round(sum(r["rss_mib"] for r in rows), 1),
        "cpu_pct": round(sum(r["cpu_pct"] for r in rows), 2),
        "simulator_cpu_pct": round(sum(r["simulator_cpu_pct"] for r in rows), 2),
        "wakeups_per_s": round(sum(r["wakeups_per_s"] for r in rows), 1),
    }


def run_stack(
    workdir: Path, rate: float, shape: str, source: str, seconds: float, settle: float
) -> dict:
    """One `make run` at `rate` events/s, measured over `seconds` after /ready and `settle`."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TERM") if k in os.environ}
    ports = {"INFLUX_PORT": free_influx_port(), "WEB_PORT": free_port(), "FLOWER_PORT": free_port()}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"DATA_DIR": str(workdir / "data"), "SIMULATOR_RATE": str(rate), "SHAPE": shape}
    with contextlib.ExitStack() as stack:
        if source == "beside-ha":
            env |= stack.enter_context(home_assistant(workdir, rate))
        log_path = workdir / "make-run.log"
        process = stack.enter_context(
            started(["make", "--no-print-directory", "run"], env, log_path)
        )
        wait(lambda: b"Ingestor is ready" in log_path.read_bytes(), 120, "the banner", 0.5)
        time.sleep(settle)  # start-up work (imports, first connections, first flushes) is over
        measured = window(process.pid, seconds)
        backlog = len(list((workdir / "data" / "broker").glob("*.ingest.msg")))
        return {"rate": rate, "source": source, "backlog": backlog, **measured}


@contextlib.contextmanager
def started(command: list[str], env: dict, log_path: Path):
    """A process in a session of its own, its output in log_path; SIGTERM and a wait at the end."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@contextlib.contextmanager
def home_assistant(workdir: Path, rate: float):
    """The simulator as Home Assistant: a process of its own; yields the settings pointing at it."""
    port = free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env |= {"DATA_DIR": str(workdir / "home-assistant"), "SECRET_KEY": "footprint-bench-only"}
    # --slice 0.01: at home rates one event per frame, as HA sends them
    command = [sys.executable, "manage.py", "simulate_homeassistant", "--port", str(port),
               "--rate", str(rate), "--entities", "50", "--token", HA_TOKEN,
               "--slice", "0.01"]  # fmt: skip
    with started(command, env, workdir / "home-assistant.log"):
        wait(lambda: _listening(port), 60, "the simulated Home Assistant", 0.2)
        yield {"HA_URL": f"http://127.0.0.1:{port}", "HA_TOKEN": HA_TOKEN}


def free_influx_port() -> int:
    """A port p with p + 2 free too (scripts/influxdb.sh binds InfluxDB's RPC port there)."""
    while True:
        port = free_port()
        if port < 65000 and not _listening(port + 2):
            return port


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def markdown(results: dict[str, dict], shape: str) -> str:
    """Per-process table of one source, a column per load."""
    loads = list(results)
    header = " | ".join(f"PSS / RSS MiB, CPU %, wake-ups/s ({n})" for n in loads)
    lines = [f"| process | {header} |"]
    lines.append("|---" * (len(loads) + 1) + "|")
    names = sorted({r["process"] for res in results.values() for r in res["processes"]})
    for name in names:
        cells = []
        for res in results.values():
            rows = [r for r in res["processes"] if r["process"] == name]
            cells.append(
                " + ".join(
                    f"{r['pss_mib']} / {r['rss_mib']}, {r['cpu_pct']} %, {r['wakeups_per_s']}"
                    for r in rows
                )
                or "-"
            )
        lines.append(f"| {name} | {' | '.join(cells)} |")
    total = [
        f"**{r['pss_mib']} / {r['rss_mib']}, {r['cpu_pct']} %, {r['wakeups_per_s']}**"
        for r in results.values()
    ]
    lines.append(f"| **total ({shape} shape)** | {' | '.join(total)} |")
    if any(r["simulator_cpu_pct"] for r in results.values()):
        cells = [f"{r['simulator_cpu_pct']} %" for r in results.values()]
        lines.append(f"| of which the simulator's thread (CPU) | {' | '.join(cells)} |")
    backlog = [f"{r['backlog']} batches" for r in results.values()]
    lines.append(f"| backlog at the end (0: the worker keeps up) | {' | '.join(backlog)} |")
    return "\n".join(lines)


def targets(by_source: dict[str, dict[str, dict]]) -> str:
    """The issue's targets, checked for each source."""
    out = [f"| target | {' | '.join(SOURCES[s] for s in by_source)} |"]
    out.append("|---" * (len(by_source) + 1) + "|")
    checks = [
        (f"≤ {TARGET_PSS_MIB} MiB PSS at idle", "idle", "pss_mib", TARGET_PSS_MIB, "MiB"),
        (f"≤ {TARGET_PSS_MIB} MiB PSS at 100 events/s", "100 events/s", "pss_mib",
         TARGET_PSS_MIB, "MiB"),
        (f"≤ {TARGET_CPU_BUSY} % of one core at 100 events/s", "100 events/s", "cpu_pct",
         TARGET_CPU_BUSY, "%"),
        (f"idle ≤ {TARGET_CPU_IDLE} % of one core", "idle", "cpu_pct", TARGET_CPU_IDLE, "%"),
    ]  # fmt: skip
    for name, load, key, limit, unit in checks:
        cells = []
        for results in by_source.values():
            value = results[load][key]
            cell = f"{'met' if value <= limit else '**not met**'}: {value} {unit}"
            simulator = results[load]["simulator_cpu_pct"] if key == "cpu_pct" else 0
            if simulator:  # HA's stand-in, not ours: what the stack itself used
                ours = round(value - simulator, 2)
                cell += f" ({ours} % without the simulator's thread)"
            cells.append(cell)
        out.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(out)


def write_docs(text: str) -> None:
    """The footprint part of docs/benchmarks.md, between its own markers; the rest is kept."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        doc = doc.rstrip("\n") + f"\n\n## Footprint beside Home Assistant\n\n{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=30, help="seconds after /ready answers")
    parser.add_argument("--shape", default="home", choices=["home", "scale"])
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--source", nargs="+", default=list(SOURCES), choices=list(SOURCES),
        help="beside-ha: the simulator in a process of its own, not counted (as HA); built-in: "
        "make run with nothing configured",
    )  # fmt: skip
    args = parser.parse_args()
    by_source: dict[str, dict[str, dict]] = {}
    for source in args.source:
        for name, rate in LOADS.items():
            with tempfile.TemporaryDirectory(prefix="ingestor-footprint-") as workdir:
                by_source.setdefault(source, {})[name] = run_stack(
                    Path(workdir), rate, args.shape, source, args.seconds, args.settle
                )
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = (
        f"Measured by `make bench` (`bench/footprint.py`, `{args.shape}` shape) on "
        f"{os.cpu_count()} cores, load average {load} after the run: PSS / RSS at the window's "
        f"peak and CPU % of one core over {args.seconds:g} s."
    )
    for source, results in by_source.items():
        title = SOURCES[source]
        text += f"\n\n{title[0].upper()}{title[1:]}:\n\n{markdown(results, args.shape)}"
    text += f"\n\n{targets(by_source)}"
    results = by_source
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"footprint-{args.shape}.json").write_text(json.dumps(results, indent=2))
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
