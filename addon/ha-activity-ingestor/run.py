#!/usr/bin/env python3
"""The add-on's entry point: /data/options.json becomes the ingestor's environment, then every
role runs as a child of this process (web, worker, the listeners) until one of them ends
or the Supervisor stops the add-on.

Each option is the environment variable of the same name in upper case (.env.example lists them
all); `env_vars` entries (NAME=value) set any other. Empty options are left unset, so the
ingestor's own default applies.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

OPTIONS_FILE = Path(os.environ.get("ADDON_OPTIONS", "/data/options.json"))
# The roles as docker/entrypoint.sh runs them. Not through it: it empties the metrics directory
# at every start, and here the roles share one directory (the status page sums them).
ROLES = {
    "web": [
        "gunicorn",
        "ingestor_project.wsgi",
        "--bind",
        "{WEB_BIND}",
        # The home shape of `make run` (README "Which shape"): beside HA on small hardware.
        "--workers",
        "1",
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "20",
        "--logger-class",
        "ingestor_project.gunicorn_logging.GunicornLogger",
    ],
    "worker": [
        "celery",
        "-A",
        "ingestor_project",
        "worker",
        "-Q",
        "{CELERY_INGEST_QUEUE},{CELERY_MAINTENANCE_QUEUE}",
        "--concurrency",
        "1",
        "-l",
        "{LOG_LEVEL}",
        # beat's schedule (the dead-letter replay) from the worker itself: no beat process
        "--send-periodic-tasks",
    ],
    "listener-homeassistant": [sys.executable, "manage.py", "listen_homeassistant"],
    "listener-mqtt": [sys.executable, "manage.py", "listen_mqtt"],
}
DEFAULTS = {
    "DATA_DIR": "/data",
    "CELERY_BROKER_URL": "embedded://",
    "CELERY_INGEST_QUEUE": "ingest",
    "CELERY_MAINTENANCE_QUEUE": "maintenance",
    "WEB_BIND": "0.0.0.0:8000",
    "LOG_LEVEL": "INFO",
    "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",  # noqa: S108 - the container's own /tmp, as the image sets
    # The Supervisor's log view shows the lines as they are: plain text reads best there.
    "LOG_FORMAT": "console",
}
# Seconds the roles get to stop after SIGTERM (the listeners hand their buffer on in 20 s);
# config.yaml's timeout gives this process a little more.
STOP_TIMEOUT = 40.0


def option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def environment(options: dict, base: dict[str, str]) -> dict[str, str]:
    """The roles' environment: the container's, the defaults above, then the options."""
    env = {**base, **{k: v for k, v in DEFAULTS.items() if k not in base}}
    for key, value in options.items():
        if key != "env_vars" and value not in (None, "", []):
            env[key.upper()] = option_text(value)
    for entry in options.get("env_vars") or []:
        name, separator, value = entry.partition("=")
        if not separator or not name.isupper() or name.lower() in options:
            raise SystemExit(
                f"env_vars: {entry.split('=')[0]!r} is not NAME=value of a variable "
                "without an option of its own"
            )
        env[name] = value
    if env.get("MQTT_URL") and "READY_LISTENERS" not in env:
        env["READY_LISTENERS"] = "homeassistant,mqtt"
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        env["SECRET_KEY_FILE"] = str(secret_key_file(Path(env["DATA_DIR"])))
    return env


def secret_key_file(data_dir: Path) -> Path:
    """Django's signing key, made once and kept in the add-on's persistent /data."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50))
    return path


def roles(env: dict[str, str]) -> dict[str, list[str]]:
    names = ["web", "worker", "listener-homeassistant"]
    if env.get("MQTT_URL"):
        names.append("listener-mqtt")
    return {name: [part.format(**env) for part in ROLES[name]] for name in names}


def prepare(env: dict[str, str]) -> None:
    metrics = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    if metrics.exists():
        for path in metrics.iterdir():
            path.unlink()
    metrics.mkdir(parents=True, exist_ok=True)
    for command in (["migrate", "--noinput"], ["ensure_influx_database"]):
        subprocess.run([sys.executable, "manage.py", *command], env=env, check=True)


def supervise(commands: dict[str, list[str]], env: dict[str, str]) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = {name: subprocess.Popen(command, env=env) for name, command in commands.items()}
    print(f"addon: started {', '.join(children)}", flush=True)
    code = 0
    while not stopping:
        ended = [(name, c.returncode) for name, c in children.items() if c.poll() is not None]
        if ended:
            # One role gone means the add-on is not whole: stop and let the Supervisor restart it.
            print(f"addon: {ended[0][0]} exited with {ended[0][1]}; stopping", flush=True)
            code = ended[0][1] or 1
            break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return code


def main() -> int:
    options = json.loads(OPTIONS_FILE.read_text()) if OPTIONS_FILE.exists() else {}
    env = environment(options, dict(os.environ))
    prepare(env)
    return supervise(roles(env), env)


if __name__ == "__main__":
    sys.exit(main())
