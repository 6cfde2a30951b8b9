"""The ovsdb driver against a real ovsdb-server, checked with vtep-ctl as the independent reader."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest

from silonet.devices.vtepdb import VtepDb, free_port
from silonet.drivers import registry
from silonet.drivers.base import wait_connected
from silonet.errors import DeviceError
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, diff
from silonet.plan.ops import Bind, EnsureLogicalSwitch

pytestmark = pytest.mark.ovs


def gateway(remote: str, name: str = "ps1") -> Gateway:
    return Gateway(name, "198.18.0.1", Management("ovsdb", remote), 4096, (Port("p1"), Port("p2"), Port("p48")))



def run(fn: Callable) -> None:
    asyncio.run(fn())


DESIRED = GatewayState(
    {5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2", "198.18.0.3"})),
     5001: LogicalSwitch(5001, "cust-43", frozenset({"198.18.0.2"}))},
    {("p1", 100): 5000, ("p1", 101): 5001, ("p48", 0): 5000},
    {(5000, "02:00:00:00:00:0b"): "198.18.0.2"},
)


async def write_desired_and_read_back(gw: Gateway) -> None:
    """A driver on ``gw`` writes DESIRED on an empty device and reads it back."""
    drv = registry("ovsdb")(gw, lambda: None)
    await drv.start()
    await wait_connected(drv)
    await drv.apply(diff(DESIRED, GatewayState()))
    assert (await drv.read()).owned == DESIRED
    await drv.close()


def test_apply_then_read_back_equals_desired(vtepdb: VtepDb) -> None:
    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        empty = await drv.read()
        assert empty.owned == GatewayState() and empty.facts.ports == {"p1", "p2", "p48"}
        ops = diff(DESIRED, empty.owned)
        assert (await drv.apply(ops)).applied == len(ops)
        back = await drv.read()
        assert back.owned == DESIRED
        assert diff(DESIRED, back.owned) == []
        await drv.close()

    run(main)
    # The independent reader agrees.
    assert vtepdb.ctl("list-ls").split() == ["cust-42", "cust-43"]
    assert vtepdb.ctl("list-bindings", "ps1", "p1").split() == ["0100", "cust-42", "0101", "cust-43"]
    assert "unknown-dst -> vxlan_over_ipv4/198.18.0.2" in vtepdb.ctl("list-remote-macs", "cust-42")
    assert "02:00:00:00:00:0b -> vxlan_over_ipv4/198.18.0.2" in vtepdb.ctl("list-remote-macs", "cust-42")
    assert vtepdb.ctl("get", "Logical_Switch", "cust-42", "tunnel_key", "replication_mode").split() == [
        "5000", "source_node"]


def test_flood_change_reuses_locators_and_removal_leaves_nothing(vtepdb: VtepDb) -> None:
    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        await drv.apply(diff(DESIRED, GatewayState()))
        changed = GatewayState(
            {5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.3", "198.18.0.4"})),
             5001: DESIRED.logical_switches[5001]}, DESIRED.bindings, {})
        await drv.apply(diff(changed, (await drv.read()).owned))
        assert (await drv.read()).owned == changed
        locs = vtepdb.ctl("--columns=dst_ip", "list", "Physical_Locator").split()
        assert sorted(locs[2::3]) == ['"198.18.0.2"', '"198.18.0.3"', '"198.18.0.4"']  # unique by dst_ip
        await drv.apply(diff(GatewayState(), (await drv.read()).owned))
        assert (await drv.read()).owned == GatewayState()
        await drv.close()

    run(main)
    assert vtepdb.ctl("list-ls").strip() == ""
    assert vtepdb.ctl("list-bindings", "ps1", "p1").strip() == ""
    assert vtepdb.ctl("list", "Mcast_Macs_Remote").strip() == ""


def test_foreign_state_is_reported_and_never_touched(vtepdb: VtepDb) -> None:
    vtepdb.ctl("add-ls", "theirs", "--", "set", "Logical_Switch", "theirs", "tunnel_key=7000")
    vtepdb.ctl("bind-ls", "ps1", "p2", "200", "theirs")

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        actual = await drv.read()
        assert actual.owned == GatewayState()
        assert actual.facts.foreign_bindings == {("p2", 200): "theirs"}
        assert actual.facts.foreign_vnis == {7000: "theirs"}
        # Our own changes on the same port leave their binding alone, removal included.
        mine = GatewayState({5000: LogicalSwitch(5000, "cust-42")}, {("p2", 201): 5000})
        await drv.apply(diff(mine, actual.owned))
        await drv.apply(diff(GatewayState(), (await drv.read()).owned))
        await drv.close()

    run(main)
    assert vtepdb.ctl("list-ls").split() == ["theirs"]
    assert vtepdb.ctl("list-bindings", "ps1", "p2").split() == ["0200", "theirs"]


def test_unreachable_then_reconnects_and_sees_state(vtepdb: VtepDb) -> None:
    changes: list[int] = []

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: changes.append(1))
        await drv.start()
        await wait_connected(drv)
        await drv.apply(diff(DESIRED, GatewayState()))
        vtepdb.stop()
        deadline = time.monotonic() + 10
        while drv.health().connected:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        with pytest.raises(DeviceError, match="ps1"):
            await drv.read()
        before = len(changes)
        vtepdb.start(fresh=False)
        await wait_connected(drv, timeout=15)
        assert len(changes) > before  # the reconnect woke the owner
        assert (await drv.read()).owned == DESIRED
        await drv.close()

    run(main)


def test_nothing_listening_is_a_clear_device_error() -> None:
    async def main() -> None:
        drv = registry("ovsdb")(gateway(f"tcp:127.0.0.1:{free_port()}"), lambda: None)
        await drv.start()
        await asyncio.sleep(0.3)
        assert not drv.health().connected and "connect" in drv.health().detail
        with pytest.raises(DeviceError, match="gateway 'ps1'"):
            await drv.read()
        await drv.close()

    run(main)


def test_ops_model_matches_device(vtepdb: VtepDb) -> None:
    """Every op sequence the diff produces does on the device what apply_ops says it does."""
    states = [
        DESIRED,
        GatewayState({5001: LogicalSwitch(5001, "renamed", frozenset())}, {("p1", 100): 5001, ("p2", 7): 5001}),
        GatewayState(),
        DESIRED,
    ]

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        for want in states:
            have = (await drv.read()).owned
            ops = diff(want, have)
            await drv.apply(ops)
            assert (await drv.read()).owned == apply_ops(have, ops) == want
        await drv.close()

    run(main)


def test_ssl_remote_with_a_client_certificate(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from silonet.devices import pki
    from tests.functional.conftest import MISSING

    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING})")
    monkeypatch.setenv("SILONET_SECRETS_DIR", str(tmp_path))  # the client's directory is a credentials reference
    pki.make_ca(tmp_path / "ca")
    pki.issue(tmp_path / "ca", tmp_path / "server", "gateway")
    pki.issue(tmp_path / "ca", tmp_path / "client", "silonet")
    db = VtepDb(tmp_path / "gw", ssl_dir=tmp_path / "server").start()
    try:
        async def main() -> None:
            gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", db.remote, credentials=str(tmp_path / "client")),
                         4096, (Port("p1"),))
            assert db.remote.startswith("ssl:")
            await write_desired_and_read_back(gw)

        run(main)
        assert db.ctl("list-ls").split() == ["cust-42", "cust-43"]
    finally:
        db.stop()


def test_locator_sets_are_shared_only_between_equal_flood_lists(vtepdb: VtepDb) -> None:
    """Flood lists are immutable Physical_Locator_Set rows, one per distinct list: a subset,
    a superset and an equal list each get the right set (vtep-ctl checks the device)."""
    a, b, c = "198.18.0.2", "198.18.0.3", "198.18.0.4"
    floods = {6000: {a}, 6001: {a, b, c}, 6002: {a, b}, 6003: {a, b, c}}
    want = GatewayState({v: LogicalSwitch(v, f"n{v}", frozenset(f)) for v, f in floods.items()}, {}, {})

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        for vni in sorted(floods):  # one at a time: each later list finds the earlier sets
            step = GatewayState({v: ls for v, ls in want.logical_switches.items() if v <= vni}, {}, {})
            await drv.apply(diff(step, (await drv.read()).owned))
        assert (await drv.read()).owned == want
        await drv.close()

    run(main)
    for vni, flood in floods.items():
        shown = vtepdb.ctl("list-remote-macs", f"n{vni}")
        assert sorted(ip for ip in (a, b, c) if f"vxlan_over_ipv4/{ip}" in shown) == sorted(flood), shown
    assert len(vtepdb.ctl("--columns=_uuid", "list", "Physical_Locator_Set").split()) // 3 == 3


def test_refuses_a_device_that_is_another_gateway(vtepdb: VtepDb) -> None:
    """A gateway whose address leads to another gateway's device (a typo, a port reused) must
    not manage it: two managers of one device would undo each other's rows forever."""
    other = Gateway("gw-other", "198.18.0.9", Management("ovsdb", vtepdb.remote), 4096, (Port("p1"),))

    async def main() -> None:
        drv = registry("ovsdb")(other, lambda: None)
        await drv.start()
        await wait_connected(drv)
        with pytest.raises(DeviceError, match=re.escape("is Physical_Switch 'ps1' with tunnel IPs 198.18.0.1")):
            await drv.read()
        await drv.close()

    run(main)


