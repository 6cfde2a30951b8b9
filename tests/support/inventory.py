"""Inventories for tests of the pure layers, built through ``Inventory``'s own checks (valid by
construction). Tests of the benchmarks use ``silonet.bench.synthetic``; the rest build here, so
they do not depend on the ``bench`` extra."""

from __future__ import annotations

from silonet.model import Attachment, Gateway, InterfaceGroup, Inventory, Management, Port, PortRef, VirtualNetwork

FIRST_VNI = 10_000


def fleet(gateways: int, ports: int = 4, groups: int = 1, attachments: int = 0, networks_span: int = 1,
          capacity: int = 8192) -> Inventory:
    """``gateways`` gateways ``gw-NNNN`` (ports p1..p{ports}, the last a switch-back) in consecutive
    runs to the ``groups`` groups ``ig-NNNN``; ``attachments`` VLANs dealt round the groups. Groups
    ``networks_span`` apart share networks (VNI ``FIRST_VNI`` + index), each on a VLAN ID of its own."""
    inv = Inventory()
    port_list = (*(Port(f"p{i}") for i in range(1, ports)), Port(f"p{ports}", switchback=True))
    names = [f"gw-{i:04d}" for i in range(gateways)]
    for i, name in enumerate(names):
        inv.put_gateway(Gateway(name, f"198.18.{i // 250}.{i % 250 + 1}",
                                Management("ovsdb", f"tcp:198.19.{i // 250}.{i % 250 + 1}:6640"),
                                capacity=capacity, ports=port_list))
    for k in range(groups):
        mine = names[k * gateways // groups:(k + 1) * gateways // groups]
        inv.put_group(InterfaceGroup(
            f"ig-{k:04d}",
            members=tuple(PortRef(gw, p.name) for gw in mine for p in port_list if not p.switchback),
            switchback=tuple(PortRef(gw, port_list[-1].name) for gw in mine)))
    for n in range(attachments):
        group, index = n % groups, n // groups
        network = f"net-{group // networks_span:04d}-{index:04d}"
        if network not in inv.networks:
            inv.put_network(VirtualNetwork(network, f"tenant-{group // networks_span:04d}",
                                           FIRST_VNI + len(inv.networks)))
        inv.attach(Attachment(f"ig-{group:04d}", index + 1 + (group % networks_span) * 100, network))
    return inv
