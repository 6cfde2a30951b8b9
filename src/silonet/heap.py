"""How a long-running silonet process treats Python's cyclic garbage collector (``silonet
serve``, and the benchmarks that measure it the same way)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A reconcile pass makes and drops many small objects; at the default thresholds (700, 10, 10)
# the collector ran several times per attach and a full collection walked every IDL replica
# row (~60 ms each at 10 gateways x 200 networks). Rarer passes: ~10 % less CPU per attach.
THRESHOLDS = (50_000, 20, 20)


def settle() -> tuple[int, int, int]:
    """Collect once, freeze what exists (imported and built at start: it lives as long as the
    process, so no full collection walks it again: tens of ms each, which was the p99 of a
    listing page) and set THRESHOLDS; returns the thresholds before, for ``unsettle``."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return before


def unsettle(before: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*before)


_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic-GC passes inside (a whole-fleet compile: it allocates millions of objects that
    form no cycles, and every full pass walked all of them again: at 1,000 gateways that was half
    the compile). Overlapping pauses (threads) share one; the last one out puts the collector
    back as it found it."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