def test_a_pair_member_is_recognised_by_name_not_by_its_shared_tunnel_address(vtepdb: VtepDb) -> None:
    """Both members of a pair tunnel from the anycast address, so the address cannot tell them
    apart: a member reaching its partner's device (Physical_Switch 'ps1', tunnel IP 198.18.0.1, the
    anycast address here) refuses it, and the member whose name the switch has reads it."""
    member = Gateway("gw-pb", "198.18.0.1", Management("ovsdb", vtepdb.remote), 4096, (Port("p1"),), pair="pp")
    named = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), 4096, (Port("p1"),), pair="pp")

    async def main() -> None:
        drv = registry("ovsdb")(member, lambda: None)
        await drv.start()
        await wait_connected(drv)
        with pytest.raises(DeviceError, match=re.escape("a member of pair 'pp' is recognised by name")):
            await drv.read()
        await drv.close()
        drv = registry("ovsdb")(named, lambda: None)
        await drv.start()
        await wait_connected(drv)
        assert (await drv.read()).vtep_ip == "198.18.0.1"
        await drv.close()

    run(main)


def test_a_vlan_another_writer_binds_meanwhile_is_never_overwritten(vtepdb: VtepDb) -> None:
    """The driver plans on its replica; a writer that binds the same VLAN between that read
    and silonet's commit keeps its binding, and the driver asks to plan again."""
    import threading

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        await drv.apply([EnsureLogicalSwitch(5000, "cust-42")])
        release = threading.Event()
        drv._link.submit(lambda idl: release.wait(10))  # the replica stops moving here
        vtepdb.ctl("add-ls", "theirs", "--", "bind-ls", "ps1", "p1", "100", "theirs")
        pending = asyncio.ensure_future(drv.apply([Bind("p1", 100, 5000), Bind("p1", 101, 5000)]))
        await asyncio.sleep(0.2)
        release.set()
        assert (await pending).retry
        after = await drv.read()
        assert after.facts.foreign_bindings == {("p1", 100): "theirs"}
        assert after.owned.bindings == {("p1", 101): 5000}  # the free VLAN was bound in the same pass
        await drv.close()

    run(main)
    assert vtepdb.ctl("list-bindings", "ps1", "p1").split() == ["0100", "theirs", "0101", "cust-42"]


