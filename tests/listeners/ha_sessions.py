"""A listener's session against a simulator, for the tests that drive one end to end."""

from __future__ import annotations

import asyncio

from hasim.server import HomeAssistantSimulator
from listeners.homeassistant.client import HomeAssistantListener


def run_session(listener: HomeAssistantListener, simulator: HomeAssistantSimulator, events: int):
    """Start the simulator, run the listener's session until it has taken `events` (20 s at
    most), then stop both."""

    async def scenario() -> None:
        await simulator.start()
        listener.url = simulator.url
        task = asyncio.create_task(listener.session())
        deadline = asyncio.get_running_loop().time() + 20
        while listener.stats["events"] < events:
            assert asyncio.get_running_loop().time() < deadline, listener.stats
            await asyncio.sleep(0.05)
        listener.request_stop()
        await asyncio.wait_for(task, 10)
        await simulator.stop()

    asyncio.run(scenario())
