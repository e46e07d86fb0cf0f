"""CPU per event of the Home Assistant WebSocket path at home rates: the listener and the simulator.

    .venv/bin/python bench/ha_path_cpu.py [--case separate|idle|builtin|all] [--rate 100]
                                          [--entities 50] [--warmup 10] [--seconds 30]
                                          [--py-spy SECONDS]

separate  the simulator (`simulate_homeassistant`) in a process of its own, the listener
          (`listen_homeassistant`) pointed at it with HA_URL
idle      the same with the simulator generating nothing: what a connected, quiet listener costs
builtin   the listener with HA_URL unset, so it runs the simulator as its `ha-simulator` thread
          (what `make run` does); that thread's CPU is counted apart from the listener's

Each process's utime + stime (/proc/<pid>/stat, per thread /proc/<pid>/task/<tid>/stat) is
sampled over `--seconds` after `--warmup`, as % of one core and µs per event. The listener
publishes into the embedded file broker under a temporary DATA_DIR (nothing consumes it) with
PROMETHEUS_MULTIPROC_DIR set, as `make run` does. With --py-spy N, `py-spy record` (installed
apart, never a requirement) samples each process for N s of the window into collapsed-stack files
(flamegraph input) in the temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import free_port, port_open, wait  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
PY_SPY = str(ROOT / ".venv" / "bin" / "py-spy")
TOKEN = "bench-token-0123456789abcdef"  # the simulator's, for this run only
TICK = os.sysconf("SC_CLK_TCK")
SIMULATOR_THREAD = "ha-simulator"


def base_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HA_", "CELERY_"))}
    metrics = workdir / "metrics"
    metrics.mkdir(exist_ok=True)
    env.update(
        DATA_DIR=str(workdir),
        SECRET_KEY="x",  # noqa: S106 - a throwaway data directory
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    return env


def ticks(pid: int) -> tuple[int, int]:
    """(whole process, the simulator thread) CPU ticks so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])
    simulator = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != SIMULATOR_THREAD:
                continue
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        simulator += int(stat[11]) + int(stat[12])
    return total, simulator


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "manage.py", *command],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            PY_SPY,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "1000",
            "--format",
            "raw",
            "--threads",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(processes: dict[str, int], warmup: float, seconds: float, spy: float, tag: str):
    time.sleep(warmup)
    before = {name: ticks(pid) for name, pid in processes.items()}
    started = time.monotonic()
    spies = (
        [
            profile(pid, spy, Path(tempfile.gettempdir()) / f"ha_path_{tag}_{name}.txt")
            for name, pid in processes.items()
        ]
        if spy
        else []
    )
    time.sleep(seconds)
    after = {name: ticks(pid) for name, pid in processes.items()}
    elapsed = time.monotonic() - started
    for spy_process in spies:
        spy_process.wait()
    result = {}
    for name in processes:
        total = (after[name][0] - before[name][0]) / TICK
        simulator = (after[name][1] - before[name][1]) / TICK
        if simulator:
            result[SIMULATOR_THREAD] = round(100 * simulator / elapsed, 2)
        result[name] = round(100 * (total - simulator) / elapsed, 2)
    return result


def migrate(env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def separate(args, rate: float, tag: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="ha-path-") as tmp:
        workdir = Path(tmp)
        env = base_env(workdir)
        migrate(env)
        port = free_port()
        simulator = start(
            [
                "simulate_homeassistant",
                "--port",
                str(port),
                "--rate",
                str(rate),
                "--entities",
                str(args.entities),
                "--token",
                TOKEN,
                *args.simulator_options,
            ],
            env,
            workdir / "simulator.log",
        )
        listener = None
        try:
            wait(lambda: port_open(port), 30, "the simulator to listen")
            listener_env = {
                **env,
                "HA_URL": f"ws://127.0.0.1:{port}/api/websocket",
                "HA_TOKEN": TOKEN,
            }
            listener = start(["listen_homeassistant"], listener_env, workdir / "listener.log")
            pids = {"listener": listener.pid, "simulator": simulator.pid}
            return measure(pids, args.warmup, args.seconds, args.py_spy, tag)
        finally:
            if listener is not None:
                stop(listener)
            stop(simulator)
            if args.keep_logs:
                for log in ("simulator.log", "listener.log"):
                    print((workdir / log).read_text()[-3000:], file=sys.stderr)


def builtin(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="ha-path-") as tmp:
        workdir = Path(tmp)
        env = base_env(workdir)
        migrate(env)
        env.update(SIMULATOR_RATE=str(args.rate), SIMULATOR_ENTITIES=str(args.entities))
        listener = start(["listen_homeassistant"], env, workdir / "listener.log")
        try:
            return measure(
                {"listener": listener.pid}, args.warmup, args.seconds, args.py_spy, "builtin"
            )
        finally:
            stop(listener)
            if args.keep_logs:
                print((workdir / "listener.log").read_text()[-3000:], file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("separate", "idle", "builtin", "all"), default="all")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--entities", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--py-spy", type=float, default=0.0, help="profile N s of the window")
    parser.add_argument("--keep-logs", action="store_true", help="print the tails of the logs")
    parser.add_argument(
        "--simulator-option",
        dest="simulator_options",
        action="append",
        default=[],
        help="passed to simulate_homeassistant (e.g. --simulator-option=--no-compression)",
    )
    args = parser.parse_args()
    cases = ("separate", "idle", "builtin") if args.case == "all" else (args.case,)
    results = {}
    for case in cases:
        if case == "separate":
            results[case] = separate(args, args.rate, case)
        elif case == "idle":
            results[case] = separate(args, 0, case)
        else:
            results[case] = builtin(args)
        print(json.dumps({case: results[case]}), flush=True)
    for case, row in results.items():
        if case != "idle" and args.rate:
            per_event = {k: round(v * 1e4 / args.rate, 1) for k, v in row.items()}
            print(json.dumps({f"{case}_us_per_event": per_event}), flush=True)


if __name__ == "__main__":
    main()
