"""The synthetic fleet has the shape the compile benchmark claims (bench/synthetic.py)."""

from __future__ import annotations

import ipaddress

import pytest

from silonet.bench.synthetic import CAPACITY, VLANS_PER_GROUP, build_inventory
from silonet.model import Inventory

BENCH_NET = ipaddress.IPv4Network("198.18.0.0/15")


def _in_bench_net(address: str) -> bool:
    return ipaddress.IPv4Address(address) in BENCH_NET


def _check_shape(inv: Inventory, gateways: int, groups: int, attachments: int, span: int) -> None:
    assert len(inv.gateways) == gateways and len(inv.groups) == groups and len(inv.attachments) == attachments
    for name, gw in inv.gateways.items():
        assert _in_bench_net(gw.vtep_ip)
        assert _in_bench_net(gw.management.address.split(":")[1])
        assert [p.name for p in gw.ports] == [f"p{i}" for i in range(1, 49)]
        assert [p.switchback for p in gw.ports] == [False] * 47 + [True]
        assert gw.capacity == CAPACITY
        assert 0 < inv.usage(name) <= gw.capacity
        assert len(inv.groups_on(name)) == 1
    assert len({gw.vtep_ip for gw in inv.gateways.values()}) == gateways
    for group in inv.groups.values():
        assert len(group.gateways) == gateways // groups
        assert len(group.members) == 47 * len(group.gateways) and len(group.switchback) == len(group.gateways)
        for gw in group.gateways:
            assert group.entries_per_vlan(gw) == 1  # the switch-back takes the group's entries
        assert all(1 <= vlan <= 4094 for vlan in inv.vlans_of(group.name))
    for net in inv.networks:
        groups_of = {a.group for a in inv.attachments_of(net)}
        assert 1 <= len(groups_of) <= span
        assert len(inv.attachments_of(net)) == len(groups_of)  # one VLAN per group
        assert len(inv.gateways_of_network(net)) == 10 * len(groups_of)


def test_default_fleet_of_100_gateways() -> None:
    inv = build_inventory(100)
    _check_shape(inv, 100, 10, 10 * VLANS_PER_GROUP, 4)
    # 10 groups in blocks of 4, 4 and 2: one network per VLAN index per block.
    assert len(inv.networks) == 3 * VLANS_PER_GROUP
    for name in inv.gateways:
        assert inv.usage(name) == VLANS_PER_GROUP
    spans = sorted({len(inv.gateways_of_network(n)) for n in inv.networks})
    assert spans == [20, 40]
    assert len({inv.networks[n].vni for n in inv.networks}) == len(inv.networks)


def test_small_fleet_has_the_same_per_group_density() -> None:
    inv = build_inventory(10)
    _check_shape(inv, 10, 1, VLANS_PER_GROUP, 1)
    assert len(inv.networks) == VLANS_PER_GROUP
    assert sorted(inv.vlans_of("ig-0000")) == list(range(1, VLANS_PER_GROUP + 1))


def test_vlan_ids_differ_per_silo_and_networks_share_carriers() -> None:
    inv = build_inventory(40)
    atts = inv.attachments_of("net-0000-0000")
    assert [(a.group, a.vlan) for a in atts] == [("ig-0000", 1), ("ig-0001", 501), ("ig-0002", 1001), ("ig-0003", 1501)]
    # Networks stretched over the same groups share one carrier set (the compiler relies on it).
    assert inv.carriers_of("net-0000-0000") is inv.carriers_of("net-0000-1999")


def test_deterministic() -> None:
    a, b = build_inventory(30, attachments=900, networks_span=2), build_inventory(30, attachments=900, networks_span=2)
    assert a.gateways == b.gateways and a.groups == b.groups and a.networks == b.networks
    assert list(a.attachments.values()) == list(b.attachments.values())


def test_uneven_sizes() -> None:
    inv = build_inventory(7, ports=4, groups=3, attachments=11, networks_span=2)
    assert len(inv.gateways) == 7 and len(inv.groups) == 3 and len(inv.attachments) == 11
    assert sorted(len(inv.vlans_of(g)) for g in inv.groups) == [3, 4, 4]
    assert sorted(len(g.gateways) for g in inv.groups.values()) == [2, 2, 3]
    for gw in inv.gateways.values():
        assert [p.switchback for p in gw.ports] == [False, False, False, True]


@pytest.mark.parametrize("kwargs", [
    {"gateways": 0}, {"gateways": 70_000}, {"gateways": 10, "ports": 1}, {"gateways": 10, "groups": 11},
    {"gateways": 10, "attachments": 4095}, {"gateways": 10, "networks_span": 0},
])
def test_rejects_impossible_fleets(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        build_inventory(**kwargs)
