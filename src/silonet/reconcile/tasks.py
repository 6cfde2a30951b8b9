"""Waiting and stopping on the reconciler's event loop, the same way in every part of it."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("silonet.reconcile")


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Until the event is set (True) or the time is up (False). ``asyncio.timeout``, not
    ``wait_for``: on Python 3.11 ``wait_for`` can swallow a cancellation that races with
    its inner wait."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def cancel(task: asyncio.Task, what: str, grace: float = 10.0) -> None:
    """Cancel and wait, but never forever: shutting down must not hang on one task."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("%s did not stop within %.0f s; leaving it", what, grace)
