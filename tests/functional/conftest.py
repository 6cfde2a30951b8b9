"""A real ovsdb-server with the hardware_vtep schema per test (no ovs-vtep, no namespaces)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from silonet.devices.vtepdb import VtepDb, available

MISSING = available()
pytestmark = pytest.mark.ovs


@pytest.fixture
def vtepdb(tmp_path: Path) -> Iterator[VtepDb]:
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING}); ./run test installs it")
    db = VtepDb(tmp_path / "gw").start()
    yield db
    db.stop()