async def applied(remote: str, want: GatewayState):  # type: ignore[no-untyped-def]
    """A started driver that wrote ``want`` on an empty device and read it back."""
    drv = registry("ovsdb")(gateway(remote), lambda: None)
    await drv.start()
    await wait_connected(drv)
    await drv.apply(diff(want, (await drv.read()).owned))
    assert (await drv.read()).owned == want
    return drv


# two flood lists over three peers and a remote MAC: new locators both as raw inserts and as IDL rows
MIXED = GatewayState({6000: LogicalSwitch(6000, "n0", frozenset({"198.18.0.2", "198.18.0.3"})),
                      6001: LogicalSwitch(6001, "n1", frozenset({"198.18.0.2", "198.18.0.3", "198.18.0.4"}))},
                     {("p1", 100): 6000}, {(6001, "02:00:00:00:00:0c"): "198.18.0.4"})


def test_new_locators_only_flood_lists_name_are_raw_inserts_one_per_address(vtepdb: VtepDb, monkeypatch
                                                                             ) -> None:  # type: ignore[no-untyped-def]
    """A first write: the locators that only locator sets refer to are raw inserts (no IDL row and
    columns set through the library, a tenth of a converge's CPU); the one a remote MAC points at is
    a row, and each address still gets one locator (vtep-ctl checks the device)."""
    from silonet.drivers.ovsdb import handlers

    rows: list[str] = []
    real = handlers.Write.locator

    def counting(self, ip):  # type: ignore[no-untyped-def]
        rows.append(ip)
        return real(self, ip)

    monkeypatch.setattr(handlers.Write, "locator", counting)
    a, b, c = "198.18.0.2", "198.18.0.3", "198.18.0.4"
    want = MIXED

    async def main() -> None:
        await (await applied(vtepdb.remote, want)).close()

    run(main)
    assert set(rows) == {c}  # the MAC's; a and b went in as raw inserts
    locs = vtepdb.ctl("--columns=dst_ip", "list", "Physical_Locator").split()
    assert sorted(locs[2::3]) == [f'"{ip}"' for ip in (a, b, c)]  # one per address
    assert f"02:00:00:00:00:0c -> vxlan_over_ipv4/{c}" in vtepdb.ctl("list-remote-macs", "n1")


