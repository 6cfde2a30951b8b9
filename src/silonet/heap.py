"""How a long-running silonet process treats Python's cyclic garbage collector and glibc's
malloc (``silonet serve``, its reconcile workers, and the benchmarks that measure it the same way)."""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
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


# ---------------------------------------------------------------------------- young objects frozen
# A converge grows each replica by ~4,400 tracked objects a gateway (4.4 M at 1,000), and every one
# was walked by a young collection, again by a middle one, then held in the oldest: ~2.7 of the
# serve's ~31 CPU-s. What a link's turn leaves (its rows, mostly) is frozen at once instead: the
# collector never walks it. The cost is the cycles frozen with it, which only a full collection
# frees: an IDL closed (its rows, tables and itself are one cycle), and whatever became garbage
# in a cycle elsewhere meanwhile. Hence ``reclaim``: one full collection once the freezing stopped.
FREEZE_YOUNG = 20_000  # tracked objects made since the last collection (or freeze): freeze them
RECLAIM_CALM_S = 30.0  # no freeze for this long: a full collection if an IDL was closed since the last
RECLAIM_EVERY_S = 3600.0  # ... and at least this often while anything was frozen since the last


class _Frozen:
    """What froze since the last full collection (``freeze_young``, ``closed``, ``reclaim``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects = 0  # frozen since the last full collection (tracked objects, about)
        self.closed = False  # an IDL was closed since: a cycle of its rows is frozen
        self.last_freeze = 0.0
        self.last_full = time.monotonic()


_frozen = _Frozen()
log = logging.getLogger("silonet.heap")


def freeze_young(at: int | None = None) -> int:
    """Freeze the objects made since the last collection when they are ``at`` (``FREEZE_YOUNG``)
    or more (after a turn that read an update, the collector paused); how many (0: none frozen)."""
    young = gc.get_count()[0]
    if young < (FREEZE_YOUNG if at is None else at):
        return 0
    with _frozen.lock:
        gc.freeze()  # every generation into the permanent one: O(1), and the young count starts over
        _frozen.objects += young
        _frozen.last_freeze = time.monotonic()
    return young


def closed() -> None:
    """A replica was closed: its cycle may be frozen, for ``reclaim`` to free once calm."""
    _frozen.closed = True


def reclaim(now: float | None = None) -> bool:
    """One full collection of everything (frozen included), then freeze what lives again: when an
    IDL was closed and nothing was frozen for ``RECLAIM_CALM_S``, or ``RECLAIM_EVERY_S`` after the
    last while anything was frozen since (the ``Trimmer``'s thread asks every few seconds)."""
    now = time.monotonic() if now is None else now
    with _frozen.lock:
        if not _frozen.objects:
            return False
        calm = now - _frozen.last_freeze >= RECLAIM_CALM_S
        if not (calm and _frozen.closed) and now - _frozen.last_full < RECLAIM_EVERY_S:
            return False
        why = "a replica closed" if _frozen.closed else "hourly"
        started, objects = time.perf_counter(), _frozen.objects
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        _frozen.objects, _frozen.closed, _frozen.last_full = 0, False, now
    log.info("full collection (%s): %d objects frozen since the last, %d freed, %.2f s", why, objects, freed,
             time.perf_counter() - started)
    return True


# ---------------------------------------------------------------------------- glibc's malloc
# The heap a converge leaves: glibc keeps what Python freed (large objects: update messages,
# writes, states of ~100 KiB per gateway) in its arenas, one per thread that allocated (up to 8 per
# core), and returns little of it. At 1,000 gateways ~140 MiB of the serve's 1.2 GiB was free and
# kept (``malloc_trim`` from a debugger gave it back). Fewer arenas, large blocks mapped on their
# own (returned when freed), and a trim when much is free keep the resident size near what lives.
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameters (malloc.h)
ARENAS = 2
MMAP_THRESHOLD = 256 * 1024
# freed since the last trim: trim above it. At 32 MiB each process of a 1,000-gateway fleet kept up
# to that much free once converged (two reconcile workers held 1,019-1,052 MiB; 984-988 at 4 MiB)
TRIM_FREE = 4 * 1024 * 1024
TRIM_EVERY_S = 10.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (musl and others have no ``malloc_trim``: nothing to do)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not all(hasattr(libc, f) for f in ("mallopt", "malloc_trim", "mallinfo2")):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.mallinfo2.argtypes = []
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc


def free_in_arenas(libc: ctypes.CDLL | None = None) -> int | None:
    """Bytes glibc holds free for reuse (``mallinfo2().fordblks``); None off glibc."""
    libc = libc or _glibc()
    return None if libc is None else int(libc.mallinfo2().fordblks)


class Trimmer:
    """The process's malloc held small: ``start`` sets the arena count and the mapping threshold
    (before the threads that allocate exist) and looks every ``every_s`` at what the arenas hold
    free, trimming once ``free_bytes`` more was freed since the last trim (nothing at idle). A look
    and a trim each walk the free chunks: ~30 ms at 200,000 of them. Its thread also runs the full
    collection ``reclaim`` finds due (off glibc, only that)."""

    def __init__(self, every_s: float = TRIM_EVERY_S, free_bytes: int = TRIM_FREE) -> None:
        self.every_s, self.free_bytes = every_s, free_bytes
        # What the arenas held free after the last trim (or the least since): a trim leaves its chunks
        # free (their pages went back), so only what was freed on top of it is worth another
        self._floor = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._libc = _glibc()

    def start(self) -> Trimmer:
        if self._libc is not None:
            self._libc.mallopt(M_ARENA_MAX, ARENAS)
            self._libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        self._thread = threading.Thread(target=self._run, name="heap-trim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def trim_now(self) -> int:
        """Trim if more than ``free_bytes`` was freed since the last trim; those bytes (0: not trimmed)."""
        libc = self._libc
        if libc is None:
            return 0
        free = int(libc.mallinfo2().fordblks)
        self._floor = min(self._floor, free)
        grown = free - self._floor
        if grown < self.free_bytes:
            return 0
        libc.malloc_trim(0)
        self._floor = free
        return grown

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            if reclaim():
                self._floor = 0  # what it freed is worth a trim
            self.trim_now()
