"""Redundant pairs in the compiler and the status rule: both members get the same state for what
they both carry, other gateways see the pair as one VTEP (its anycast address, listed once), a
member never floods to its own pair's address nor takes its partner's MACs as remote; an
attachment on a pair with one member down is degraded, failed only when no member is left."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.errors import Conflict
from silonet.model import Attachment, Gateway, InterfaceGroup, Inventory, Management, Port, PortRef, VirtualNetwork
from silonet.plan import compile_intent
from silonet.plan.status import Seen, summarize

ANYCAST = "198.18.0.100"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mgmt(i: int) -> Management:
    return Management("ovsdb", f"tcp:198.18.1.{i}:6640")


@st.composite
def fabrics(draw: st.DrawFn) -> tuple[Inventory, bool]:
    """A pair (a, b) and 1..3 other gateways; group ``dual`` on the same port of both members, maybe
    group ``lone`` on a's second port only; random attachments. Returns it and whether ``lone`` exists."""
    inv = Inventory()
    ports = tuple(Port(f"p{i}") for i in range(draw(st.integers(1, 2))))
    for i, name in enumerate(("a", "b")):
        inv.put_gateway(Gateway(name, ANYCAST, _mgmt(i + 1), capacity=draw(st.integers(3, 12)), ports=ports,
                                pair="pp"))
    others = [f"c{k}" for k in range(draw(st.integers(1, 3)))]
    for k, name in enumerate(others):
        inv.put_gateway(Gateway(name, f"198.18.0.{k + 1}", _mgmt(k + 10), ports=(Port("p0"),)))
        inv.put_group(InterfaceGroup(f"g{k}", members=(PortRef(name, "p0"),)))
    inv.put_group(InterfaceGroup("dual", members=(PortRef("a", "p0"), PortRef("b", "p0"))))
    lone = len(ports) > 1 and draw(st.booleans())
    if lone:
        inv.put_group(InterfaceGroup("lone", members=(PortRef("a", "p1"),)))
    for n in range(draw(st.integers(1, 4))):
        inv.put_network(VirtualNetwork(f"n{n}", "t", 5000 + n))
    groups, nets = sorted(inv.groups), sorted(inv.networks)
    for _ in range(draw(st.integers(1, 16))):
        att = Attachment(draw(st.sampled_from(groups)), draw(st.sampled_from([0, 100, 500, 4094])),
                         draw(st.sampled_from(nets)))
        with contextlib.suppress(Conflict):
            inv.attach(att)
    return inv, lone


def learned_on(inv: Inventory) -> dict[str, dict[int, frozenset[str]]]:
    """Each gateway learned one MAC of its own per VNI it carries (both members: the same MAC)."""
    out: dict[str, dict[int, frozenset[str]]] = {}
    for name in inv.gateways:
        vnis = {inv.networks[n].vni for g in inv.groups_on(name) for n in inv.vlans_of(g).values()}
        tag = "aa" if name in ("a", "b") else f"c{name[1:]}"
        out[name] = {vni: frozenset({f"02:{tag}:00:00:{vni % 256:02x}:01"}) for vni in vnis}
    return out


@FAST
@given(fabrics())
def test_members_get_one_state_and_peers_see_one_vtep(fabric: tuple[Inventory, bool]) -> None:
    inv, lone = fabric
    learned = learned_on(inv)
    desired = compile_intent(inv, learned)
    a, b = desired["a"], desired["b"]
    if not lone:
        assert a == b  # identical: bindings, switches, flood lists, remote MACs
    for vni in a.logical_switches.keys() & b.logical_switches.keys():
        assert a.logical_switches[vni] == b.logical_switches[vni]
    for name, state in desired.items():
        own = inv.gateways[name].vtep_ip
        for vni, ls in state.logical_switches.items():
            assert own not in ls.flood  # never its own (pair's) address
            carriers = {g for g, s in desired.items() if vni in s.logical_switches}
            assert ls.flood == {inv.gateways[g].vtep_ip for g in carriers} - {own}
        for (vni, mac), ip in state.remote_macs.items():
            assert ip != own
            behind = {g for g in desired if inv.gateways[g].vtep_ip == ip}
            assert any(mac in learned[g].get(vni, ()) for g in behind)
        if name not in ("a", "b"):  # what the pair learned is published at its anycast address
            for vni, macs in learned["a"].items():
                if vni in state.logical_switches:
                    assert all(state.remote_macs[(vni, m)] == ANYCAST for m in macs)


@FAST
@given(fabrics())
def test_capacity_holds_per_member(fabric: tuple[Inventory, bool]) -> None:
    inv, _ = fabric
    for name in ("a", "b"):
        assert inv.usage(name) <= inv.gateways[name].capacity
        assert len(compile_intent(inv)[name].bindings) == inv.usage(name)


# ------------------------------------------------------------------ the status rule with a pair
STATES = ("pending", "realized", "held", "failed")


def expected(states: dict[str, str], own: set[str], pairs: dict[str, str]) -> str:
    """README's table after the pair rule: a member down (failed or held) beside a partner on the same
    side that realized only degrades; beside a pending partner it waits (pending) with it."""
    side = {g: g in own for g in states}
    eff = dict(states)
    for g, partner in pairs.items():
        if states[g] in ("failed", "held") and side[g] == side[partner]:
            if states[partner] == "realized":
                eff[g] = "spared"
            elif states[partner] == "pending":
                eff[g] = "waits"
    mine = [eff[g] for g in states if side[g]]
    peers = [eff[g] for g in states if not side[g]]
    for s in ("failed", "held", "pending"):
        if s in mine:
            return s
    if "failed" in peers or "held" in peers:
        return "degraded"
    if "spared" in mine + peers:  # the pair forwards; peers still catching up are waited for
        return "pending" if "pending" in peers else "degraded"
    return "pending" if "pending" in peers else "realized"


@pytest.mark.parametrize("states", list(itertools.product(STATES, repeat=3)))
@pytest.mark.parametrize("own", [{"a", "b"}, {"a"}, {"a", "b", "c"}, {"c"}, {"a", "c"}])
def test_every_mix_of_member_states(states: tuple[str, ...], own: set[str]) -> None:
    by_name = dict(zip(("a", "b", "c"), states, strict=True))
    entries = [Seen(g, s, None if s == "realized" else f"why-{g}", "pp" if g in "ab" else None)  # type: ignore[arg-type]
               for g, s in by_name.items()]
    verdict = summarize(entries, own)
    assert verdict.status == expected(by_name, own, {"a": "b", "b": "a"}), (by_name, own, verdict)
    if verdict.status == "degraded":
        for g in verdict.gateways:
            assert repr(g) in (verdict.reason or "")
    tenant = summarize(entries, own, tenant=True)
    assert tenant.status == verdict.status
    assert "'a'" not in (tenant.reason or "") or verdict.status != "degraded"


def test_the_reason_names_the_partner_that_carries_the_traffic() -> None:
    entries = [Seen("a", "failed", "unreachable", "pp"), Seen("b", "realized", None, "pp"), Seen("c", "realized")]
    verdict = summarize(entries, {"a", "b"})
    assert verdict.status == "degraded" and verdict.gateways == ("a",)
    assert verdict.reason == ("forwards, but through one member of a redundant pair: gateway 'a': unreachable; "
                              "its pair partner 'b' carries the traffic")
    both = [Seen("a", "failed", "unreachable", "pp"), Seen("b", "failed", "unreachable", "pp")]
    assert summarize(both, {"a", "b"}).status == "failed"  # no member of the pair is left
