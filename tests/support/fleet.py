"""A fleet of real vtep ovsdb-servers for tests that run ``silonet serve`` against them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from silonet.bench.fleet import Fleet
from silonet.devices.vtepdb import available


@contextmanager
def started_fleet(workdir: Path, gateways: int, prefix: str) -> Iterator[Fleet]:
    """``gateways`` ovsdb-servers with ports p1 and p2, stopped (by pid) when the test ends."""
    if missing := available():
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing}); ./run test installs it")
    fleet = Fleet(workdir, gateways, ports=("p1", "p2"), prefix=prefix)
    try:
        yield fleet.start()
    finally:
        fleet.stop()
