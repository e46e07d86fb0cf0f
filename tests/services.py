"""Private instances of services for fault tests: started on their own port and data directory,
stopped and restarted by process id, never touching the machine's shared instances."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import influx_reachable, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PrivateService:
    process: subprocess.Popen | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None


class PrivateInfluxDB(PrivateService):
    def __init__(self, data: Path, tls: tuple[Path, Path] | None = None) -> None:
        """tls: (certificate, key) PEM files, served over https (tests/test_tls.py)."""
        self.data, self.port, self.tls = data, free_port(), tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        for sub in ("meta", "data", "wal"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        (data / "influxdb.conf").write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{data}/meta"\n[data]\n  dir = "{data}/data"\n'
            f'  wal-dir = "{data}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
        )
        if tls:  # into the [http] section, which [monitor] follows
            conf, cert, key = data / "influxdb.conf", *tls
            https = f'  https-enabled = true\n  https-certificate = "{cert}"\n'
            https += f'  https-private-key = "{key}"\n[monitor]'
            conf.write_text(conf.read_text().replace("[monitor]", https))

    def start(self) -> None:
        binary = shutil.which("influxd")
        assert binary, "influxd is not installed: `make test` installs Debian's influxdb"
        log = open(self.data / "influxd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [binary, "-config", str(self.data / "influxdb.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Over https the test's CA is needed to ask /ping: the open port is enough here.
        ready = (lambda: port_open(self.port)) if self.tls else (lambda: influx_reachable(self.url))
        wait_until(ready, 60, f"private InfluxDB on {self.port}")


class PrivateRabbitMQ(PrivateService):
    """A second RabbitMQ node (Debian's rabbitmq-server) with its own port, name and data."""

    def __init__(self) -> None:
        # The server drops to the rabbitmq user, which cannot enter pytest's private (0700)
        # tmp directories: its directory lives in /tmp itself, owned by that user.
        data = Path(tempfile.mkdtemp(prefix="ingestor-test-rabbitmq-"))
        data.chmod(0o755)
        self.data, self.port, self.dist_port = data, free_port(), free_port()
        self.name = f"fault{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        data.mkdir(parents=True, exist_ok=True)
        (data / "plugins").write_text("[].\n")
        (data / "env.conf").write_text("")
        (data / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(data, "rabbitmq", "rabbitmq")
        for path in data.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")

    def start(self) -> None:
        env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(self.data / "env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.data / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.data / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data / "plugins"),
            "RABBITMQ_PID_FILE": str(self.data / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        log = open(self.data / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The port opens a moment before the broker accepts AMQP sessions: wait for a session.
        wait_until(self.accepts_sessions, 90, f"private RabbitMQ on {self.port}", interval=0.3)

    def accepts_sessions(self) -> bool:
        from kombu import Connection

        if self.process is not None and self.process.poll() is not None:
            log = (self.data / "server.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"private RabbitMQ exited: {log}")
        try:
            with Connection(self.url, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=0)
                return True
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop the node itself: signalling the server script alone leaves the VM running."""
        for pid in self._node_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while self._node_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self._node_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        super().stop(sig, timeout)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def _node_pids(self) -> list[int]:
        # The server script hands over to the Erlang VM (and epmd helpers) as another user;
        # the VM's environment names the node, its command line does not.
        marker = f"RABBITMQ_NODENAME={self.name}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        pids = self._node_pids()
        assert pids, "the broker's Erlang VM was not found"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._node_pids():
            os.kill(pid, signal.SIGCONT)


class PrivateMosquitto(PrivateService):
    """A Mosquitto of its own (port, persistent data directory), stopped by pid."""

    def __init__(self, extra: str = "") -> None:
        """extra: more configuration for its listener (tests/test_tls.py: TLS files)."""
        self.port = free_port()
        # Mosquitto started as root drops to the mosquitto user, which cannot enter pytest's
        # private (0700) tmp directories: the data directory lives in /tmp, owned by that user.
        self.data = Path(tempfile.mkdtemp(prefix="ingestor-test-mosquitto-"))
        self.data.chmod(0o755)
        shutil.chown(self.data, "mosquitto", "mosquitto")
        # An offline session holds at most max_queued_messages (in-flight ones included); the
        # default 1000 is less than publishers send while a listener restarts.
        (self.data / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\npersistence true\n"
            f"persistence_location {self.data}/\nallow_anonymous true\n"
            "max_queued_messages 100000\n" + extra
        )

    def start(self) -> None:
        log = open(self.data / "mosquitto.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.data / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), 15, f"private Mosquitto on {self.port}")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


PG_BIN = Path("/usr/lib/postgresql")


class PrivatePostgres:
    """A PostgreSQL cluster of its own from the installed server's initdb and pg_ctl, run as
    the postgres user (they refuse root) on a directory that user owns; trust on loopback."""

    def __init__(self) -> None:
        versions = sorted(PG_BIN.glob("*/bin/pg_ctl"))
        assert versions, "PostgreSQL's server binaries are not installed"
        self.bin = versions[-1].parent
        self.data = Path(tempfile.mkdtemp(prefix="ingestor-test-postgres-"))
        self.data.chmod(0o755)
        shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres(
            "initdb", "-D", str(self.data / "db"), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def _as_postgres(self, tool: str, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        log = str(self.data / "postgres.log")
        self._as_postgres(
            "pg_ctl", "-D", str(self.data / "db"), "-l", log, "-o", options, "-w", "start"
        )
        wait_until(lambda: port_open(self.port), 30, f"private PostgreSQL on {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """fast: sessions are cut, as a crash or a failover cuts them; immediate: no checkpoint."""
        self._as_postgres("pg_ctl", "-D", str(self.data / "db"), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "db" / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)
