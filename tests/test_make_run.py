"""`make run` as a newcomer types it: simulator points in InfluxDB within a minute, one banner,
no MQTT listener without MQTT, and nothing it started left running after Ctrl-C or SIGTERM.

Each run gets its own data directory and ports (InfluxDB, web, Flower), away from a real
`make run` and from the test InfluxDB."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.helpers import ROOT, InfluxV1, wait_until
from tests.services import free_port

# Only what a shell of a new user has: none of the test settings' variables.
BASE_ENV = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TERM") if k in os.environ}


def free_influx_port() -> int:
    """A port p with p + 2 free too (scripts/influxdb.sh binds InfluxDB's RPC port there)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port + 2)) != 0 and port < 65000:
                return port


def descendants(pid: int) -> set[int]:
    found = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in children:
            found |= descendants(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def make_run(tmp_path, request):
    ports = {"INFLUX_PORT": free_influx_port(), "WEB_PORT": free_port(), "FLOWER_PORT": free_port()}
    env = {**BASE_ENV, "DATA_DIR": str(tmp_path / "data"), **{k: str(v) for k, v in ports.items()}}
    env["REPLAY_INTERVAL"] = "3"  # the periodic replay of dead letters, seen within the test
    env |= getattr(request, "param", {})  # a test's own settings (indirect parametrization)
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    yield process, ports, tmp_path / "data", log_path, started
    if process.poll() is None:  # a failed test: end what is left, by process id
        for pid in descendants(process.pid) | influxd(tmp_path / "data"):
            os.kill(pid, signal.SIGKILL)


REPLAYED_NS = 1_767_614_400_000_000_000


def add_retryable_dead_letter(database: Path) -> None:
    """What a worker records when InfluxDB stayed away past the retries (category transient)."""
    event = {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": REPLAYED_NS,
        "entity_id": "sensor.replayed",
        "state": "7",
        "attributes": {"unit_of_measurement": "W"},
    }
    with sqlite3.connect(database, timeout=30) as conn:
        conn.execute(
            "INSERT INTO tasks_failedwrite (batch_id, source, category, status, payload_format,"
            " payload, entity_ids, points, error, attempts, first_failed_at, last_failed_at)"
            " VALUES ('b', 'worker', 'transient', 'pending', 'events', ?, 'sensor.replayed',"
            " 1, 'unreachable', 1, datetime('now'), datetime('now'))",
            (json.dumps([event]),),
        )


def dead_letter_status(database: Path) -> str | None:
    with sqlite3.connect(database, timeout=30) as conn:
        row = conn.execute("SELECT status FROM tasks_failedwrite WHERE batch_id = 'b'").fetchone()
    return row[0] if row else None


def command_lines(pids: set[int]) -> list[str]:
    found = []
    for pid in pids:
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
        except OSError:
            continue
    return found


def influxd(data: Path) -> set[int]:
    pid_file = data / "influxdb" / "influxd.pid"
    return {int(pid_file.read_text())} if pid_file.exists() else set()


@pytest.mark.services
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_run_writes_simulator_points_within_a_minute_and_stops_everything(make_run, stop):
    process, ports, data, log_path, started = make_run
    influx = InfluxV1(f"http://127.0.0.1:{ports['INFLUX_PORT']}", "home_assistant")

    def points() -> int:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            return influx.count()
        except OSError:
            return 0

    wait_until(points, 60 - (time.monotonic() - started), "simulator points in InfluxDB")
    banner = wait_until(
        lambda: "Ingestor is ready" in log_path.read_text() and log_path.read_text(),
        60,
        "the start-up banner",
    )
    password_file = data / "admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() not in banner
    assert f"password in {password_file}" in banner
    assert f"http://127.0.0.1:{ports['WEB_PORT']}/admin/" in banner
    assert "listener_mqtt" not in banner  # nothing configured MQTT
    assert "make run FLOWER=1" in banner  # the home shape starts no Flower, and says how

    commands = command_lines(descendants(process.pid))
    assert sum("gunicorn" in c for c in commands) == 2  # master and one threaded worker
    workers = [c for c in commands if " worker " in c and "celery" in c]
    # main and one pool child, a fork of it; no beat process forked (--beat) or of its own
    assert len(workers) == 2 and all(c.rstrip().endswith("--send-periodic-tasks") for c in workers)
    assert not [c for c in commands if " beat " in c or " flower" in c or "--beat" in c]
    assert not [c for c in commands if "honcho" in c]  # run.sh supervises the processes
    # The worker sends beat's schedule: the periodic replay of dead letters still runs. A dead
    # letter of an outage (retryable) is written by it within a few periods.
    add_retryable_dead_letter(data / "db.sqlite3")
    wait_until(
        lambda: dead_letter_status(data / "db.sqlite3") == "replayed",
        30,
        "the periodic replay to write the dead letter",
    )
    assert influx.query(f"SELECT * FROM W WHERE time = {REPLAYED_NS}")["results"][0]["series"]

    started_here = descendants(process.pid) | influxd(data)
    assert len(influxd(data)) == 1 and alive(next(iter(influxd(data))))
    if stop == "ctrl-c":  # the terminal signals the whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    process.wait(60)
    wait_until(
        lambda: not [pid for pid in started_here if alive(pid)],
        30,
        "every process make run started to be gone",
    )
    assert "stopping the InfluxDB it started" in log_path.read_text()


@pytest.mark.services
@pytest.mark.parametrize(
    "make_run", [{"FLOWER": "1", "FLOWER_UNAUTHENTICATED_API": "1"}], indirect=True
)
def test_flower_shows_the_tasks_though_task_events_are_off_until_it_runs(make_run):
    # worker_send_task_events is off (nobody pays for events without Flower); Flower turns them
    # on when it starts, so its task list fills as before.
    process, ports, _data, log_path, _started = make_run

    def written_tasks() -> list[str]:
        assert process.poll() is None, log_path.read_text()[-3000:]
        url = f"http://127.0.0.1:{ports['FLOWER_PORT']}/api/tasks?limit=20"
        try:
            with urlopen(url, timeout=5) as response:
                tasks = json.load(response)
        except OSError:
            return []
        return [t["name"] for t in tasks.values() if t["state"] == "SUCCESS"]

    wait_until(lambda: "tasks.write_events" in written_tasks(), 90, "Flower to list a batch")
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def test_run_stops_at_once_with_one_sentence_when_influxdb_cannot_be_had(tmp_path):
    # A machine without influxd and without apt-get: only the tools the script needs up to there.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "curl", "realpath", "dirname", "id", "rm", "cat", "mkdir"):
        found = subprocess.run(["which", tool], capture_output=True, text=True, check=True)
        (bin_dir / tool).symlink_to(found.stdout.strip())
    env = {"PATH": str(bin_dir), "DATA_DIR": str(tmp_path / "data")}
    env["INFLUX_PORT"] = str(free_influx_port())
    begun = time.monotonic()
    result = subprocess.run(
        ["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert time.monotonic() - begun < 10
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "run: InfluxDB 1.x is not installed: install it (sudo apt-get install influxdb) or set "
        "INFLUX_URL to one you run, then make run again."
    ]
    assert not (tmp_path / "data" / "influxdb").exists()


@pytest.mark.parametrize(
    ("mqtt", "expected"),
    [
        ({}, False),
        ({"MQTT_URL": "mqtt://broker.lan:1883"}, True),
        ({"MQTT_SUBSCRIPTIONS": "zigbee2mqtt/+=json"}, True),
    ],
)
def test_the_mqtt_listener_runs_only_when_mqtt_is_configured(mqtt, expected):
    names = run_sh("--processes", **mqtt).split()
    assert {"web", "worker", "listener_homeassistant"} <= set(names)
    assert ("listener_mqtt" in names) is expected
    procfile = {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines()}
    assert set(names) <= procfile


def run_sh(*args: str, **env: str) -> str:
    result = subprocess.run(
        ["bash", "scripts/run.sh", *args],
        cwd=ROOT,
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"web", "worker", "listener_homeassistant"}),
        ({"FLOWER": "1"}, {"web", "worker", "listener_homeassistant", "flower"}),
        ({"SHAPE": "scale"}, {"web", "worker", "beat", "listener_homeassistant", "flower"}),
        ({"SHAPE": "scale", "FLOWER": "0"}, {"web", "worker", "beat", "listener_homeassistant"}),
    ],
)
def test_the_home_shape_is_the_default_and_the_scale_shape_one_setting_away(env, expected):
    assert set(run_sh("--processes", **env).split()) == expected


