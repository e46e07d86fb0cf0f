"""The Procfile as a platform runs it (Heroku, Dokku): only the add-on variables and app.json's
declared ones, `release` first, then one process manager per process type (a dyno, honcho
standing in for the platform's), health checks from another network namespace, SIGTERM to every
process of every dyno inside the 30 s grace period, and every event in InfluxDB exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kombu import Connection

from hasim.thread import SimulatorThread
from tests.conftest import SIMULATOR_TOKEN as TOKEN
from tests.helpers import ROOT, TEST_BROKER_URL, TEST_INFLUX_URL, InfluxV1, wait_until
from tests.services import free_port
from tests.test_backfill_e2e import all_generated, assert_exactly
from tests.test_project_meta import documented

# Heroku's grace period between SIGTERM and SIGKILL.
GRACE_SECONDS = 30
APP_JSON = json.loads((ROOT / "app.json").read_text())
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")  # the platforms' own pattern
BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {m[1]: m[2] for m in map(PROCFILE_LINE.match, lines) if m}


# --- app.json: the keys platforms read -----------------------------------------------------------
HEROKU_KEYS = {"name", "description", "keywords", "website", "repository", "logo", "success_url"}
HEROKU_KEYS |= {"scripts", "env", "formation", "image", "addons", "buildpacks", "environments"}
HEROKU_KEYS |= {"stack"}
DOKKU_KEYS = {"buildpacks", "cron", "formation", "healthchecks", "scripts"}
ENV_KEYS = {"description", "value", "required", "generator"}
CHECK_KEYS = {"attempts", "command", "content", "httpHeaders", "initialDelay", "listening"}
CHECK_KEYS |= {"name", "path", "port", "scheme", "timeout", "type", "uptime", "wait", "warn"}
CHECK_KEYS |= {"onFailure", "description"}  # unknown keys are ignored: description documents
STRATEGIES = ("path", "command", "uptime", "listening")


def test_app_json_uses_only_keys_platforms_read():
    assert set(APP_JSON) <= HEROKU_KEYS | DOKKU_KEYS
    assert {"name", "env", "formation", "addons", "scripts", "healthchecks"} <= set(APP_JSON)
    assert {entry["url"] for entry in APP_JSON["buildpacks"]} == {"heroku/python"}
    assert all(isinstance(addon, str) for addon in APP_JSON["addons"])
    assert {"heroku-postgresql", "cloudamqp"} <= set(APP_JSON["addons"])


def test_app_json_formation_covers_the_procfile():
    formation, types = APP_JSON["formation"], set(procfile())
    assert "release" in types and "release" not in formation  # run once per deploy, not scaled
    assert set(formation) == types - {"release"}
    for name, entry in formation.items():
        assert set(entry) <= {"quantity", "size"}, name
        assert isinstance(entry["quantity"], int) and entry["quantity"] >= 0, name
    assert formation["web"]["quantity"] >= 1
    assert formation["beat"]["quantity"] == 1  # two beats would schedule every replay twice
    assert formation["listener_homeassistant"]["quantity"] == 1
    assert formation["flower"]["quantity"] == 0  # off loopback it needs FLOWER_BASIC_AUTH


def test_app_json_env_declares_documented_settings_and_generates_secrets():
    env = APP_JSON["env"]
    assert set(env) <= documented()
    for name, entry in env.items():
        assert set(entry) <= ENV_KEYS and entry.get("description"), name
        assert entry.get("generator", "secret") == "secret", name
        assert isinstance(entry.get("value", ""), str), name  # platforms set strings only
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert env["DJANGO_SUPERUSER_PASSWORD"]["generator"] == "secret"
    assert env["INFLUX_URL"]["required"] is True
    assert env["HA_URL"]["required"] is False and env["HA_TOKEN"]["required"] is False
    assert "localhost" in env["ALLOWED_HOSTS"]["value"].split(",")  # the checks' Host header


def test_app_json_scripts_run_existing_commands():
    scripts = APP_JSON["scripts"]
    assert set(scripts) <= {"postdeploy", "pr-predestroy", "dokku"}
    for command in [scripts["postdeploy"], *scripts.get("dokku", {}).values()]:
        name = command.split("manage.py", 1)[1].split()[0]
        assert list(ROOT.glob(f"*/management/commands/{name}.py")), command


def test_app_json_healthchecks_follow_dokkus_format():
    checks = APP_JSON["healthchecks"]
    assert set(checks) <= set(APP_JSON["formation"])
    for process, entries in checks.items():
        for check in entries:
            assert set(check) <= CHECK_KEYS, (process, check)
            assert check["type"] in ("startup", "liveness", "readiness"), check
            assert sum(bool(check.get(key)) for key in STRATEGIES) == 1, check
            assert all(set(h) == {"name", "value"} for h in check.get("httpHeaders", []))
            assert all(isinstance(check.get(k, 0), int) for k in ("attempts", "wait", "timeout"))
    web_paths = {check["path"] for check in checks["web"] if "path" in check}
    assert web_paths == {"/health", "/ready"}
    blocking = [c for c in checks["web"] if c["type"] == "startup" and not c.get("warn")]
    assert [c["path"] for c in blocking] == ["/health"]


def test_buildpacks_find_the_pinned_runtime_set_and_the_python_version():
    lines = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x[:1] not in "#"]
    assert lines == ["-r requirements/base.txt"]
    version = (ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version
    assert f">={version}" in (ROOT / "pyproject.toml").read_text()


# --- $PORT and the add-on variables ------------------------------------------------------------
def bind_of(env: dict[str, str]) -> str:
    bind = re.search(r"--bind (\S+)", procfile()["web"])[1]
    shell = subprocess.run(
        ["sh", "-c", f"printf %s {bind}"], env=env, capture_output=True, text=True, check=True
    )
    return shell.stdout


def test_web_binds_every_address_on_port_unless_web_bind_says_otherwise():
    assert bind_of({"PORT": "5123"}) == "0.0.0.0:5123"
    assert bind_of({}) == "127.0.0.1:8000"
    assert bind_of({"PORT": ""}) == "127.0.0.1:8000"
    # honcho (make run) sets PORT for every process: WEB_BIND, which run.sh exports, wins.
    assert bind_of({"PORT": "5000", "WEB_BIND": "127.0.0.1:8001"}) == "127.0.0.1:8001"
    assert "export WEB_BIND=" in (ROOT / "scripts" / "run.sh").read_text()


def test_every_long_running_process_replaces_its_shell():
    # A shell in between would take the SIGTERM (and as a container's PID 1, ignore it).
    for kind, command in procfile().items():
        if kind != "release":
            last = command.rsplit("&&", 1)[-1].strip()
            assert last.startswith("exec "), kind


def settings_say(code: str, tmp_path: Path, **env: str) -> str:
    """Run code after django.setup() in a fresh interpreter with only these variables."""
    base = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 50}
    script = f"import django; django.setup(); {code}"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "ingestor_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


BROKERS = {
    "CELERY_BROKER_URL": "amqp://a:first-secret@one//",
    "CLOUDAMQP_URL": "amqps://b:cloud-secret@two/vhost",
    "RABBITMQ_URL": "amqp://c:rabbit-secret@three//",
    "REDIS_URL": "redis://:redis-secret@four:6379",
}


@pytest.mark.parametrize("first", list(BROKERS))
def test_the_broker_comes_from_the_first_add_on_variable_set(first, tmp_path):
    names = list(BROKERS)
    env = {name: BROKERS[name] for name in names[names.index(first) :]}
    code = "from django.conf import settings; print(settings.CELERY_BROKER_URL)"
    assert settings_say(code, tmp_path, **env) == BROKERS[first]


def test_without_any_broker_variable_the_embedded_one_is_used(tmp_path):
    code = "from django.conf import settings; print(settings.CELERY_BROKER_URL)"
    assert settings_say(code, tmp_path, CELERY_BROKER_URL="") == "embedded://"


def test_every_add_on_password_is_masked_in_logs_even_the_unused_ones(tmp_path):
    code = (
        "from ingestor_project.logging import redact_text; "
        "print(redact_text('first-secret cloud-secret rabbit-secret redis-secret'))"
    )
    said = settings_say(code, tmp_path, **BROKERS)
    assert "secret" not in said.replace("REDACTED", "").lower(), said


def test_a_redis_add_on_is_a_working_broker(tmp_path):
    code = (
        "from ingestor_project.celery import app; "
        "conn = app.connection_for_write(); conn.ensure_connection(max_retries=2); "
        "print(conn.transport_cls, conn.connected)"
    )
    said = settings_say(code, tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert said == "redis True"


# --- the whole Procfile, run as a platform runs it ---------------------------------------------
@dataclass
class Dyno:
    """One process type under a process manager of its own, as on a platform."""

    kind: str
    manager: subprocess.Popen
    log: Path
    pid: int = 0
    stopped_after: float = field(default=-1.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def command_pid(self) -> int:
        if not self.pid:
            found = re.search(rf"{self.kind}\.1 started \(pid=(\d+)\)", self.output())
            self.pid = int(found[1]) if found else 0
        return self.pid

    def exit_code(self) -> int | None:
        found = re.search(rf"{self.kind}\.1 stopped \(rc=(-?\d+)\)", self.output())
        return int(found[1]) if found else None


class Platform:
    """Starts the Procfile's process types with honcho in a platform-like environment."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        (workdir / "empty.env").write_text("")  # no developer .env leaks in
        self.dynos: list[Dyno] = []
        self.rounds = 0

    def honcho(self, *args: str) -> list[str]:
        return [str(BIN / "honcho"), "-e", str(self.workdir / "empty.env"), "-f", "Procfile", *args]

    def release(self) -> str:
        result = subprocess.run(
            self.honcho("start", "release"),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert "release.1 stopped (rc=0)" in result.stdout
        return result.stdout

    def start_formation(self) -> list[Dyno]:
        self.rounds += 1
        kinds = [kind for kind, entry in APP_JSON["formation"].items() if entry["quantity"]]
        started = [self._start(kind) for kind in kinds]
        for dyno in started:
            wait_until(dyno.command_pid, 30, f"{dyno.kind} to start")
        self.dynos += started
        return started

    def _start(self, kind: str) -> Dyno:
        log = self.workdir / f"{kind}-{self.rounds}.log"
        with open(log, "wb") as out:
            manager = subprocess.Popen(
                self.honcho("start", kind),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Dyno(kind, manager, log)

    def sigterm_all(self, dynos: list[Dyno]) -> None:
        """SIGTERM to every process of every dyno at once, as Heroku does; time each stop."""
        started = time.monotonic()
        for dyno in dynos:
            os.killpg(dyno.command_pid(), signal.SIGTERM)  # honcho made it a session leader
        for dyno in dynos:
            left = GRACE_SECONDS - (time.monotonic() - started)
            try:
                dyno.manager.wait(max(left, 0.1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{dyno.kind} still running {GRACE_SECONDS} s after SIGTERM")
            dyno.stopped_after = time.monotonic() - started

    def cleanup(self) -> None:
        for dyno in self.dynos:
            if dyno.manager.poll() is None:
                for pid in (dyno.command_pid(), dyno.manager.pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                dyno.manager.wait(10)


@dataclass
class Probe:
    """A network namespace joined to this host by a veth pair: a client on another machine."""

    namespace: str
    host_address: str

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        command = ["ip", "netns", "exec", self.namespace, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def http_check(self, port: int, check: dict) -> tuple[bool, str]:
        """One attempt of a Dokku path check (docker-container-healthchecker's semantics)."""
        headers = [f"-H{h['name']}: {h['value']}" for h in check.get("httpHeaders", [])]
        url = f"http://{self.host_address}:{port}{check['path']}"
        timeout = str(check.get("timeout", 5))
        args = ["curl", "-sS", "-m", timeout, "-o", "-", "-w", "\n%{http_code}", *headers, url]
        result = self.run(*args)
        body, _, status = result.stdout.rpartition("\n")
        ok = status.startswith("2") and check.get("content", "") in body
        return ok, f"{status} {body[:300]} {result.stderr[-300:]}"


def run_ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def probe() -> Iterator[Probe]:
    tag = uuid.uuid4().hex[:6]
    namespace, host_side, probe_side = f"t19-{tag}", f"t19h{tag}", f"t19p{tag}"
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    try:
        run_ip("netns", "add", namespace)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"cannot make a network namespace (root and iproute2 needed): {exc.stderr}")
    try:
        run_ip("link", "add", host_side, "type", "veth", "peer", "name", probe_side)
        run_ip("link", "set", probe_side, "netns", namespace)
        run_ip("addr", "add", f"{subnet}.1/30", "dev", host_side)
        run_ip("link", "set", host_side, "up")
        run_ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", probe_side)
        run_ip("-n", namespace, "link", "set", probe_side, "up")
        yield Probe(namespace, f"{subnet}.1")
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", host_side], capture_output=True, timeout=30)


def platform_env(**addons: str) -> dict[str, str]:
    """What a dyno sees: the platform's basics, app.json's values and generated secrets, and
    the add-ons' and the operator's variables; nothing of this test run's own settings."""
    env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    for name, entry in APP_JSON["env"].items():
        if entry.get("generator") == "secret":
            env[name] = secrets.token_hex(32)  # what Heroku's generator gives
        elif entry.get("value"):
            env[name] = entry["value"]
    env["PYTHONUNBUFFERED"] = "1"
    env.update(addons)
    return env


def listening_on_every_address(port: int) -> bool:
    wanted = f"00000000:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(row.split()[1] == wanted and row.split()[3] == "0A" for row in rows)


def web_checks_pass(probe: Probe, port: int, path: str) -> str | bool:
    [check] = [c for c in APP_JSON["healthchecks"]["web"] if c.get("path") == path]
    ok, said = probe.http_check(port, check)
    return ok and said


def command_checks_pass(env: dict[str, str], kind: str) -> bool:
    for check in APP_JSON["healthchecks"].get(kind, []):
        if "command" in check:
            result = subprocess.run(check["command"], cwd=ROOT, env=env, capture_output=True)
            if result.returncode != 0:
                return False
    return True


@pytest.fixture
def fresh_influx() -> Iterator[InfluxV1]:
    """A database name nobody created: the release phase must create it."""
    influx = InfluxV1(TEST_INFLUX_URL, f"test_platform_{uuid.uuid4().hex[:10]}")
    yield influx
    influx.query(f'DROP DATABASE "{influx.database}"', database=False)


def influx_databases(influx: InfluxV1) -> set[str]:
    series = influx.query("SHOW DATABASES", database=False)["results"][0]["series"][0]
    return {row[0] for row in series.get("values", [])}


def assert_stopped_in_grace(dynos: list[Dyno]) -> None:
    for dyno in dynos:
        assert dyno.exit_code() == 0, f"{dyno.kind} after SIGTERM:\n{dyno.output()[-3000:]}"
        assert 0 <= dyno.stopped_after < GRACE_SECONDS, (dyno.kind, dyno.stopped_after)


@pytest.mark.services
def test_the_procfile_deploys_serves_and_stops_as_a_platform_runs_it(
    postgres_url, ingest_queue, fresh_influx, probe, tmp_path
):
    simulator = SimulatorThread(token=TOKEN, entities=40, rate=200, events=5000, seed=19).start()
    port = free_port()
    env = platform_env(
        DATABASE_URL=postgres_url,
        CLOUDAMQP_URL=TEST_BROKER_URL,
        PORT=str(port),
        HA_URL=simulator.url,
        HA_TOKEN=TOKEN,
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=fresh_influx.database,
        CELERY_INGEST_QUEUE=ingest_queue,
        CELERY_MAINTENANCE_QUEUE=f"{ingest_queue}-m",
        DATA_DIR=str(tmp_path / "app"),  # the dyno's ephemeral filesystem
    )
    platform = Platform(env, tmp_path)
    try:
        assert fresh_influx.database not in influx_databases(fresh_influx)
        platform.release()
        assert fresh_influx.database in influx_databases(fresh_influx)

        first = platform.start_formation()
        wait_until(lambda: listening_on_every_address(port), 60, f"web on 0.0.0.0:{port}")
        wait_until(lambda: web_checks_pass(probe, port, "/health"), 30, "/health from outside")
        wait_until(lambda: web_checks_pass(probe, port, "/ready"), 90, "/ready from outside")
        wait_until(lambda: command_checks_pass(env, "listener_homeassistant"), 60, "listener check")
        wait_until(fresh_influx.count, 60, "events in InfluxDB")
        with Connection(TEST_BROKER_URL) as conn:  # they flowed through CLOUDAMQP_URL's broker
            conn.channel().queue_declare(ingest_queue, passive=True)

        simulator.wait_for_delivered(1500, timeout=60)
        platform.sigterm_all(first)  # mid-stream: a restart, a deploy, the daily cycling
        assert_stopped_in_grace(first)

        second = platform.start_formation()
        simulator.wait_until_done(timeout=120)
        assert_exactly(fresh_influx, all_generated(simulator), timeout=120)
        platform.sigterm_all(second)
        assert_stopped_in_grace(second)
    finally:
        platform.cleanup()
        simulator.stop()
        with Connection(TEST_BROKER_URL) as conn:
            conn.channel().queue_delete(f"{ingest_queue}-m")
