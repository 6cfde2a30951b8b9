"""Many real gateways held by a few hub threads (``drivers/ovsdb/hub``), not a thread each.

Sixteen vtep ovsdb-servers, one manager: every attach realizes (vtep-ctl reads each device),
the process runs at most ``HUBS`` hub threads whatever the number of gateways, and one device
that stops and comes back is reconnected while the others keep being driven.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from silonet.devices.vtepdb import VtepDb
from silonet.drivers.base import wait_connected
from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.drivers.ovsdb.hub import CONNECTORS, HUBS, WORKERS, Resyncs, Woken, hubs
from silonet.model import Gateway, Management, Port
from silonet.plan.ops import EnsureLogicalSwitch
from silonet.service import Manager
from tests.functional.conftest import managed_gateways

pytestmark = pytest.mark.ovs
N = 16


def _threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_sixteen_gateways_share_the_hub_threads(tmp_path: Path, manager: Manager) -> None:
    names = [f"gw-{i:02d}" for i in range(N)]
    ports = {n: [{"name": "p1"}] for n in names}
    groups = {f"g{i:02d}": {"members": [{"gateway": n, "port": "p1"}]} for i, n in enumerate(names)}
    with managed_gateways(tmp_path, manager, ports, groups) as (client, dbs):
        for i in range(N):
            r = client.post("/v1/networks/cust-42/attachments?wait=30",
                            json={"interface_group": f"g{i:02d}", "vlan": 100 + i})
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "realized", r.json()
        for i, (name, db) in enumerate(dbs.items()):
            assert db.ctl("list-bindings", name, "p1").split() == [f"{100 + i:04d}", "cust-42"]
            assert db.ctl("list-remote-macs", "cust-42").count("vxlan_over_ipv4/") == N - 1
        assert 1 <= len(hubs().hubs) <= HUBS  # this process's (tests may leave hubs of their own)
        assert all(h.is_alive() for h in hubs().hubs)
        assert not _threads("ovsdb tcp:"), "a thread per gateway again"
        assert len(_threads("ovsdb job")) <= WORKERS and len(_threads("ovsdb connect")) <= CONNECTORS

        down = dbs["gw-03"]
        down.stop()
        r = client.post("/v1/networks/cust-42/attachments?wait=30", json={"interface_group": "g04", "vlan": 300})
        assert r.status_code == 201, r.text
        by_gateway = {g["gateway"]: g["status"] for g in r.json()["gateways"]}  # the others keep going
        assert by_gateway.pop("gw-03") == "failed" and set(by_gateway.values()) == {"realized"}, r.text
        down.start(fresh=False)
        deadline = time.monotonic() + 30  # reconnects within RECONNECT_MAX_MS, realizes what it missed
        while (st := client.get("/v1/gateways/gw-03/status").json())["last_error"] or not st["reachable"]:
            assert time.monotonic() < deadline, st
            time.sleep(0.1)
        r = client.post("/v1/networks/cust-42/attachments?wait=60", json={"interface_group": "g03", "vlan": 301})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text
        assert down.ctl("list-bindings", "gw-03", "p1").split() == ["0103", "cust-42", "0301", "cust-42"]


class Counted(Resyncs):
    """The hubs' resync slots, counting how many links held one at once."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.held = self.peak = self.taken = 0
        self._count = threading.Lock()

    def take(self, link: Woken) -> bool:
        got = super().take(link)
        if got:
            with self._count:
                self.held += 1
                self.taken += 1
                self.peak = max(self.peak, self.held)
        return got

    def give(self) -> None:
        with self._count:
            self.held -= 1
        super().give()