def test_the_home_shape_is_the_procfile_made_small(tmp_path):
    lines = run_sh("--process-file", DATA_DIR=str(tmp_path)).splitlines()
    commands = dict(line.split(": ", 1) for line in lines if ": " in line and line[0] != "#")
    procfile = (ROOT / "Procfile").read_text()
    # The same commands as the Procfile, with options added last (they win).
    assert commands["web"].startswith(next(x for x in procfile.splitlines() if x[:4] == "web:")[5:])
    assert commands["web"].endswith("--threads ${WEB_THREADS:-4}")
    worker = commands["worker"]
    assert worker.endswith("--send-periodic-tasks") and "--pool" not in worker  # prefork
    assert run_sh("--process-file", DATA_DIR=str(tmp_path), SHAPE="scale") == procfile


def test_a_mistyped_shape_stops_with_one_sentence():
    result = subprocess.run(
        ["bash", "scripts/run.sh", "--processes"],
        cwd=ROOT,
        env={**BASE_ENV, "SHAPE": "tiny"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "SHAPE=tiny" in result.stderr and "home" in result.stderr


def test_a_dot_env_file_is_read_as_honcho_read_it_and_the_environment_wins(tmp_path):
    # A checkout of its own (run.sh works from the directory above its own), with a .env as
    # `convert_ha_config >> .env` or a copied .env.example leaves it.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text((ROOT / "scripts" / "run.sh").read_text())
    (tmp_path / "Procfile").write_text((ROOT / "Procfile").read_text())
    (tmp_path / ".env").write_text(
        "# MQTT\nexport MQTT_URL='mqtt://user:pa$$word@broker:1883'\nSHAPE=scale\nFLOWER=0\n"
    )
    script = (
        'source <(sed -n "/^load_env_file()/,/^}/p" scripts/run.sh); load_env_file .env; '
        'printf "%s\\n" "$MQTT_URL" "$SHAPE"; bash scripts/run.sh --processes'
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**BASE_ENV, "FLOWER": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    url, shape, names = result.stdout.splitlines()
    assert url == "mqtt://user:pa$$word@broker:1883"  # quotes removed, nothing expanded
    assert shape == "scale"
    assert set(names.split()) == {
        "web",
        "worker",
        "beat",
        "listener_homeassistant",
        "listener_mqtt",
        "flower",
    }  # FLOWER=1 from the environment


def test_a_process_that_ends_by_itself_stops_the_others_and_make_run_fails(tmp_path):
    # run.sh in a checkout of its own: `python` (manage.py's steps and the banner) does nothing,
    # and the Procfile's processes are stand-ins, one of which ends at once with status 3.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text((ROOT / "scripts" / "run.sh").read_text())
    stub = tmp_path / ".venv" / "bin" / "python"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    marker = f"{secrets.randbelow(10**6) + 10**6}.5"  # sleeps of this run only, found by it
    (tmp_path / "Procfile").write_text(  # "#": the home shape appends options to web, worker
        f"web: trap '' TERM; exec sleep {marker} #\n"  # deaf to SIGTERM: killed after 20 s
        f"worker: exec sleep {marker} #\n"
        "listener_homeassistant: echo cannot reach Home Assistant; exit 3\n"
    )
    env = {**BASE_ENV, "INFLUX_URL": "http://127.0.0.1:9", "DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        ["bash", "scripts/run.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "listener_homeassistant | cannot reach Home Assistant" in result.stdout
    assert "run: listener_homeassistant exited with status 3: stopping the others" in result.stderr
    assert "run: web did not stop within 20 s: killing it" in result.stderr
    sleeping = subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True)
    assert sleeping.stdout == "", "the other processes were left running"
