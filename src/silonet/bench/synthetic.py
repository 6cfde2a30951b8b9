"""A synthetic fleet built straight into the pure model, for control-plane benchmarks.

The shape follows the design brief at data-center scale: every gateway has 47 member ports
and one switch-back port, an interface group spans 10 gateways (one VLAN domain, one entry
per VLAN per gateway thanks to the switch-back), and each virtual network joins
``networks_span`` groups, as a tenant network stretched over a few silos would. Everything
goes through ``Inventory``'s own checks, so the fleet is valid by construction, and the
layout is a pure function of the arguments (no randomness), so runs compare.
"""

from __future__ import annotations

import ipaddress

from silonet.model import (
    Attachment,
    Gateway,
    InterfaceGroup,
    Inventory,
    Management,
    Port,
    PortRef,
    VirtualNetwork,
    rules,
)

GATEWAYS_PER_GROUP = 10
VLANS_PER_GROUP = 2000
CAPACITY = 8192
FIRST_VNI = 10_000
VTEP_NET = ipaddress.IPv4Network("198.18.0.0/16")  # tunnel addresses; with MGMT_NET, 198.18.0.0/15
MGMT_NET = ipaddress.IPv4Network("198.19.0.0/16")  # management addresses
MAX_GATEWAYS = VTEP_NET.num_addresses - 2
MAX_VLANS_PER_GROUP = 4094  # VLAN 1..4094 (0, untagged, is left out)


def _address(net: ipaddress.IPv4Network, index: int) -> str:
    return str(net.network_address + 1 + index)


def gateway_name(index: int) -> str:
    return f"gw-{index:04d}"


def group_name(index: int) -> str:
    return f"ig-{index:04d}"


def _split(total: int, parts: int, index: int) -> tuple[int, int]:
    """Start and size of chunk ``index`` when ``total`` items go into ``parts`` near-equal chunks."""
    base, extra = divmod(total, parts)
    return index * base + min(index, extra), base + (index < extra)


def build_inventory(
    gateways: int,
    ports: int = 48,
    groups: int | None = None,
    attachments: int | None = None,
    networks_span: int = 4,
) -> Inventory:
    """A valid fleet of ``gateways`` gateways, ``groups`` interface groups and ``attachments``
    attachments (defaults: one group per 10 gateways, 2,000 VLANs per group).

    Gateway ``gw-NNNN`` has ports p1..p{ports}, the last one a switch-back. Groups take
    consecutive runs of gateways. Consecutive runs of ``networks_span`` groups (fewer when
    there are fewer groups) form a block; VLAN index i of each group in a block joins the
    block's network i, on a VLAN ID that differs per group (VLAN tags are stripped, so
    silos need not agree). A network is thus carried by about span x 10 gateways.
    """
    groups = max(1, gateways // GATEWAYS_PER_GROUP) if groups is None else groups
    attachments = groups * VLANS_PER_GROUP if attachments is None else attachments
    if not 1 <= gateways <= MAX_GATEWAYS:
        raise ValueError(f"gateways must be 1..{MAX_GATEWAYS} (addresses come from {VTEP_NET})")
    if ports < 2:
        raise ValueError("ports must be at least 2 (members and a switch-back)")
    if not 1 <= groups <= gateways:
        raise ValueError(f"groups must be 1..{gateways} (every group needs a gateway)")
    if not 0 <= attachments <= groups * MAX_VLANS_PER_GROUP:
        raise ValueError(f"attachments must be 0..{groups * MAX_VLANS_PER_GROUP} ({MAX_VLANS_PER_GROUP} per group)")
    if networks_span < 1:
        raise ValueError("networks_span must be at least 1")

    span = min(networks_span, groups)
    per_group = [_split(attachments, groups, k)[1] for k in range(groups)]
    stride = max(per_group)  # VNIs of a block: FIRST_VNI + block * stride + i
    if FIRST_VNI + -(-groups // span) * stride - 1 > rules.VNI_MAX:
        raise ValueError(f"too many networks for the VNI space (max VNI {rules.VNI_MAX})")

    inv = Inventory()
    members = tuple(Port(f"p{i}") for i in range(1, ports))
    switchback = Port(f"p{ports}", switchback=True)
    port_list = (*members, switchback)
    for i in range(gateways):
        mgmt = Management("ovsdb", f"tcp:{_address(MGMT_NET, i)}:6640")
        inv.put_gateway(Gateway(gateway_name(i), _address(VTEP_NET, i), mgmt, capacity=CAPACITY, ports=port_list))

    for k in range(groups):
        first, count = _split(gateways, groups, k)
        gws = [gateway_name(i) for i in range(first, first + count)]
        inv.put_group(InterfaceGroup(
            group_name(k),
            members=tuple(PortRef(gw, p.name) for gw in gws for p in members),
            switchback=tuple(PortRef(gw, switchback.name) for gw in gws),
        ))
        block, offset = divmod(k, span)
        tenant = f"tenant-{block:04d}"
        for i in range(per_group[k]):
            net = f"net-{block:04d}-{i:04d}"
            if offset == 0:  # the block's first group has the most VLANs: it brings the networks
                inv.put_network(VirtualNetwork(net, tenant, FIRST_VNI + block * stride + i))
            vlan = (i + offset * 500) % per_group[k] + 1  # a VLAN ID of its own in each silo
            inv.attach(Attachment(group_name(k), vlan, net))
    return inv
