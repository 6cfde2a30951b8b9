"""Property tests of the pure compiler and diff (hypothesis)."""

from __future__ import annotations

import contextlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.errors import Conflict
from silonet.model import Attachment, Gateway, InterfaceGroup, Inventory, Management, Port, PortRef, VirtualNetwork
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, compile_intent, diff

VLANS = st.sampled_from([0, 1, 100, 2100, 4094])


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    """Random but valid intent: rejected changes are skipped, like a manager would."""
    inv = Inventory()
    n_gw = draw(st.integers(1, 5))
    for g in range(n_gw):
        ports = [Port(f"p{i}") for i in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):
            ports.append(Port("sb", switchback=True))
        inv.put_gateway(Gateway(f"gw{g}", f"198.18.0.{g + 1}", Management("ovsdb", "tcp:198.18.1.1:6640"),
                                capacity=draw(st.integers(1, 12)), ports=tuple(ports)))
    all_ports = [PortRef(gw.name, p.name) for gw in inv.gateways.values() for p in gw.ports if not p.switchback]
    draw(st.randoms(use_true_random=False)).shuffle(all_ports)
    for k in range(draw(st.integers(1, 4))):
        members = tuple(all_ports[k::4])
        sbs = tuple(PortRef(gw, "sb") for gw in sorted({m.gateway for m in members})
                    if inv.gateways[gw].port("sb") and draw(st.booleans()))
        if members or sbs:
            with contextlib.suppress(Conflict):
                inv.put_group(InterfaceGroup(f"g{k}", members=members, switchback=sbs))
    for n in range(draw(st.integers(1, 4))):
        inv.put_network(VirtualNetwork(f"n{n}", "t", 5000 + n))
    groups, nets = sorted(inv.groups), sorted(inv.networks)
    for _ in range(draw(st.integers(0, 20))):
        if not groups:
            break
        att = Attachment(draw(st.sampled_from(groups)), draw(VLANS), draw(st.sampled_from(nets)))
        with contextlib.suppress(Conflict):
            inv.attach(att)
    return inv


@st.composite
def states(draw: st.DrawFn) -> GatewayState:
    """An arbitrary actual state of one gateway (stale, partial, anything)."""
    vnis = draw(st.sets(st.integers(5000, 5005), max_size=4))
    ips = st.frozensets(st.sampled_from(["198.18.0.1", "198.18.0.2", "198.18.0.9"]), max_size=3)
    switches = {v: LogicalSwitch(v, draw(st.sampled_from(["n0", "n1", "old"])), draw(ips)) for v in vnis}
    bindings = {}
    if vnis:
        for _ in range(draw(st.integers(0, 6))):
            port = draw(st.sampled_from(["p0", "p1", "sb", "x"]))
            bindings[(port, draw(VLANS))] = draw(st.sampled_from(sorted(vnis)))
    macs = {}
    if vnis:
        for _ in range(draw(st.integers(0, 3))):
            mac = draw(st.sampled_from(["02:00:00:00:00:01", "02:00:00:00:00:02"]))
            macs[(draw(st.sampled_from(sorted(vnis))), mac)] = draw(st.sampled_from(["198.18.0.1", "198.18.0.2"]))
    return GatewayState(switches, bindings, macs)


@st.composite
def learned(draw: st.DrawFn) -> dict[str, dict[int, frozenset[str]]]:
    macs = st.frozensets(st.sampled_from(["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]))
    return {f"gw{g}": {5000 + n: draw(macs) for n in range(4)} for g in range(5)}


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(inventories())
def test_no_port_vlan_bound_twice_and_capacity_holds(inv: Inventory) -> None:
    desired = compile_intent(inv)
    for gw, state in desired.items():
        # Every entry the model accounts for is a distinct (port, VLAN): none collapsed.
        assert state.entries == inv.usage(gw)
        assert state.entries <= inv.gateways[gw].capacity


@FAST
@given(inventories())
def test_flood_lists_complete_and_never_self(inv: Inventory) -> None:
    desired = compile_intent(inv)
    carriers: dict[int, set[str]] = {}
    for gw, state in desired.items():
        for vni in state.logical_switches:
            carriers.setdefault(vni, set()).add(gw)
    for gw, state in desired.items():
        own = inv.gateways[gw].vtep_ip
        for vni, ls in state.logical_switches.items():
            assert own not in ls.flood
            assert ls.flood == {inv.gateways[o].vtep_ip for o in carriers[vni] if o != gw}
        assert set(state.bindings.values()) == set(state.logical_switches)


@FAST
@given(inventories())
def test_switchback_takes_all_bindings_of_its_group(inv: Inventory) -> None:
    desired = compile_intent(inv)
    for group in inv.groups.values():
        for sb in group.switchback:
            member_ports = {m.port for m in group.members if m.gateway == sb.gateway}
            for vlan in inv.vlans_of(group.name):
                assert (sb.port, vlan) in desired[sb.gateway].bindings
                assert not any((p, vlan) in desired[sb.gateway].bindings for p in member_ports)


@FAST
@given(inventories(), learned())
def test_remote_macs_come_from_peers_only(inv: Inventory, seen: dict) -> None:
    desired = compile_intent(inv, seen)
    owner = {gw.vtep_ip: name for name, gw in inv.gateways.items()}
    for state in desired.values():
        for (vni, mac), ip in state.remote_macs.items():
            assert ip in state.logical_switches[vni].flood  # a peer that carries the VNI, never self
            assert mac in seen[owner[ip]][vni]


@FAST
@given(inventories(), states(), learned())
def test_applying_the_diff_yields_desired(inv: Inventory, actual: GatewayState, seen: dict) -> None:
    for desired in compile_intent(inv, seen).values():
        ops = diff(desired, actual)
        assert apply_ops(actual, ops) == desired  # apply_ops also checks the order
        assert diff(desired, desired) == []
        assert diff(desired, apply_ops(actual, ops)) == []


@FAST
@given(inventories(), st.randoms(use_true_random=False))
def test_compile_is_deterministic_and_order_free(inv: Inventory, rnd: random.Random) -> None:
    again = Inventory()
    for silo in inv.silos.values():
        again.put_silo(silo)
    for gw in inv.gateways.values():
        again.put_gateway(gw)
    for grp in rnd.sample(list(inv.groups.values()), len(inv.groups)):
        again.put_group(grp)
    for net in rnd.sample(list(inv.networks.values()), len(inv.networks)):
        again.put_network(net)
    for att in rnd.sample(list(inv.attachments.values()), len(inv.attachments)):
        again.attach(att)
    assert compile_intent(again) == compile_intent(inv)
    assert [diff(s, GatewayState()) for s in compile_intent(inv).values()] == [
        diff(s, GatewayState()) for s in compile_intent(again).values()
    ]


@FAST
@given(inventories(), st.sampled_from([0, 7, 100]), st.integers(0, 3))
def test_rejected_attach_changes_nothing(inv: Inventory, vlan: int, gi: int) -> None:
    if not inv.groups:
        return
    group = sorted(inv.groups)[gi % len(inv.groups)]
    before = compile_intent(inv), dict(inv.attachments)
    try:
        inv.attach(Attachment(group, vlan, "n0"))
    except Conflict:
        assert (compile_intent(inv), dict(inv.attachments)) == before
