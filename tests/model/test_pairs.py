"""Redundant gateway pairs in the model (model/pairs.py): who may share a tunnel address, and
what a pair must be (two members, one silo, managed alike, one anycast VTEP)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from silonet.errors import Conflict
from silonet.model import Gateway, Inventory, Management, Port, Silo

ANYCAST = "198.18.0.100"


def gw(name: str, vtep: str = ANYCAST, pair: str | None = "p1", silo: str | None = "paas", driver: str = "ovsdb",
       dialect: str | None = None, address: str | None = None) -> Gateway:
    addr = address or (f"tcp:198.18.1.{abs(hash(name)) % 200 + 1}:6640" if driver == "ovsdb"
                       else f"admin@198.18.1.{abs(hash(name)) % 200 + 1}:22")
    return Gateway(name, vtep, Management(driver, addr, dialect), ports=(Port("p1"),), silo=silo, pair=pair)


@pytest.fixture
def inv() -> Inventory:
    inv = Inventory()
    inv.put_silo(Silo("paas", "paas"))
    inv.put_silo(Silo("kvm", "kvm"))
    return inv


def refused(inv: Inventory, g: Gateway, field: str, *words: str) -> None:
    before = dict(inv.gateways)
    with pytest.raises(Conflict) as err:
        inv.put_gateway(g)
    assert err.value.field == field, (err.value.field, err.value.fields)
    for w in words:
        assert w in err.value.fields["rule"], err.value.fields["rule"]
    assert inv.gateways == before  # nothing written


def test_two_members_share_the_anycast_vtep(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a"))
    inv.put_gateway(gw("gw-b"))
    assert inv.partner("gw-a") == "gw-b" and inv.partner("gw-b") == "gw-a"
    assert inv.gateways["gw-a"].vtep_ip == inv.gateways["gw-b"].vtep_ip == ANYCAST


def test_a_shared_vtep_without_a_common_pair_stays_a_conflict(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a", pair=None))
    refused(inv, gw("gw-b", pair=None), "vtep_ip", "already belongs to gateway 'gw-a'", "give both the same `pair`")
    refused(inv, gw("gw-b", pair="p1"), "vtep_ip", "'gw-a'", "not in pair 'p1'")
    other = Inventory()
    other.put_silo(Silo("paas", "paas"))
    other.put_gateway(gw("gw-a"))
    refused(other, gw("gw-b", pair=None), "vtep_ip", "as 'gw-a' has pair 'p1'")
    refused(other, gw("gw-b", pair="p2"), "vtep_ip", "not in pair 'p2'")


def test_a_third_member_is_refused(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a"))
    inv.put_gateway(gw("gw-b"))
    refused(inv, gw("gw-c"), "pair", "pair 'p1' has 2 members already ('gw-a', 'gw-b')")


@pytest.mark.parametrize(("second", "field", "words"), [
    (gw("gw-b", vtep="198.18.0.101"), "vtep_ip", ("share one anycast VTEP", "198.18.0.100")),
    (gw("gw-b", silo="kvm"), "silo", ("serve one silo", "silo 'paas'", "silo 'kvm'")),
    (gw("gw-b", silo=None), "silo", ("no silo",)),
    (gw("gw-b", driver="ssh", dialect="eos"), "management.driver", ("driver ovsdb",)),
])
def test_members_agree(inv: Inventory, second: Gateway, field: str, words: tuple[str, ...]) -> None:
    inv.put_gateway(gw("gw-a"))
    refused(inv, second, field, *words)


def test_ssh_members_speak_one_dialect(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a", driver="ssh", dialect="eos"))
    refused(inv, gw("gw-b", driver="ssh", dialect="nxos"), "management.dialect", "dialect eos")
    inv.put_gateway(gw("gw-b", driver="ssh", dialect="eos"))


def test_leaving_a_pair_frees_its_place_and_address(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a"))
    inv.put_gateway(gw("gw-b"))
    inv.put_gateway(replace(inv.gateways["gw-b"], pair=None, vtep_ip="198.18.0.7"))  # leaves the pair
    assert inv.partner("gw-a") is None
    inv.put_gateway(gw("gw-c"))  # the pair has room again
    assert inv.partner("gw-a") == "gw-c"
    inv.remove_gateway("gw-c")
    assert inv.partner("gw-a") is None
    refused(inv, gw("gw-d", pair=None), "vtep_ip", "'gw-a'")  # still gw-a's anycast address
    inv.remove_gateway("gw-a")
    inv.put_gateway(gw("gw-d", pair=None))  # free now


def test_a_member_changed_in_place_keeps_its_pair(inv: Inventory) -> None:
    inv.put_gateway(gw("gw-a"))
    inv.put_gateway(gw("gw-b"))
    inv.put_gateway(replace(inv.gateways["gw-a"], capacity=100, mode="maintenance"))
    assert inv.partner("gw-b") == "gw-a"
    refused(inv, replace(inv.gateways["gw-a"], vtep_ip="198.18.0.9"), "vtep_ip", "member 'gw-b'")


def test_capacity_is_per_member(inv: Inventory) -> None:
    from silonet.model import Attachment, InterfaceGroup, PortRef, VirtualNetwork

    inv.put_gateway(replace(gw("gw-a"), capacity=2))
    inv.put_gateway(replace(gw("gw-b"), capacity=1))
    inv.put_group(InterfaceGroup("paas", members=(PortRef("gw-a", "p1"), PortRef("gw-b", "p1")), silo="paas"))
    inv.put_network(VirtualNetwork("n1", "t", 5001))
    inv.put_network(VirtualNetwork("n2", "t", 5002))
    inv.attach(Attachment("paas", 500, "n1"))
    with pytest.raises(Conflict) as err:  # gw-a has room for a second entry, gw-b has none
        inv.attach(Attachment("paas", 501, "n2"))
    assert "gw-b" in str(err.value.fields)
    assert inv.usage("gw-a") == inv.usage("gw-b") == 1