def test_devices_that_all_come_back_at_once_resync_a_few_at_a_time(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve loaded devices restarted together: each link connects only with one of two slots,
    held until its replica is whole; every gateway reads its 40 switches again."""
    slots = Counted(2)
    monkeypatch.setattr(hubs(), "resyncs", slots)
    dbs = [VtepDb(tmp_path / f"gw{i}", name=f"gw-{i:02d}", tunnel_ip=f"198.18.0.{i + 1}").start() for i in range(12)]
    try:
        for db in dbs:
            db.ctl(*[a for v in range(40) for a in ("--", "add-ls", f"ls{v}", "--", "set", "Logical_Switch",
                                                     f"ls{v}", f"tunnel_key={6000 + v}")][1:])

        async def scenario() -> None:
            drivers = [OvsdbDriver(Gateway(db.name, db.tunnel_ip, Management("ovsdb", db.remote),
                                           ports=(Port("p1"),)), lambda: None) for db in dbs]
            for drv in drivers:
                await drv.start()
            try:
                for drv in drivers:
                    await wait_connected(drv, 30)
                    assert len((await drv.read()).facts.foreign_vnis) == 40
                first = slots.taken
                for db in dbs:
                    db.stop()
                for db in dbs:
                    db.start(fresh=False)
                deadline = time.monotonic() + 60
                for drv in drivers:
                    while slots.taken < first + len(dbs) or not drv.health().connected:
                        assert time.monotonic() < deadline, (slots.taken, drv.health())
                        await asyncio.sleep(0.05)
                    assert len((await drv.read()).facts.foreign_vnis) == 40
            finally:
                for drv in drivers:
                    await drv.close()

        asyncio.run(scenario())
    finally:
        for db in dbs:
            db.stop()
    assert slots.peak == 2, "more links than slots resynced at once, or the slots were never shared"
    assert slots.held == 0 and slots.waiting == 0
    assert slots.taken >= 2 * len(dbs)


def test_a_write_handed_over_after_the_connection_dropped_leaves_it_reconnecting(vtepdb: VtepDb) -> None:
    """A job runs in a worker some time after it was submitted; if the connection dropped
    meanwhile, its write fails at once and the session stays in backoff: marking activity on it
    (what a write does to time its answer) moved a session in backoff to ACTIVE with no
    connection, and the link stayed down until two idle probes (a minute) passed."""
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))

    async def scenario() -> None:
        drv = OvsdbDriver(gw, lambda: None)
        await drv.start()
        try:
            await wait_connected(drv, 20)
            vtepdb.stop()
            deadline = time.monotonic() + 20
            while drv.health().connected:
                assert time.monotonic() < deadline, "the link never saw its device go"
                await asyncio.sleep(0.05)
            late = drv._link.submit(lambda idl: drv._apply(idl, [EnsureLogicalSwitch(5000, "cust-42")]))
            with pytest.raises(ConnectionError):
                await asyncio.wrap_future(late)
            vtepdb.start(fresh=False)
            await wait_connected(drv, 20)  # reconnected within its backoff, not after the idle probes
            assert (await drv.apply([EnsureLogicalSwitch(5000, "cust-42")])).applied == 1
        finally:
            await drv.close()

    asyncio.run(scenario())
    assert "cust-42" in vtepdb.ctl("list-ls").split()



class _Holder:
    """A link that holds the only resync slot until the test gives it back."""

    def wake(self) -> None:
        pass


def test_a_link_queued_for_a_resync_slot_says_so_not_disconnected(vtepdb: VtepDb,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A scale run printed a thousand "disconnected from tcp:..." lines for links that only waited
    their turn to connect: the status says what the link waits for."""
    slots = Resyncs(1)
    assert slots.take(_Holder())
    monkeypatch.setattr(hubs(), "resyncs", slots)

    async def scenario() -> tuple[str, bool]:
        drv = OvsdbDriver(Gateway(vtepdb.name, vtepdb.tunnel_ip, Management("ovsdb", vtepdb.remote),
                                  ports=(Port("p1"),)), lambda: None)
        await drv.start()
        try:
            deadline = time.monotonic() + 20
            while not slots.waiting:
                assert time.monotonic() < deadline, drv.health()
                await asyncio.sleep(0.02)
            queued = drv.health()
            slots.give()  # the slot goes to the queued link, which connects
            await wait_connected(drv, 20)
            return queued.detail, queued.connected
        finally:
            await drv.close()

    detail, connected = asyncio.run(scenario())
    assert not connected
    assert detail == f"waiting its turn to connect to {vtepdb.remote} (at most 1 gateway(s) resync at once)", detail
