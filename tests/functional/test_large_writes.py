"""Writes too large for one transaction, and many remote MACs, on a real ``ovsdb-server``.

A job holds the link's IDL while it builds a transaction, and no echo of the device is answered
meanwhile: a write of 100,000 remote MACs took longer than the device's inactivity probe, the
device dropped the connection, and the pass retried the same write forever. A write goes in
transactions of at most ``TXN_OPS`` operations (made small here), in phase order, each read back
before the next is built: switches made by one part carry the bindings and MACs of the next.
Remote MAC rows are found through an index per switch (a walk of the switch's rows per
operation was quadratic); an existing row is updated in place, never doubled. ``vtep-ctl`` is
the independent reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from silonet.devices.vtepdb import VtepDb
from silonet.drivers.base import wait_connected
from silonet.drivers.ovsdb import driver as ovsdb_driver
from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from tests.functional.conftest import probing_each_second

pytestmark = pytest.mark.ovs
PEER = "198.18.0.2"


def _desired(vnis: int, macs: int, ip: str = PEER) -> GatewayState:
    switches = {5000 + v: LogicalSwitch(5000 + v, f"n{v}", frozenset({PEER})) for v in range(vnis)}
    bindings = {("p1", 100 + v): 5000 + v for v in range(vnis)}
    remote = {(5000 + v, f"02:00:00:00:{v:02x}:{m:02x}"): ip for v in range(vnis) for m in range(macs)}
    return GatewayState(switches, bindings, remote)


def test_a_write_larger_than_a_transaction_goes_in_parts_and_lands_whole(vtepdb: VtepDb,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ovsdb_driver, "TXN_OPS", 7)
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))
    desired, moved = _desired(4, 5), _desired(4, 5, "198.18.0.3")
    parts: list[int] = []

    async def scenario() -> tuple[GatewayState, GatewayState]:
        driver = OvsdbDriver(gw, lambda: None)
        build = driver._apply

        def counted(idl, ops, fence=None):  # type: ignore[no-untyped-def]
            parts.append(len(ops))
            return build(idl, ops, fence)

        driver._apply = counted  # type: ignore[method-assign]
        try:
            await driver.start()
            await wait_connected(driver, 20)
            ops = diff(desired, (await driver.read()).owned)
            result = await driver.apply(ops)
            assert result.applied == len(ops) == 4 * 3 + 20 and not result.retry
            first = (await driver.read()).owned
            await driver.apply(diff(moved, first))  # every MAC moves to another VTEP: updated in place
            return first, (await driver.read()).owned
        finally:
            await driver.close()

    first, second = asyncio.run(scenario())
    assert first == desired and second == moved
    assert parts == [7, 7, 7, 7, 4, 7, 7, 6]  # 32 operations, then the 20 moved MACs
    assert sorted(vtepdb.ctl("list-ls").split()) == [f"n{v}" for v in range(4)]
    macs = [line for line in vtepdb.ctl("list-remote-macs", "n2").splitlines() if "02:00:00:00" in line]
    assert len(macs) == 5 and all("198.18.0.3" in line for line in macs), macs
    rows = vtepdb.ctl("--columns=MAC", "list", "Ucast_Macs_Remote").split()
    assert len([r for r in rows if r.startswith('"02:')]) == 20  # no row doubled by the update


def test_a_reading_longer_than_the_device_probe_keeps_the_connections(vtepdb: VtepDb, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Both devices probe every second; the first's monitor reply takes 3 s to read (each row made
    1 ms slower), in one turn of the one hub both links share. Without the reading's own echo
    requests (``MemoIdl.keepalive``) the first device drops the connection mid-reply, every time;
    without the hub's (``Hub.keepalive``) the second, whose echoes wait for that turn."""
    import time

    from silonet.drivers.ovsdb import connection, hub, replica

    remote = probing_each_second(vtepdb)
    other = VtepDb(tmp_path / "other", name="ps2", tunnel_ip="198.18.0.2").start()
    other_remote = probing_each_second(other)
    vtepdb.ctl("add-ls", "big", "--", "set", "Logical_Switch", "big", "tunnel_key=7000",
               "other_config:silonet_managed=true")
    args: list[str] = []
    for m in range(3000):
        args += ["--", "add-ucast-local", "big", f"02:00:00:00:{m >> 8:02x}:{m & 255:02x}", "198.18.0.1"]
    vtepdb.ctl(*args[1:])
    monkeypatch.setattr(replica, "KEEPALIVE_ROWS", 64)
    monkeypatch.setattr(replica, "KEEPALIVE_S", 0.3)
    slow = replica.MemoIdl._columns

    def slower(self, table, row, row_json):  # type: ignore[no-untyped-def]
        time.sleep(0.001)
        return slow(self, table, row, row_json)

    one = hub.Hubs(1)  # both links on one hub
    monkeypatch.setattr(connection, "hubs", lambda: one)
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", remote), ports=(Port("p1"),))
    gw2 = Gateway("ps2", "198.18.0.2", Management("ovsdb", other_remote), ports=(Port("p1"),))

    async def scenario() -> int:
        second = OvsdbDriver(gw2, lambda: None)
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await second.start()
            await wait_connected(second, 20)
            monkeypatch.setattr(replica.MemoIdl, "_columns", slower)  # the first's reading only
            await driver.start()
            await wait_connected(driver, 60)
            return sum(len(macs) for macs in (await driver.read()).local_macs.values())
        finally:
            await driver.close()
            await second.close()

    t0 = time.monotonic()
    try:
        assert asyncio.run(scenario()) == 3000
    finally:
        other.stop()
    assert time.monotonic() - t0 > 3  # the reading did outlast the probe (else this proves nothing)
    for db in (vtepdb, other):
        log = (db.dir / "ovsdb-server.log").read_text()
        assert "no response to inactivity probe" not in log, (db.name, log[-500:])


def test_a_calm_hub_answers_a_device_that_probes_each_second_in_time(vtepdb: VtepDb, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two idle devices share a calm hub whose quiet period (``QUIET_S``, 3 s here) is longer than
    the 1 s the second allows before it hangs up. The second probes every second, so its link is
    ``quick`` and the hub answers within ``QUIET_QUICK_S``: no device drops its connection. With
    the quiet period alone, the probing device dropped the connection at its first echo."""
    from silonet.drivers.ovsdb import connection, hub

    monkeypatch.setattr(hub, "QUIET_S", 3.0)
    one = hub.Hubs(1)  # both links on one hub
    monkeypatch.setattr(connection, "hubs", lambda: one)
    other = VtepDb(tmp_path / "other", name="ps2", tunnel_ip="198.18.0.2").start()
    gws = [Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),)),
           Gateway("ps2", "198.18.0.2", Management("ovsdb", probing_each_second(other)), ports=(Port("p1"),))]

    async def scenario() -> list[bool]:
        drivers = [OvsdbDriver(gw, lambda: None) for gw in gws]
        try:
            for d in drivers:
                await d.start()
                await wait_connected(d, 20)
            await asyncio.sleep(6)  # idle: six echoes of the second device
            return [d._link.quick() for d in drivers]
        finally:
            for d in drivers:
                await d.close()

    try:
        quick = asyncio.run(scenario())
    finally:
        other.stop()
    assert quick[1], "a device probing every second is answered within QUIET_QUICK_S"
    log = (other.dir / "ovsdb-server.log").read_text()
    assert "no response to inactivity probe" not in log, log[-500:]
