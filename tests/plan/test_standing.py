"""Passes that look only where the intent and the device changed (``Standing``) must leave a
gateway exactly where full passes would: the same device state, the same failures, through
valid operation orders (``apply_ops`` refuses a binding before its switch, a switch removed
while bound), whatever mix of intent changes and out-of-band device changes comes between."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.errors import SilonetError
from silonet.model import Attachment, Inventory, VirtualNetwork
from silonet.plan import Compiler, GatewayState, LogicalSwitch, apply_ops, compile_gateway, diff
from silonet.plan.ownership import DeviceFacts, restrict
from silonet.plan.standing import Standing, scope
from silonet.plan.state import Changes
from tests.plan.test_compile_reference import histories


def refuse_some(state: GatewayState) -> dict[tuple[str, int], str]:
    """A platform's check, one binding at a time (VLAN 3) and one network at a time (``n1``: its
    switch goes with its last binding)."""
    names = {vni: ls.network for vni, ls in state.logical_switches.items()}
    return {(port, vlan): "VLAN 3 is not for us" if vlan == 3 else "n1 is not for us"
            for (port, vlan), vni in state.bindings.items() if vlan == 3 or names.get(vni) == "n1"}


FACTS = [
    DeviceFacts(),
    DeviceFacts(foreign_vnis={901: "theirs"}, foreign_names=frozenset({"n2"})),
    DeviceFacts(foreign_bindings={("p1", 3): "theirs", ("sb", 2): "theirs"}, flood_lists=False),
    DeviceFacts(bare_vnis=False, remote_macs=False),
    DeviceFacts(refuse=refuse_some),
    DeviceFacts(bare_vnis=False, foreign_bindings={("p1", 2): "theirs"}, refuse=refuse_some),
]


def changes(a: GatewayState, b: GatewayState) -> Changes:
    """What a device reader reports between two states (key by key, as Interpretation does)."""
    vnis = {v for v in a.logical_switches.keys() | b.logical_switches.keys()
            if a.logical_switches.get(v) != b.logical_switches.get(v)}
    vnis |= {k[0] for k in a.remote_macs.keys() | b.remote_macs.keys() if a.remote_macs.get(k) != b.remote_macs.get(k)}
    keys = {k for k in a.bindings.keys() | b.bindings.keys() if a.bindings.get(k) != b.bindings.get(k)}
    return Changes(frozenset(vnis), frozenset(keys))


def tamper(device: GatewayState, rnd) -> GatewayState:  # type: ignore[no-untyped-def]
    """An out-of-band change: somebody unbinds, rewires a flood list, or removes a switch."""
    switches, bindings = dict(device.logical_switches), dict(device.bindings)
    choice = rnd.randint(0, 3)
    if choice == 0 and bindings:
        bindings.pop(rnd.choice(sorted(bindings)))
    elif choice == 1 and switches:
        vni = rnd.choice(sorted(switches))
        switches[vni] = LogicalSwitch(vni, switches[vni].network, frozenset({"198.18.9.9"}))
    elif choice == 2 and switches:
        vni = rnd.choice(sorted(switches))
        bindings = {k: v for k, v in bindings.items() if v != vni}
        del switches[vni]
    elif choice == 3 and switches and bindings:
        key = rnd.choice(sorted(bindings))
        bindings[key] = rnd.choice(sorted(switches))  # bound to another of our switches
    return GatewayState(switches, bindings, {k: ip for k, ip in device.remote_macs.items() if k[0] in switches})


def change_intent(inv: Inventory, rnd) -> frozenset[int] | None:  # type: ignore[no-untyped-def]
    """An API write, and the VNIs it says it changed (as the manager tells the reconciler)."""
    with contextlib.suppress(SilonetError):
        op = rnd.choice(["attach", "attach", "detach", "renet"])
        if op == "attach" and inv.groups:
            network = rnd.choice(sorted(inv.networks))
            inv.attach(Attachment(rnd.choice(sorted(inv.groups)), rnd.randint(1, 6), network))
            return frozenset({inv.networks[network].vni})
        if op == "detach" and inv.attachments:
            att = rnd.choice(list(inv.attachments.values()))
            inv.detach(att.network, att.group, att.vlan)
            return frozenset({inv.networks[att.network].vni})
        if op == "renet":  # delete a network (cascade), make one again (no attachment: no bump)
            name = f"n{rnd.randint(0, 2)}"
            vni = inv.networks[name].vni if name in inv.networks else None
            if vni is not None:
                inv.remove_network(name, cascade=True)
            with contextlib.suppress(SilonetError):
                inv.put_network(VirtualNetwork(name, "t", 900 + rnd.randint(0, 5)))
            return frozenset({vni} if vni is not None else ())
    return frozenset()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(FACTS), st.randoms(use_true_random=False), st.integers(1, 12))
def test_passes_on_the_change_reach_what_full_passes_reach(history: tuple, facts: DeviceFacts, rnd,  # type: ignore[no-untyped-def]
                                                           steps: int) -> None:
    inv, _, _ = history
    for gw in sorted(inv.gateways)[:3]:
        device = GatewayState()
        standing: Standing | None = None
        for _ in range(steps):
            told: set[int] = set()
            before = device
            for _ in range(rnd.randint(0, 2)):
                vnis = change_intent(inv, rnd)
                told |= vnis if vnis is not None else set()
            if rnd.random() < 0.4:
                device = tamper(device, rnd)
            compiler = Compiler(inv, None, None)
            if standing is None:
                desired = compiler.gateway(gw)
                effective, failures = restrict(desired, facts)
                device = apply_ops(device, diff(effective, device))
                standing = Standing.build(desired, effective, failures, facts, 0, None)
            else:
                seen = changes(before, device)
                keys = standing.patch(told, compiler.gateway_part(gw, told))
                keys |= standing.keys_for(seen.vnis) | seen.bindings
                where = set(told) | seen.vnis
                device = apply_ops(device, diff(standing.scope(where, keys), scope(device, where, keys)))
            want, failures = restrict(compile_gateway(inv, gw), facts)
            assert device == want
            assert standing.failures == failures
            assert standing.effective() == want
