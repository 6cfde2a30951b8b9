"""The HTTP server loop of ``silonet serve``: uvicorn's, ticking once a second instead of ten times.

uvicorn's ``main_loop`` wakes every 0.1 s to notice a stop and to move its ``Date`` header once a
second. At 1,000 idle gateways every wake-up of the event loop counts: those ten ticks were 1.55 ms
of the loop's CPU a second, more than any other callback of an idle manager. ``CalmServer`` ticks
once a second (the header still moves each second), and a stop signal wakes it at once, so a
stop is not slower than before.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import uvicorn

TICK_S = 1.0  # uvicorn moves its Date header each tenth tick: here, each tick
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start (uvicorn.main.STARTUP_FAILURE)


class CalmServer(uvicorn.Server):
    """``uvicorn.Server`` whose main loop ticks every TICK_S and is woken by ``handle_exit``."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ticks = 0  # ``on_tick`` calls: what a test counts
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        if self.should_exit:  # a signal before the loop was known
            self._stop.set()
        counter = 0
        while not await self._tick(counter):
            counter = (counter + 10) % 864000  # uvicorn's counter: every tick moves the header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK_S)

    async def _tick(self, counter: int) -> bool:
        self.ticks += 1
        return await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's (SIGINT twice forces the exit), then the main loop wakes now (any thread, or
        the signal handler on the loop's own thread)."""
        super().handle_exit(sig, frame)
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing to wake
                loop.call_soon_threadsafe(stop.set)


def run(app: object, host: str, port: int) -> None:
    """``uvicorn.run(app, host=host, port=port, log_level="info", log_config=None)`` with a
    ``CalmServer``: exits with uvicorn's status 3 when the server could not start."""
    import sys

    server = CalmServer(uvicorn.Config(app, host=host, port=port, log_level="info", log_config=None))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
