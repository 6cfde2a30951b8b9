"""Two reconcilers (replicas) on one database drive three real ovsdb-servers: they split
the gateways, a MAC learned on one replica's gateway reaches the other replica's gateways,
and a replica that stops hands its gateways over at once (it gives its leases back)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from silonet.devices.vtepdb import VtepDb
from silonet.reconcile import Reconciler
from silonet.service import Manager
from silonet.service import schemas as S
from tests.functional.conftest import MISSING

pytestmark = [pytest.mark.ovs, pytest.mark.both_engines]
MAC = "02:00:00:00:0b:01"


async def until(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.05)


def announced(manager: Manager) -> dict[tuple[str, int], list[str]]:
    """The attachment statuses the event stream announced, in order, per (group, VLAN)."""
    from sqlalchemy import select

    from silonet.store.tables import EventRow

    out: dict[tuple[str, int], list[str]] = {}
    with manager.db.read() as s:
        for (data,) in s.execute(select(EventRow.data).where(EventRow.type == "attachment").order_by(EventRow.id)):
            out.setdefault((data["interface_group"], data["vlan"]), []).append(data["status"])
    return out


def test_two_replicas_split_share_macs_and_hand_over(tmp_path: Path, manager: Manager) -> None:
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING})")
    dbs = {f"gw-{x}": VtepDb(tmp_path / f"gw-{x}", name=f"gw-{x}", tunnel_ip=f"198.18.0.{i + 1}").start()
           for i, x in enumerate("abc")}
    try:
        manager.apply(S.validate(S.Topology, {
            "gateways": [{"name": n, "vtep_ip": db.tunnel_ip, "management": {"driver": "ovsdb", "address": db.remote},
                          "ports": [{"name": "p1"}]} for n, db in dbs.items()],
            "interface_groups": [{"name": f"g{x}", "members": [{"gateway": f"gw-{x}", "port": "p1"}]} for x in "abc"],
            "networks": [{"name": "cust-7", "tenant": "acme", "vni": 5007, "attachments": [
                {"interface_group": f"g{x}", "vlan": 100 + i} for i, x in enumerate("abc")]}]}))

        def realized() -> bool:
            return all(r.state == "realized" for r in manager.statuses())

        async def scenario() -> None:
            a = Reconciler(manager.runtime, period=2.0, poll=0.2, replica="a", lease_ttl=3.0)
            b = Reconciler(manager.runtime, period=2.0, poll=0.2, replica="b", lease_ttl=3.0)
            await a.start()
            await b.start()
            try:
                await until(lambda: len(a.workers) == 2 and len(b.workers) == 1 and realized(),
                            "a holds 2, b holds 1 (ceil(3/2)), all realized")
                assert a.workers.keys().isdisjoint(b.workers)
                assert {r.gateway: r.owner for r in manager.statuses()} == {
                    **dict.fromkeys(a.workers, "a"), **dict.fromkeys(b.workers, "b")}
                src, (peer,) = next(iter(a.workers)), b.workers
                dbs[src].ctl("add-ucast-local", "cust-7", MAC, dbs[src].tunnel_ip)
                await until(lambda: MAC in dbs[peer].ctl("list-remote-macs", "cust-7"),
                            f"{MAC} learned on {src} (replica a) a remote MAC on {peer} (replica b)")
                stopped = time.monotonic()
                await a.stop()
                await until(lambda: len(b.workers) == 3, "b takes over what a gave back")
                assert time.monotonic() - stopped < b.leases.ttl  # given back, not left to expire
                assert {r.owner for r in manager.statuses()} == {"b"}
                manager.detach("cust-7", "gb", 101)
                await until(lambda: "101" not in dbs["gw-b"].ctl("list-bindings", "gw-b", "p1") and realized(),
                            "b alone realizes a change")
                await until(lambda: all(st and st[-1] == "realized" for st in announced(manager).values()),
                            "every attachment announced realized")
                for key, statuses in announced(manager).items():  # each change once, whichever replica saw it
                    assert all(x != y for x, y in itertools.pairwise(statuses)), (key, statuses)
            finally:
                await b.stop()
                await a.stop()

        asyncio.run(scenario())
    finally:
        for db in dbs.values():
            db.stop()
