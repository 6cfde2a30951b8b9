"""The process limits a long-running ``silonet serve`` sets for itself."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
from collections.abc import Iterator

# Each OVSDB gateway holds a socket and a wake-up pipe (three descriptors), each SSH gateway a
# socket; the API, the database pool and the log add a few dozen. 1,000 gateways need ~3,100.


def raise_open_files() -> tuple[int, int]:
    """Raise the soft open-files limit as far as the hard limit allows (the usual soft default,
    1,024, ends a manager at about 330 OVSDB gateways). Returns (before, after); an unlimited hard
    limit is capped at 1,048,576 (the kernel's usual ``nr_open``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1_048_576 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # nr_open below the hard limit: keep what we have
            return soft, soft
        return soft, want
    return soft, soft


# 2 ms: at 0.5 ms the forced hand-overs of the interpreter's lock cost a 1,000-gateway converge
# 27.1-28.9 CPU-s against 25.8-27.4 at 2 ms (runs alternating; no echo came late at either); the
# attach p50 stayed 11.5-15.5 ms either way (six runs each)
SWITCH_INTERVAL_S = 0.002
# 5 ms while large writes are in flight (``bulk``): a 1,000-gateway converge at 5 ms throughout took 25.86
# and 25.34 s (21.9-22.1 CPU-s) against 29.6 and 28.14 s (24.3-25.1) at 2 ms, no echo late, and 5 ms
# only while large writes are in flight as long (26.22-26.86 against 25.77-26.61 s, alternating); but
# attaches (never large) at 5 ms: p50 11.63-14.81 ms against 12.28-12.74 at 2 ms (four runs each)
SWITCH_BULK_S = 0.005
_switching = threading.Lock()
_intervals: tuple[float, float] | None = None  # (calm, bulk): set by ``quicker_switches``
_bulk = 0  # large writes in flight


def quicker_switches() -> float:
    """Let a thread waiting for the interpreter's lock have it after 2 ms instead of 5 ms, and
    after 5 ms while large writes are in flight (``bulk``); SILONET_SWITCH_INTERVAL_MS sets one
    interval for both. The OVSDB hubs release the lock at every socket call; with job workers,
    the recorder and the API busy, each re-acquisition waited up to the interval times the
    runnable threads (CPython's convoy effect), and at 5 ms 1,000 gateways' echoes came after the
    devices' 5 s inactivity probe (before echoes were answered in batches without a turn). A
    converge is throughput: fewer forced hand-overs cost less CPU. Returns the calm interval."""
    global _intervals
    ms = os.environ.get("SILONET_SWITCH_INTERVAL_MS")
    calm = float(ms) / 1000 if ms else SWITCH_INTERVAL_S
    with _switching:
        _intervals = (calm, calm if ms else SWITCH_BULK_S)
        sys.setswitchinterval(_intervals[1] if _bulk else calm)
    return calm


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Around a large write: the bulk interval while any is in flight (in a process that set its
    intervals: ``quicker_switches``; elsewhere nothing changes)."""
    global _bulk
    with _switching:
        _bulk += 1
        if _bulk == 1 and _intervals is not None:
            sys.setswitchinterval(_intervals[1])
    try:
        yield
    finally:
        with _switching:
            _bulk -= 1
            if _bulk == 0 and _intervals is not None:
                sys.setswitchinterval(_intervals[0])
