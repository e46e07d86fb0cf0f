"""The no-server Celery broker of `make run`: kombu's filesystem transport, made sound.

kombu's own transport lets a reader take a message file before its writer finished (kombu
issue 1551: a half-read message, a dead worker), claims messages by moving them to /tmp (a copy
on another filesystem: two readers can both get one), loses what a killed consumer held, polls
once a second and keeps broadcast messages forever. Here:

- a message is written under a temporary name and renamed into place (atomic on POSIX);
- a reader claims it by renaming it into ``processing/`` (only one rename can succeed) and
  removes it on ack; a consumer that died leaves its claims behind, and the next process to
  open the broker puts them back (at least once: writes are idempotent);
- an idle consumer sleeps until a message file is renamed into the folder (Linux inotify; a
  look every 2 s regardless), or, without inotify, polls every 10 ms after a message, backing
  off to 200 ms;
- transient messages (Celery events, remote-control broadcasts and replies) expire after a
  minute, so queues nobody reads any more do not grow.

Messages are files named ``<ns since epoch>-<uuid>[~t].<queue>.msg``: sorted names are FIFO.
Single host only (claims are keyed by process id). docs/benchmarks.md has the measurements.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

TRANSIENT_MARK = "~t"
# Celery's event receivers and remote-control replies read within seconds; a minute is plenty.
TRANSIENT_TTL_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 30.0
PROCESSING = "processing"


def _queue_of(name: str) -> str | None:
    """The queue of a message file name, None for anything else (temporary files)."""
    if not name.endswith(".msg") or "." not in name[:-4]:
        return None
    return name[:-4].split(".", 1)[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


IN_MOVED_TO = 0x80  # inotify(7): a file renamed into the watched directory


class FolderWatch:
    """Wakes a waiting reader when a file is renamed into the folder, as every message is."""

    def __init__(self, folder: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_MOVED_TO) < 0:
            error = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(error, f"inotify_add_watch failed for {folder}")

    @classmethod
    def of(cls, folder: str) -> FolderWatch | None:
        """A watch of the folder, or None where inotify is missing or its limits are reached."""
        try:
            return cls(folder)
        except (OSError, AttributeError):  # AttributeError: a libc without inotify
            return None

    def wait(self, timeout: float) -> None:
        """Until something was renamed into the folder since the last wait, or the timeout."""
        readable, _, _ = select.select([self.fd], [], [], timeout)
        if readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.fd, 65536):
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class QoS(virtual.QoS):
    """Removes a claimed message's file once the consumer is done with it."""

    def holding(self) -> bool:
        """Whether a delivered message still waits for its ack or reject."""
        return len(self._delivered) > len(self._dirty)  # acks are marked dirty, removed later

    def ack(self, delivery_tag: str) -> None:
        super().ack(delivery_tag)
        self.channel.forget(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        self.channel.forget(delivery_tag)


class Channel(filesystem.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folder = Path(self.data_folder_in)
        self.processing = self.folder / PROCESSING
        self.processing.mkdir(parents=True, exist_ok=True)
        self.claims: dict[str, Path] = {}
        self.listings: dict[str, list[str]] = {}
        self.no_ack_queues: set[str] = set()
        self.next_sweep = 0.0
        self.recover_orphans()

    # --- writing ---------------------------------------------------------------------------
    def _put(self, queue: str, payload: dict, **kwargs: Any) -> None:
        transient = payload.get("properties", {}).get("delivery_mode") != 2
        mark = TRANSIENT_MARK if transient else ""
        name = f"{time.time_ns():019d}-{uuid.uuid4().hex}{mark}.{queue}.msg"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(dumps(payload).encode())
        os.rename(temporary, self.folder / name)

    # --- reading ---------------------------------------------------------------------------
    def _get(self, queue: str) -> dict:
        self.sweep_transient()
        while True:
            name = self.next_name(queue)
            claimed = self.processing / f"{os.getpid()}~{name}"
            try:
                os.rename(self.folder / name, claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            payload = loads(claimed.read_bytes())
            if queue in self.no_ack_queues:
                claimed.unlink()
            else:
                self.claims[payload["properties"]["delivery_tag"]] = claimed
            return payload

    def next_name(self, queue: str) -> str:
        """The oldest message name of the queue: one directory listing serves many gets."""
        listing = self.listings.get(queue)
        if not listing:
            names = (n for n in os.listdir(self.folder) if _queue_of(n) == queue)
            listing = self.listings[queue] = sorted(names, reverse=True)
        if not listing:
            raise Empty()
        return listing.pop()

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self.no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        if not no_ack:
            return super().basic_get(queue, no_ack, **kwargs)
        self.no_ack_queues.add(queue)
        try:
            return super().basic_get(queue, no_ack, **kwargs)
        finally:
            self.no_ack_queues.discard(queue)

    def forget(self, delivery_tag: str) -> None:
        claimed = self.claims.pop(delivery_tag, None)
        if claimed is not None:
            claimed.unlink(missing_ok=True)

    def _restore(self, message: Any) -> None:
        super()._restore(message)
        self.forget(message.delivery_tag)

    # --- housekeeping ----------------------------------------------------------------------
    def recover_orphans(self) -> None:
        """Put back what consumers that no longer run had claimed but not acknowledged."""
        for claimed in self.processing.iterdir():
            pid, _, name = claimed.name.partition("~")
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):  # another process got there first
                    claimed.rename(self.folder / name)

    def sweep_transient(self) -> None:
        now = time.time()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_EVERY_SECONDS
        oldest = f"{int((now - TRANSIENT_TTL_SECONDS) * 1e9):019d}"
        for name in os.listdir(self.folder):
            if TRANSIENT_MARK + "." in name and name < oldest:
                (self.folder / name).unlink(missing_ok=True)

    def _purge(self, queue: str) -> int:
        self.listings.pop(queue, None)
        count = 0
        for name in os.listdir(self.folder):
            if _queue_of(name) == queue:
                (self.folder / name).unlink(missing_ok=True)
                count += 1
        return count

    def _size(self, queue: str) -> int:
        return sum(1 for name in os.listdir(self.folder) if _queue_of(name) == queue)


class Transport(filesystem.Transport):
    Channel = Channel
    # Declared bindings, cached per process: one cache per broker folder, since the bindings
    # themselves live in that folder.
    states: dict[str, virtual.BrokerState] = {}
    driver_type = driver_name = "embedded"
    # No host to connect to (and no "No hostname was supplied" warning from kombu).
    default_connection_params: dict = {}
    # Without inotify: after a message poll again soon (a burst follows); idle: back off to a
    # few polls a second. With it: a look every RESCAN_SECONDS even when nothing woke us.
    min_polling_interval = 0.01
    polling_interval = 0.2
    RESCAN_SECONDS = 2.0

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.folder = str(client.transport_options.get("data_folder_in", "data_in"))
        self.state = self.states.setdefault(self.folder, virtual.BrokerState())
        self.watch: FolderWatch | None = None
        self.watch_tried = False

    def close_connection(self, connection: Any) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch, self.watch_tried = None, False
        super().close_connection(connection)

    def _folder_watch(self) -> FolderWatch | None:
        # Made before the first look, so a message renamed in after a look that missed it
        # still wakes the wait that follows.
        if not self.watch_tried:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            self.watch, self.watch_tried = FolderWatch.of(self.folder), True
        return self.watch

    def _holding(self) -> bool:
        return any(channel.qos.holding() for channel in self.channels)

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        start = time.monotonic()
        interval = self.min_polling_interval
        watch = self._folder_watch()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                remaining = None if timeout is None else start + timeout - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError() from None
                if timeout is not None and self._holding():
                    # Celery's loop for a polling transport acks only between two calls of
                    # drain_events(timeout=2.0): blocking here while a message waits for its ack
                    # held a one-process worker's next task back ~2 s (its prefetch is full).
                    time.sleep(self.min_polling_interval)
                    raise TimeoutError() from None
                if watch is not None:
                    watch.wait(min(remaining or self.RESCAN_SECONDS, self.RESCAN_SECONDS))
                    continue
                time.sleep(interval)
                interval = min(interval * 2, self.polling_interval)
