"""The simulator on an event loop of its own in a daemon thread, for synchronous tests and tools."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hasim.server import HomeAssistantSimulator

T = TypeVar("T")
PR_SET_NAME = 15  # prctl(2)


def name_os_thread(name: str) -> None:
    """The calling thread's name in /proc/<pid>/task/<tid>/comm, where bench/footprint.py tells
    the simulator's CPU apart from the listener's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class SimulatorThread:
    """HomeAssistantSimulator on its own event loop in a daemon thread, for synchronous code.

    Everything that reads or changes the simulator's state runs on that loop, so callers see
    consistent snapshots; the counters are plain ints and are read directly.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self.simulator: HomeAssistantSimulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        """Start the thread; returns once the server is listening."""
        self._thread = threading.Thread(target=self._run, name="ha-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"simulator did not start listening within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"simulator failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        name_os_thread("ha-simulator")
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.simulator = HomeAssistantSimulator(**self._options)
            loop.run_until_complete(self.simulator.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.simulator.stop())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)  # run() then stops the server on its own loop
        thread.join(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run function() on the simulator's loop and return its result."""
        if threading.current_thread() is self._thread:
            return function()  # already on the loop (a wait_for predicate): no round trip

        async def run() -> T:
            return function()

        return self.run(run(), timeout)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the simulator thread is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def sim(self) -> HomeAssistantSimulator:
        if self.simulator is None:
            raise RuntimeError("the simulator thread has not started")
        return self.simulator

    # --- read access ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def token(self) -> str:
        return self.sim.token

    @property
    def connection_count(self) -> int:
        return self.sim.connection_count

    @property
    def subscriber_count(self) -> int:
        return self.call(lambda: self.sim.subscriber_count)

    @property
    def open_connections(self) -> int:
        return self.call(lambda: self.sim.open_connections)

    @property
    def generated_count(self) -> int:
        return self.sim.generated_count

    @property
    def delivered_count(self) -> int:
        return self.sim.delivered_count

    @property
    def done(self) -> bool:
        return self.call(lambda: self.sim.done)

    @property
    def generated(self) -> list[dict[str, Any]]:
        return self.call(lambda: list(self.sim.generated))

    @property
    def delivered(self) -> list[bool]:
        return self.call(lambda: [bool(flag) for flag in self.sim.delivered])

    def delivered_state_changes(self) -> list[tuple[str, dict[str, Any]]]:
        return self.call(self.sim.delivered_state_changes)

    def delivered_events(self) -> list[dict[str, Any]]:
        return self.call(self.sim.delivered_events)

    def states(self) -> list[dict[str, Any]]:
        """The current state objects, as get_states would answer."""
        return self.call(lambda: [entity.state for entity in self.sim.entities])

    # --- control and waiting ---------------------------------------------------------------
    def drop_connections(self) -> int:
        return self.call(self.sim.drop_connections)

    def finish_generation(self) -> int:
        return self.call(self.sim.finish_generation)

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float, what: str = "a condition"
    ) -> None:
        """Wait until predicate() holds; it runs on the simulator's loop, after each change."""
        # The extra seconds only cover a wedged loop; the simulator's own deadline comes first.
        self.run(self.sim.wait_for(predicate, timeout, what), timeout + 5)

    def wait_until_done(self, timeout: float) -> None:
        self.wait_for(lambda: self.sim.done, timeout, "every event generated and written out")

    def wait_for_subscribers(self, count: int = 1, timeout: float = 10.0) -> None:
        what = f"{count} subscription(s)"
        self.wait_for(lambda: self.sim.subscriber_count >= count, timeout, what)

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        what = f"{count} authenticated connection(s) since start"
        self.wait_for(lambda: self.sim.connection_count >= count, timeout, what)

    def wait_for_delivered(self, count: int, timeout: float = 10.0) -> None:
        what = f"{count} events delivered"
        self.wait_for(lambda: self.sim.delivered_count >= count, timeout, what)
