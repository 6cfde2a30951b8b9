"""The process limits a long-running ``silonet serve`` sets for itself."""

from __future__ import annotations

import os
import resource
import sys

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


SWITCH_INTERVAL_S = 0.0005


def quicker_switches() -> float:
    """Let a thread waiting for the interpreter's lock have it after 0.5 ms instead of 5 ms
    (SILONET_SWITCH_INTERVAL_MS overrides). The OVSDB hubs release the lock at every socket
    call; with job workers, the recorder and the API busy, each re-acquisition waited up to the
    interval times the runnable threads (CPython's convoy effect), and 1,000 gateways' echoes
    came after the devices' 5 s inactivity probe. Returns the interval set."""
    ms = os.environ.get("SILONET_SWITCH_INTERVAL_MS")
    interval = float(ms) / 1000 if ms else SWITCH_INTERVAL_S
    sys.setswitchinterval(interval)
    return interval