def test_own_locators_and_sets_come_from_the_reply_not_the_monitor(  # type: ignore[no-untyped-def]
        vtepdb: VtepDb, monkeypatch) -> None:
    """The monitor sends no inserts of locators and locator sets (the echo of a gateway's own flood
    lists was a fifth of the manager's CPU in a 1,000-gateway converge): the rows a write inserted, raw or
    as IDL rows, enter the replica from the transaction's reply under the UUIDs the device gave them
    (vtep-ctl checks), and a replica made afresh reads the same. A flood list another writer adds is
    fetched by its UUID before any reading fails for it."""
    from silonet.drivers.ovsdb.replica import MemoIdl

    inserted: list[str] = []
    real = MemoIdl._Idl__process_update2  # type: ignore[attr-defined]

    def spying(self, table, row_uuid, row_update):  # type: ignore[no-untyped-def]
        if "insert" in row_update:
            inserted.append(table.name)
        return real(self, table, row_uuid, row_update)

    monkeypatch.setattr(MemoIdl, "_Idl__process_update2", spying)
    want = MIXED
    held: dict[str, set[str]] = {}

    async def main() -> None:
        drv = await applied(vtepdb.remote, want)
        idl = drv._link.idl
        held.update({t: {str(u) for u in idl.tables[t].rows} for t in ("Physical_Locator", "Physical_Locator_Set")})
        vtepdb.ctl("add-ls", "theirs", "--", "add-mcast-remote", "theirs", "unknown-dst", "198.18.0.9")
        deadline, seen = time.monotonic() + 30, None
        while time.monotonic() < deadline:  # no read fails meanwhile: the link fetches them before
            seen = await drv.read()
            if {"198.18.0.9"} in [m[2] for m in drv._link.idl.views["Mcast_Macs_Remote"].values()]:
                break
            await asyncio.sleep(0.05)
        assert seen is not None and seen.owned == want and "theirs" in seen.facts.foreign_names, seen
        assert {"198.18.0.9"} in [m[2] for m in drv._link.idl.views["Mcast_Macs_Remote"].values()]
        await drv.close()
        fresh = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await fresh.start()
        await wait_connected(fresh)
        assert (await fresh.read()).owned == want
        await fresh.close()

    run(main)
    assert "Physical_Locator" not in inserted and "Physical_Locator_Set" not in inserted
    assert {"Logical_Switch", "Mcast_Macs_Remote", "Ucast_Macs_Remote"} <= set(inserted)  # the monitor's
    for table in ("Physical_Locator", "Physical_Locator_Set"):
        listed = vtepdb.ctl("--columns=_uuid", "list", table).split()[2::3]
        assert len(listed) == (3 if table == "Physical_Locator" else 2) + 1  # theirs: one more
        assert held[table] < set(listed), table  # silonet's, by the device's own UUIDs


