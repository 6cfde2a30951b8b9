"""The optimized compiler (shared per-group work, interned flood lists, the inventory's
carrier index) gives exactly what the straightforward compiler gives, dict order included.

The reference below is the compiler as first written, reading only the inventory's public
tables (no index, no cache), so it also checks the indexes the model keeps for it.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet import heap
from silonet.errors import SilonetError
from silonet.model import Attachment, Gateway, InterfaceGroup, Inventory, Management, Port, PortRef, VirtualNetwork
from silonet.plan import Compiler, GatewayState, LogicalSwitch, compile_gateway, compile_intent, diff
from silonet.plan.compiler import vni_carriers
from silonet.plan.ops import (
    Bind,
    EnsureLogicalSwitch,
    Operation,
    RemoveLogicalSwitch,
    RemoveRemoteMac,
    SetFloodList,
    SetRemoteMac,
    Unbind,
)
from silonet.plan.state import new_logical_switch
from tests.support.inventory import fleet

MGMT = Management("ovsdb", "tcp:198.19.255.1:6640")
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]


# ----------------------------------------------------------------- the reference
def ref_gateways(group: InterfaceGroup) -> frozenset[str]:
    return frozenset(r.gateway for r in (*group.members, *group.switchback))


def ref_bound_ports(group: InterfaceGroup, gateway: str) -> tuple[str, ...]:
    sb = next((r for r in group.switchback if r.gateway == gateway), None)
    if sb is not None:
        return (sb.port,)
    return tuple(sorted(r.port for r in group.members if r.gateway == gateway))


def ref_gateways_of_network(inv: Inventory, network: str) -> set[str]:
    out: set[str] = set()
    for att in inv.attachments.values():
        if att.network == network:
            out |= ref_gateways(inv.groups[att.group])
    return out


def ref_vni_carriers(inv: Inventory) -> dict[int, set[str]]:
    carriers: dict[int, set[str]] = defaultdict(set)
    for (group, _vlan), att in inv.attachments.items():
        carriers[inv.networks[att.network].vni] |= ref_gateways(inv.groups[group])
    return carriers


def ref_compile_gateway(inv: Inventory, gateway: str, carriers: dict | None = None,
                        learned: dict | None = None) -> GatewayState:
    bindings: dict[tuple[str, int], int] = {}
    vnis: dict[int, str] = {}
    for group_name in sorted(g for g, grp in inv.groups.items() if gateway in ref_gateways(grp)):
        group = inv.groups[group_name]
        ports = ref_bound_ports(group, gateway)
        for (g, vlan), att in inv.attachments.items():
            if g != group_name:
                continue
            vni = inv.networks[att.network].vni
            vnis[vni] = att.network
            for port in ports:
                bindings[(port, vlan)] = vni
    if carriers is None:
        carriers = {vni: ref_gateways_of_network(inv, name) for vni, name in vnis.items()}
    switches = {}
    macs: dict[tuple[int, str], str] = {}
    for vni, name in sorted(vnis.items()):
        peers = sorted(gw for gw in carriers.get(vni, ()) if gw != gateway)
        switches[vni] = LogicalSwitch(vni, name, frozenset(inv.gateways[gw].vtep_ip for gw in peers))
        for peer in peers if learned else ():
            for mac in sorted(learned.get(peer, {}).get(vni, ())):  # type: ignore[union-attr]
                macs.setdefault((vni, mac), inv.gateways[peer].vtep_ip)
    return GatewayState(switches, dict(sorted(bindings.items())), dict(sorted(macs.items())))


def ref_diff(desired: GatewayState, actual: GatewayState) -> list[Operation]:
    ops: list[Operation] = []
    want, have = desired.logical_switches, actual.logical_switches
    for vni, ls in sorted(want.items()):
        cur = have.get(vni)
        if cur is None or cur.network != ls.network:
            ops.append(EnsureLogicalSwitch(vni, ls.network))
        if cur is None or cur.flood != ls.flood:
            ops.append(SetFloodList(vni, ls.flood))
    for (vni, mac), ip in sorted(desired.remote_macs.items()):
        if actual.remote_macs.get((vni, mac)) != ip:
            ops.append(SetRemoteMac(vni, mac, ip))
    for key, vni in sorted(desired.bindings.items()):
        if actual.bindings.get(key) != vni:
            ops.append(Bind(key[0], key[1], vni))
    for key in sorted(actual.bindings.keys() - desired.bindings.keys()):
        ops.append(Unbind(*key))
    for vni, mac in sorted(actual.remote_macs.keys() - desired.remote_macs.keys()):
        if vni in want:
            ops.append(RemoveRemoteMac(vni, mac))
    for vni in sorted(have.keys() - want.keys()):
        ops.append(RemoveLogicalSwitch(vni))
    return sorted(ops, key=lambda op: op.phase)


def assert_same(got: GatewayState, want: GatewayState) -> None:
    assert got == want
    assert list(got.logical_switches) == list(want.logical_switches)
    assert list(got.bindings) == list(want.bindings)
    assert list(got.remote_macs) == list(want.remote_macs)


# ------------------------------------------------------------ random inventories
@st.composite
def histories(draw: st.DrawFn) -> tuple[Inventory, dict[str, GatewayState], dict[int, set[str]]]:
    """A small synthetic fleet plus gateways shared by several groups (with and without a
    switch-back), then random attach/detach/regroup/remove: returns the inventory, every
    gateway's desired state and the carriers as they were before the random changes."""
    gws = draw(st.integers(1, 6))
    groups = draw(st.integers(1, gws))
    inv = fleet(gws, ports=draw(st.integers(2, 4)), groups=groups,
                          attachments=draw(st.integers(0, groups * 5)), networks_span=draw(st.integers(1, 3)))
    rnd = draw(st.randoms(use_true_random=False))
    extra = draw(st.integers(0, 3))
    for i in range(extra):
        ports = (*(Port(f"e{j}") for j in range(4)), Port("sb", switchback=True))
        inv.put_gateway(Gateway(f"x{i}", f"198.18.200.{i + 1}", MGMT, capacity=draw(st.integers(3, 40)), ports=ports))
    spare = [PortRef(f"x{i}", f"e{j}") for i in range(extra) for j in range(4)]
    switchbacks = [PortRef(f"x{i}", "sb") for i in range(extra)]

    def pick_group(name: str) -> InterfaceGroup | None:
        members = tuple(sorted(rnd.sample(spare, rnd.randint(0, min(4, len(spare))))))
        gateways = {m.gateway for m in members}
        sbs = tuple(r for r in switchbacks if r.gateway in gateways and rnd.random() < 0.4)
        return InterfaceGroup(name, members=members, switchback=sbs) if members else None

    for k in range(draw(st.integers(0, 3)) if extra else 0):
        group = pick_group(f"xg{k}")
        if group is not None:
            with contextlib.suppress(SilonetError):
                inv.put_group(group)
    for n in range(3):
        inv.put_network(VirtualNetwork(f"n{n}", "t", 900 + n))
    before = {gw: ref_compile_gateway(inv, gw) for gw in inv.gateways}
    carriers_before = ref_vni_carriers(inv)
    for _ in range(draw(st.integers(0, 30))):
        op = rnd.choice(["attach", "attach", "attach", "detach", "regroup", "ungroup", "unnet"])
        with contextlib.suppress(SilonetError):
            if op == "attach" and inv.groups:
                network = rnd.choice(sorted(inv.networks))
                inv.attach(Attachment(rnd.choice(sorted(inv.groups)), rnd.randint(1, 6), network))
            elif op == "detach" and inv.attachments:
                att = rnd.choice(list(inv.attachments.values()))
                inv.detach(att.network, att.group, att.vlan)
            elif op == "regroup":
                group = pick_group(f"xg{rnd.randint(0, 3)}")
                if group is not None:
                    inv.put_group(group)
            elif op == "ungroup" and inv.groups:
                inv.remove_group(rnd.choice(sorted(inv.groups)))
            elif op == "unnet":
                inv.remove_network(f"n{rnd.randint(0, 2)}", cascade=True)
                inv.put_network(VirtualNetwork(f"n{rnd.randint(0, 2)}", "t", 900 + rnd.randint(0, 5)))
    return inv, before, carriers_before


