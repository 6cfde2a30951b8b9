"""Intent -> desired state per gateway. Pure and deterministic."""

from __future__ import annotations

from collections import defaultdict

from silonet.model.inventory import Inventory
from silonet.plan.state import GatewayState, LogicalSwitch


def _vni_gateways(inv: Inventory) -> dict[int, set[str]]:
    carriers: dict[int, set[str]] = defaultdict(set)
    for (group, _vlan), att in inv.attachments.items():
        carriers[inv.networks[att.network].vni] |= inv.groups[group].gateways
    return carriers


def compile_gateway(inv: Inventory, gateway: str, carriers: dict[int, set[str]] | None = None) -> GatewayState:
    """Desired state of one gateway.

    Bindings go on the group's switch-back port where it has one on this gateway, else on
    every member port there. The flood list of a VNI holds the tunnel IPs of every *other*
    gateway that carries it.
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
    for vni, name in sorted(vnis.items()):
        flood = frozenset(
            inv.gateways[gw].vtep_ip for gw in carriers.get(vni, ()) if gw != gateway
        )
        switches[vni] = LogicalSwitch(vni=vni, network=name, flood=flood)
    return GatewayState(logical_switches=switches, bindings=dict(sorted(bindings.items())))


def compile_intent(inv: Inventory) -> dict[str, GatewayState]:
    """Desired state of every gateway, by gateway name (gateways with nothing get empty state)."""
    carriers = _vni_gateways(inv)
    return {gw: compile_gateway(inv, gw, carriers) for gw in sorted(inv.gateways)}
