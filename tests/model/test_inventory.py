"""Invariants and capacity accounting of the pure model."""

from __future__ import annotations

import pytest

from silonet.errors import Conflict, InUse, InvalidInput, NotFound, OverCapacity
from silonet.model import Attachment, Gateway, InterfaceGroup, Inventory, Management, Port, PortRef, VirtualNetwork
from silonet.model.inventory import AnyDevice

MGMT = Management("ovsdb", "tcp:198.18.1.1:6640")


def gw(name: str, ip: str, capacity: int = 4096, ports: int = 3, sb: bool = True) -> Gateway:
    ps = [Port(f"p{i}") for i in range(1, ports + 1)] + ([Port("p48", switchback=True)] if sb else [])
    return Gateway(name, ip, MGMT, capacity, tuple(ps))


@pytest.fixture
def inv() -> Inventory:
    i = Inventory()
    i.put_gateway(gw("gw-a", "198.18.0.1", capacity=10))
    i.put_gateway(gw("gw-b", "198.18.0.2", capacity=10))
    i.put_network(VirtualNetwork("n1", "acme", 5000))
    i.put_network(VirtualNetwork("n2", "acme", 5001))
    return i


def test_capacity_without_switchback_is_ports_times_vlans(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"), PortRef("gw-b", "p1"))))
    for vlan in (10, 20, 30):
        inv.attach(Attachment("g", vlan, "n1"))
    assert inv.usage("gw-a") == 6
    assert inv.usage("gw-b") == 3


def test_capacity_with_switchback_is_one_entry_per_vlan(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"), PortRef("gw-a", "p3")),
                                 switchback=(PortRef("gw-a", "p48"),)))
    for vlan in range(1, 11):
        inv.attach(Attachment("g", vlan, "n1"))
    assert inv.usage("gw-a") == 10


def test_over_capacity_message_says_needed_free_and_switchback(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"), PortRef("gw-a", "p3"))))
    for vlan in (1, 2, 3):
        inv.attach(Attachment("g", vlan, "n1"))
    with pytest.raises(OverCapacity) as exc:
        inv.attach(Attachment("g", 4, "n1"))
    msg = str(exc.value)
    assert "needs 3 VLAN->VNI entries" in msg and "only 1 of 10 are free" in msg
    assert "switch-back port on 'gw-a'" in msg and "1 entry per VLAN" in msg
    assert (("g", 4)) not in inv.attachments and inv.usage("gw-a") == 9


def test_group_growth_is_checked_against_capacity(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"),)))
    for vlan in range(1, 6):
        inv.attach(Attachment("g", vlan, "n1"))
    with pytest.raises(OverCapacity):
        inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"),
                                                   PortRef("gw-a", "p3"))))
    assert inv.groups["g"].members == (PortRef("gw-a", "p1"),)
    # A switch-back port makes the same growth free.
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"), PortRef("gw-a", "p3")),
                                 switchback=(PortRef("gw-a", "p48"),)))
    assert inv.usage("gw-a") == 5


def test_lowering_capacity_below_usage_is_refused(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"))))
    for vlan in (1, 2, 3):
        inv.attach(Attachment("g", vlan, "n1"))
    with pytest.raises(OverCapacity):
        inv.put_gateway(gw("gw-a", "198.18.0.1", capacity=5))
    inv.put_gateway(gw("gw-a", "198.18.0.1", capacity=6))


def test_groups_are_disjoint(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g1", members=(PortRef("gw-a", "p1"),)))
    with pytest.raises(Conflict, match="already belongs to interface group 'g1'"):
        inv.put_group(InterfaceGroup("g2", members=(PortRef("gw-a", "p1"), PortRef("gw-a", "p2"))))
    assert "g2" not in inv.groups


def test_one_switchback_per_gateway_per_group() -> None:
    with pytest.raises(InvalidInput, match="at most one switch-back port per gateway"):
        InterfaceGroup("g", switchback=(PortRef("gw-a", "p47"), PortRef("gw-a", "p48")))


def test_switchback_flag_must_match_role(inv: Inventory) -> None:
    with pytest.raises(InvalidInput, match="is a switch-back port"):
        inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p48"),)))
    with pytest.raises(InvalidInput, match="not marked as a switch-back port"):
        inv.put_group(InterfaceGroup("g", switchback=(PortRef("gw-a", "p1"),)))


def test_vlan_held_by_one_network(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"),)))
    inv.attach(Attachment("g", 100, "n1"))
    with pytest.raises(Conflict, match="already attached to network 'n1'"):
        inv.attach(Attachment("g", 100, "n2"))


def test_vni_belongs_to_one_network(inv: Inventory) -> None:
    with pytest.raises(Conflict, match="VNI 5000 already belongs to network 'n1'"):
        inv.put_network(VirtualNetwork("n3", "acme", 5000))


def test_vni_allocation_takes_lowest_free_and_reports_exhaustion(inv: Inventory) -> None:
    assert inv.allocate_vni(range(5000, 5003)) == 5002
    inv.put_network(VirtualNetwork("n3", "acme", 5002))
    with pytest.raises(Conflict, match="exhausted"):
        inv.allocate_vni(range(5000, 5003))


def test_removals_refuse_while_in_use(inv: Inventory) -> None:
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "p1"),)))
    inv.attach(Attachment("g", 100, "n1"))
    with pytest.raises(InUse):
        inv.remove_gateway("gw-a")
    with pytest.raises(InUse):
        inv.remove_group("g")
    with pytest.raises(InUse, match="cascade"):
        inv.remove_network("n1")
    _net, atts = inv.remove_network("n1", cascade=True)
    assert [a.key for a in atts] == [("g", 100)] and not inv.attachments
    with pytest.raises(InUse):
        inv.put_gateway(gw("gw-a", "198.18.0.1", capacity=10, ports=0))