@st.composite
def learned(draw: st.DrawFn) -> dict[str, dict[int, frozenset[str]]]:
    """MACs learned on a few VNIs of the synthetic fleet and of the extra networks."""
    names = [f"gw-{i:04d}" for i in range(6)] + [f"x{i}" for i in range(3)]
    vnis = [10_000, 10_001, 10_002, 10_005, 900, 901, 902]
    out = {}
    for name in draw(st.sets(st.sampled_from(names))):
        out[name] = {v: draw(st.frozensets(st.sampled_from(MACS))) for v in draw(st.sets(st.sampled_from(vnis)))}
    return out


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(histories(), learned())
def test_compile_equals_reference(history: tuple, seen: dict) -> None:
    inv, _, stale = history
    carriers = vni_carriers(inv)
    assert carriers == ref_vni_carriers(inv)
    for net in inv.networks:
        assert inv.gateways_of_network(net) == ref_gateways_of_network(inv, net)
        assert inv.carriers_of(net) == ref_gateways_of_network(inv, net)
    full, full_seen = compile_intent(inv), compile_intent(inv, seen)
    assert list(full) == sorted(inv.gateways)
    for gw in inv.gateways:
        want = ref_compile_gateway(inv, gw)
        assert_same(full[gw], want)
        assert_same(compile_gateway(inv, gw), want)
        assert_same(compile_gateway(inv, gw, carriers), want)
        assert_same(full_seen[gw], ref_compile_gateway(inv, gw, learned=seen))
        assert_same(compile_gateway(inv, gw, carriers, seen), ref_compile_gateway(inv, gw, carriers, seen))
        # A reconciler's snapshot may hold carriers older than the inventory: they are used as given.
        assert_same(compile_gateway(inv, gw, stale, seen), ref_compile_gateway(inv, gw, stale, seen))


