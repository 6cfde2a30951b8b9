"""Intent -> desired state per gateway. Pure and deterministic."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set

from silonet.model.inventory import Inventory
from silonet.plan.state import GatewayState, LogicalSwitch


def vni_carriers(inv: Inventory) -> dict[int, set[str]]:
    """Gateways that carry each VNI: computed once, shared by every gateway's compile."""
    carriers: dict[int, set[str]] = defaultdict(set)
    for (group, _vlan), att in inv.attachments.items():
        carriers[inv.networks[att.network].vni] |= inv.groups[group].gateways
    return carriers


Learned = Mapping[str, Mapping[int, Set[str]]]
"""MACs each gateway learned locally, by gateway name and VNI (read from the devices)."""


def compile_gateway(
    inv: Inventory, gateway: str, carriers: dict[int, set[str]] | None = None, learned: Learned | None = None
) -> GatewayState:
    """Desired state of one gateway.

    Bindings go on the group's switch-back port where it has one on this gateway, else on
    every member port there. The flood list of a VNI holds the tunnel IPs of every *other*
    gateway that carries it, and every MAC those gateways learned on the VNI becomes a
    remote MAC here, so known destinations are unicast instead of flooded.
    """
    bindings: dict[tuple[str, int], int] = {}
    vnis: dict[int, str] = {}
    for group_name in sorted(inv.groups_on(gateway)):
        group = inv.groups[group_name]
        ports = group.bound_ports(gateway)
        for vlan, net_name in inv.vlans_of(group_name).items():
            vni = inv.networks[net_name].vni
            vnis[vni] = net_name
            for port in ports:
                bindings[(port, vlan)] = vni
    if carriers is None:
        carriers = {vni: inv.gateways_of_network(name) for vni, name in vnis.items()}
    switches = {}
    macs: dict[tuple[int, str], str] = {}
    for vni, name in sorted(vnis.items()):
        peers = sorted(gw for gw in carriers.get(vni, ()) if gw != gateway)
        switches[vni] = LogicalSwitch(vni, name, frozenset(inv.gateways[gw].vtep_ip for gw in peers))
        for peer in peers if learned else ():
            for mac in sorted(learned.get(peer, {}).get(vni, ())):  # type: ignore[union-attr]
                macs.setdefault((vni, mac), inv.gateways[peer].vtep_ip)
    return GatewayState(switches, dict(sorted(bindings.items())), dict(sorted(macs.items())))


def compile_intent(inv: Inventory, learned: Learned | None = None) -> dict[str, GatewayState]:
    """Desired state of every gateway, by gateway name (gateways with nothing get empty state)."""
    carriers = vni_carriers(inv)
    return {gw: compile_gateway(inv, gw, carriers, learned) for gw in sorted(inv.gateways)}