def test_a_write_is_let_go_by_reference_counts_alone(vtepdb: VtepDb) -> None:
    """A write's transaction calls back into the write (``on_success``) and the write holds the
    transaction: left as a cycle, each converge write (its operations, a reply of a thousand UUIDs)
    waited for the cyclic collector, and a 1,000-gateway converge held 1,033 MiB instead of ~940."""
    import gc

    from silonet.drivers.ovsdb import handlers

    want = GatewayState({6000: LogicalSwitch(6000, "n0", frozenset({"198.18.0.2", "198.18.0.3"}))},
                        {("p1", 100): 6000}, {})

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        gc.collect()
        gc.disable()
        try:
            await drv.apply(diff(want, (await drv.read()).owned))
            assert (await drv.read()).owned == want
            left = [o for o in gc.get_objects() if type(o) is handlers.Write]
        finally:
            gc.enable()
        assert left == []
        await drv.close()

    run(main)


def test_a_links_turn_reads_with_the_collector_paused(vtepdb: VtepDb, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each turn of the IDL (receiving and parsing updates) runs with the cyclic collector off, so
    no collection walks a message's parsed JSON; it is on again after, as it was."""
    import gc

    from silonet.drivers.ovsdb.replica import MemoIdl

    seen: list[bool] = []
    library_run = MemoIdl.run

    def run_seen(self: MemoIdl) -> bool:
        seen.append(gc.isenabled())
        return library_run(self)

    monkeypatch.setattr(MemoIdl, "run", run_seen)
    assert gc.isenabled()

    run(lambda: write_desired_and_read_back(gateway(vtepdb.remote)))
    assert seen and not any(seen)
    assert gc.isenabled()


def test_what_a_links_turn_left_is_frozen_and_a_closed_replica_asks_for_a_reclaim(
        vtepdb: VtepDb, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows a turn read are frozen with the rest of what it left (``heap.freeze_young``): in no
    generation the collector walks. Closing the replica tells ``heap.reclaim`` a frozen cycle waits."""
    import gc

    from silonet import heap
    from silonet.drivers.ovsdb.replica import MemoIdl
    from silonet.drivers.ovsdb.rows import LeanRow

    # every turn freezes (at the default, a turn whose other threads freed more than it made froze
    # nothing: the next one does), and the rows are looked at in a job: between two turns, never in one
    monkeypatch.setattr(heap, "FREEZE_YOUNG", 0)
    monkeypatch.setattr(heap, "_frozen", heap._Frozen())
    walked: list[object] = []

    def look(idl: MemoIdl) -> None:
        assert isinstance(idl, MemoIdl)
        rows = [r for t in idl.tables.values() for r in t.rows.values()]
        assert len(rows) >= 4 and all(isinstance(r, LeanRow) and gc.is_tracked(r) for r in rows)
        tracked = {id(o) for o in gc.get_objects()}
        walked.extend(r for r in rows if id(r) in tracked)

    async def main() -> None:
        drv = registry("ovsdb")(gateway(vtepdb.remote), lambda: None)
        await drv.start()
        await wait_connected(drv)
        await drv.apply(diff(DESIRED, GatewayState()))
        assert (await drv.read()).owned == DESIRED
        await drv._call(look)  # type: ignore[attr-defined]
        assert not heap._frozen.closed
        await drv.close()

    try:
        run(main)
        assert walked == []  # every row frozen
        assert heap._frozen.closed and heap._frozen.objects > 0
    finally:
        gc.unfreeze()
