"""How a long-running silonet process treats Python's cyclic garbage collector (``silonet
serve``, and the benchmarks that measure it the same way)."""

from __future__ import annotations

import gc

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