def test_unknown_references_are_not_found(inv: Inventory) -> None:
    with pytest.raises(NotFound) as exc:
        inv.put_group(InterfaceGroup("g", members=(PortRef("gw-x", "p1"),)))
    assert exc.value.field == "members.gateway"
    with pytest.raises(NotFound) as exc:
        inv.attach(Attachment("nope", 1, "n1"))
    assert exc.value.field == "interface_group"


@pytest.mark.parametrize("bad", ["", "a" * 65, "a b", "a/b", "é", "x;y"])
def test_names_follow_the_rule(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"\[A-Za-z0-9\._-\]"):
        VirtualNetwork(bad, "acme", 5000)


@pytest.mark.parametrize(("vlan", "ok"), [(-1, False), (0, True), (4094, True), (4095, False), (True, False)])
def test_vlan_range(vlan: int, ok: bool) -> None:
    if ok:
        assert Attachment("g", vlan, "n").vlan == vlan
    else:
        with pytest.raises(InvalidInput):
            Attachment("g", vlan, "n")


def test_duplicate_vtep_ip_is_refused(inv: Inventory) -> None:
    with pytest.raises(Conflict, match=r"vtep_ip 198\.18\.0\.1 already belongs to gateway 'gw-a'"):
        inv.put_gateway(gw("gw-c", "198.18.0.1"))


class PerSwitch(AnyDevice):
    """A device policy under which gw-a maps VLAN->VNI per switch (like EOS)."""

    def check(self, gateway: Gateway) -> None:
        return None

    def switch_scoped(self, gateway: Gateway) -> str | None:
        return "eos" if gateway.name == "gw-a" else None


def test_per_switch_platform_refuses_one_vlan_for_two_vnis(inv: Inventory) -> None:
    inv.policy = PerSwitch()
    inv.put_group(InterfaceGroup("g1", members=(PortRef("gw-a", "p1"),)))
    inv.put_group(InterfaceGroup("g2", members=(PortRef("gw-a", "p2"),)))
    inv.put_group(InterfaceGroup("h1", members=(PortRef("gw-b", "p1"),)))
    inv.put_group(InterfaceGroup("h2", members=(PortRef("gw-b", "p2"),)))
    inv.attach(Attachment("g1", 300, "n1"))
    inv.attach(Attachment("g2", 300, "n1"))  # same VNI: fine
    inv.attach(Attachment("g1", 301, "n2"))
    with pytest.raises(Conflict, match=r"gateway 'gw-a' \(eos dialect\) maps VLAN<->VNI one to one per switch"):
        inv.attach(Attachment("g2", 301, "n1"))
    assert ("g2", 301) not in inv.attachments
    with pytest.raises(Conflict, match="VNI 5000 there is already on VLAN 300"):
        inv.attach(Attachment("g2", 302, "n1"))  # one VNI on two VLANs of one switch
    # Per-port gateways take it.
    inv.attach(Attachment("h1", 300, "n1"))
    inv.attach(Attachment("h2", 300, "n2"))