def part_of(state: GatewayState, vnis: set[int]) -> GatewayState:
    return GatewayState({v: ls for v, ls in state.logical_switches.items() if v in vnis},
                        {k: v for k, v in state.bindings.items() if v in vnis},
                        {k: ip for k, ip in state.remote_macs.items() if k[0] in vnis})


@FAST
@given(histories(), learned(), st.sets(st.sampled_from([10_000, 10_001, 10_002, 10_005, 900, 901, 902, 903, 905])))
def test_part_compile_is_the_part_of_the_full_compile(history: tuple, seen: dict, vnis: set[int]) -> None:
    """What the reconciler patches after a change of ``vnis`` is what a full compile says of them."""
    inv, _, stale = history
    for given_carriers in (None, stale):
        compiler = Compiler(inv, given_carriers, seen)
        for gw in inv.gateways:
            assert_same(compiler.gateway_part(gw, vnis), part_of(compiler.gateway(gw), vnis))


@FAST
@given(histories(), learned())
def test_diff_equals_reference(history: tuple, seen: dict) -> None:
    inv, before, _ = history
    for gw, desired in compile_intent(inv, seen).items():
        old = before.get(gw, GatewayState())
        assert diff(desired, old) == ref_diff(desired, old)
        assert diff(old, desired) == ref_diff(old, desired)
        assert diff(desired, GatewayState()) == ref_diff(desired, GatewayState())


# ------------------------------------------------------------------ the helpers
def test_bulk_logical_switch_is_a_logical_switch() -> None:
    flood = frozenset({"198.18.0.2", "198.18.0.3"})
    fast, plain = new_logical_switch(5000, "cust-42", flood), LogicalSwitch(5000, "cust-42", flood)
    assert type(fast) is LogicalSwitch
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert pickle.loads(pickle.dumps(fast)) == plain
    with pytest.raises(AttributeError):
        fast.vni = 1  # type: ignore[misc]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_paused_compile_leaves_the_collector_as_it_was(enabled: bool) -> None:
    """The pure compiler never touches the collector; ``heap.paused`` (its caller's policy) pauses
    it inside and, nested or not, puts it back as it found it."""
    inv = fleet(10, ports=48, attachments=50)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with heap.paused():
            assert not gc.isenabled()
            with heap.paused():
                compile_intent(inv)
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        compile_intent(inv)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_interned_carriers_survive_regrouping() -> None:
    """Re-putting a group with other gateways updates every network on it, and a group
    removed and made again never inherits the old gateways."""
    inv = fleet(4, ports=3, groups=2, attachments=4, networks_span=2)
    assert inv.gateways_of_network("net-0000-0000") == {"gw-0000", "gw-0001", "gw-0002", "gw-0003"}
    inv.put_gateway(Gateway("x0", "198.18.200.1", MGMT, ports=(Port("e0"),)))
    inv.put_group(InterfaceGroup("ig-0001", members=(*inv.groups["ig-0001"].members, PortRef("x0", "e0")),
                                 switchback=inv.groups["ig-0001"].switchback))
    assert inv.gateways_of_network("net-0000-0000") == {"gw-0000", "gw-0001", "gw-0002", "gw-0003", "x0"}
    for att in list(inv.attachments.values()):
        inv.detach(att.network, att.group, att.vlan)
    assert inv.gateways_of_network("net-0000-0000") == set()
    inv.remove_group("ig-0001")
    inv.put_group(InterfaceGroup("ig-0001", members=(PortRef("x0", "e0"),)))
    inv.attach(Attachment("ig-0000", 1, "net-0000-0000"))
    inv.attach(Attachment("ig-0001", 1, "net-0000-0000"))
    assert inv.gateways_of_network("net-0000-0000") == {"gw-0000", "gw-0001", "x0"}
    assert {gw: compile_gateway(inv, gw) for gw in inv.gateways} == {
        gw: ref_compile_gateway(inv, gw) for gw in inv.gateways
    }


def test_big_random_fleet_equals_reference() -> None:
    """One larger case: 60 gateways, multi-group networks, learned MACs on every gateway."""
    inv = fleet(60, ports=48, groups=6, attachments=600, networks_span=3)
    rnd = random.Random(7)
    seen = {gw: {10_000 + rnd.randrange(400): frozenset(rnd.sample(MACS, 2))} for gw in inv.gateways}
    full = compile_intent(inv, seen)
    for gw in inv.gateways:
        assert_same(full[gw], ref_compile_gateway(inv, gw, learned=seen))


def test_equal_flood_lists_are_one_object_across_compiles_and_gateways() -> None:
    """Flood lists are interned (``plan.intern``): a gateway compiled twice, and a driver reading the
    same list through ``shared_set``, hold one set (desired and read were two copies each)."""
    from silonet.plan.intern import shared_set

    inv = fleet(6, ports=3, groups=3, attachments=6, networks_span=3)
    first, again = compile_gateway(inv, "gw-0000"), compile_gateway(inv, "gw-0000")
    assert first.logical_switches and first == again
    for vni, ls in first.logical_switches.items():
        assert ls.flood is again.logical_switches[vni].flood
        assert shared_set(sorted(ls.flood)) is ls.flood  # as the OVSDB driver reads it
