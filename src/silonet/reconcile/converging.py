"""The cyclic garbage collector held off while this process's reconciler first reads a large fleet.

Each new replica row (an IDL's rows, datums and atoms: thousands per gateway) survives, so the
collector walked each of them twice as it was made: in a young collection, then in a middle one.
At 1,000 gateways that was 2.4 of the converge's 28-31 CPU-s, and the converge took 27.5 s without
it against 29.9-33.6 s with it (one interpreter; the cyclic garbage a converge leaves was ~60 MiB).
``hold_while_converging`` pauses the collector (``heap.paused``) from the start until every worker
has read its gateway once (or ``MAX_S``), then collects once: one walk of what the converge made,
which then lives in the oldest generation (a pause of its own, logged, right after the converge).
A reconciler that starts with fewer than ``FROM`` gateways never pauses it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

from silonet import heap

log = logging.getLogger("silonet.reconcile")
FROM = 200  # gateways held at the start: fewer converge in a few seconds, with the collector on
MAX_S = 120.0  # the longest pause: gateways that never answer do not keep it
CHECK_S = 0.5


async def hold_while_converging(unread: Callable[[], int], held: int) -> None:
    """While ``unread()`` (workers that have not read their gateway yet) is above none, for a
    reconciler holding ``held`` gateways at its start (at least ``FROM``); at most ``MAX_S``."""
    if held < FROM:
        return
    started = time.monotonic()
    with heap.paused():
        while unread() > 0 and time.monotonic() - started < MAX_S:
            await asyncio.sleep(CHECK_S)
    t0 = time.perf_counter()
    found = await asyncio.to_thread(gc.collect)
    log.info("the first reads of %d gateways took %.1f s without the cyclic collector; one collection after "
             "them: %d objects freed in %.2f s", held, time.monotonic() - started, found, time.perf_counter() - t0)
