"""Errors that name the object: every problem of a request at once, at a place a person finds
(``gateways[dc-gw2].capacty``, not ``gateways.1.capacty``), duplicates with both places,
over-capacity with who uses the gateway and what would help, management addresses checked when
written (and flagged, not refused, in rows stored before)."""

from __future__ import annotations

import pytest

from silonet.cli import main as cli
from silonet.errors import Conflict, InvalidInput, NotFound, OverCapacity
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
from silonet.model.legacy import violations
from silonet.model.refusals import check_management
from silonet.service import schemas as S

MGMT = {"driver": "ovsdb", "address": "tcp:198.18.1.1:6640"}


def gw_body(name: str, ip: str, **over: object) -> dict:
    return {"name": name, "vtep_ip": ip, "management": {**MGMT, "address": f"tcp:{ip.replace('.0.', '.1.')}:6640"},
            "ports": [{"name": "xe1"}, {"name": "xe2"}], **over}


def problems(data: dict, model: type = S.Topology) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidInput) as err:
        S.validate(model, data)
    found = [(p.field, p.message) for p in err.value.problems]
    assert (err.value.field, err.value.message) == found[0]  # the first problem is the error's own
    return found


# ------------------------------------------------------------------ places and problems
def test_every_problem_is_named_at_its_place_unknown_fields_first() -> None:
    found = problems({
        "gateways": [gw_body("dc-gw1", "198.18.0.1"), gw_body("dc-gw2", "198.18.0.2", capacty=8)],
        "networks": [{"name": "shop-prod", "tenant": "shop", "vni": 0,
                      "attachments": [{"interface_group": "r1", "vlan": 110}, {"interface_grp": "r1", "vlan": 111}]}],
    })
    assert [f for f, _m in found] == [
        "gateways[dc-gw2].capacty",  # unknown fields first: a misspelled key also reads as a missing one
        "networks[shop-prod].attachments[1].interface_grp",  # no group yet: the index names it
        "networks[shop-prod].vni",
        "networks[shop-prod].attachments[1].interface_group",
    ]
    assert found[0][1] == "gateways[dc-gw2].capacty: unknown field"
    assert "1..16777215" in found[2][1]


def test_attachments_are_named_by_group_and_vlan_ports_by_gateway_and_port() -> None:
    found = problems({
        "interface_groups": [{"name": "r1", "members": [{"gateway": "dc-gw1", "port": "xe1", "vlan": 3}]}],
        "networks": [{"name": "shop-prod", "tenant": "shop", "attachments": [{"interface_group": "r1", "vlan": 110,
                                                                              "vni": 7}]}],
    })
    assert [f for f, _m in found] == ["interface_groups[r1].members[dc-gw1:xe1].vlan",
                                      "networks[shop-prod].attachments[(r1, 110)].vni"]


def test_items_sharing_a_name_or_without_a_valid_one_keep_their_index() -> None:
    found = problems({"silos": [{"name": "a", "kind": "x"}, {"name": "a", "colour": 1}, {"name": "b c"}]})
    assert [f for f, _m in found] == ["silos[1].colour", "silos[0].kind", "silos[2].name"]


def test_a_file_prefix_names_the_file() -> None:
    from silonet.service.topology import parse_topology

    with pytest.raises(InvalidInput) as err:
        parse_topology("silos: [{name: s1, colour: red}, {name: s2, kind: x}]\n", "dc.yaml")
    assert [p.message.split(":")[:2] for p in err.value.problems] == [["dc.yaml", " silos[s1].colour"],
                                                                      ["dc.yaml", " silos[s2].kind"]]


def test_duplicates_name_both_places_and_all_are_reported() -> None:
    found = problems({
        "silos": [{"name": "s1"}, {"name": "s1"}],
        "networks": [
            {"name": "shop-prod", "tenant": "shop", "attachments": [{"interface_group": "r1", "vlan": 110},
                                                                    {"interface_group": "r1", "vlan": 120},
                                                                    {"interface_group": "r1", "vlan": 120}]},
            {"name": "shop-db", "tenant": "shop", "attachments": [{"interface_group": "r1", "vlan": 110}]},
        ],
    })
    assert found == [
        ("silos", "silos: names must be unique; listed twice: s1"),
        ("networks[shop-prod].attachments[(r1, 120)]", "networks[shop-prod].attachments[(r1, 120)]: (r1, 120) is "
         "listed twice in shop-prod: one VLAN of an interface group carries one network"),
        ("networks[shop-db].attachments[(r1, 110)]", "networks[shop-db].attachments[(r1, 110)]: (r1, 110) is in "
         "shop-prod and shop-db: one VLAN of an interface group carries one network"),
    ]


def test_a_port_listed_twice_names_the_gateway() -> None:
    found = problems({"gateways": [gw_body("dc-gw1", "198.18.0.1", ports=[{"name": "xe1"}, {"name": "xe1"}])]})
    assert found == [("gateways[dc-gw1].ports", "gateways[dc-gw1].ports: port 'xe1' is listed twice on gateway "
                                                "'dc-gw1'")]
    with pytest.raises(InvalidInput, match="port 'xe1' is listed twice on gateway 'dc-gw1'"):
        Gateway("dc-gw1", "198.18.0.1", Management("ovsdb", "tcp:198.18.1.1:6640"), ports=(Port("xe1"), Port("xe1")))


def test_a_missing_gateway_names_the_group_that_lists_it() -> None:
    inv = Inventory()
    inv.put_gateway(Gateway("dc-gw1", "198.18.0.1", Management("ovsdb", "tcp:198.18.1.1:6640"), ports=(Port("xe1"),)))
    with pytest.raises(NotFound) as err:
        inv.put_group(InterfaceGroup("r1", members=(PortRef("dc-gw1", "xe1"), PortRef("dc-gw9", "xe1"))))
    assert err.value.field == "members.gateway"
    assert err.value.message == "gateway 'dc-gw9' does not exist (interface group 'r1' lists it in members)"
    with pytest.raises(NotFound, match=r"port 'dc-gw1:xe7' does not exist \(interface group 'r2' lists it in "
                                       r"switchback\)"):
        inv.put_group(InterfaceGroup("r2", switchback=(PortRef("dc-gw1", "xe7"),)))


def test_the_cli_prints_five_problems_then_a_count() -> None:
    err = InvalidInput(field="a", rule="r0").with_more([InvalidInput(field=f"f{i}", rule=f"r{i}") for i in range(1, 8)])
    assert cli.error_lines(err) == ["a: r0", "f1: r1", "f2: r2", "f3: r3", "f4: r4", "and 3 more problem(s)"]
    assert cli.error_lines(NotFound(field="name", kind="gateway", name="x")) == ["name: gateway 'x' does not exist"]


# ------------------------------------------------------------------------ capacity
def _inventory(capacity: int = 8) -> Inventory:
    inv = Inventory()
    ports = (Port("xe1"), Port("xe2"), Port("xe3"), Port("sb1", switchback=True))
    inv.put_gateway(Gateway("gw-a", "198.18.0.1", Management("ovsdb", "tcp:198.18.1.1:6640"), capacity, ports))
    inv.put_network(VirtualNetwork("n1", "acme", 5000))
    return inv


def test_lowering_capacity_says_what_is_used_the_new_capacity_the_groups_and_a_saving_switchback() -> None:
    inv = _inventory(8)
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "xe1"), PortRef("gw-a", "xe2"))))
    for vlan in (1, 2, 3, 4):
        inv.attach(Attachment("g", vlan, "n1"))
    lower = Gateway("gw-a", "198.18.0.1", inv.gateways["gw-a"].management, 4, inv.gateways["gw-a"].ports)
    with pytest.raises(OverCapacity) as err:
        inv.put_gateway(lower)
    assert err.value.field == "capacity"
    assert err.value.message == (
        "gateway 'gw-a' over capacity: its networks use 8 VLAN->VNI entries there, more than the new capacity 4 "
        "(now 8): interface group 'g' (8 = 2 ports x 4 VLANs); a switch-back port on 'gw-a' would bring group 'g' "
        "down to 1 entry per VLAN instead of 2 (4 fewer)")
    assert inv.gateways["gw-a"].capacity == 8


def test_a_switchback_is_suggested_only_where_it_saves_entries() -> None:
    inv = _inventory(6)
    inv.put_gateway(Gateway("gw-b", "198.18.0.2", Management("ovsdb", "tcp:198.18.1.2:6640"), 100, (Port("p1"),)))
    inv.put_group(InterfaceGroup("one", members=(PortRef("gw-a", "xe1"), PortRef("gw-b", "p1"))))
    inv.put_group(InterfaceGroup("sb", members=(PortRef("gw-a", "xe2"), PortRef("gw-a", "xe3")),
                                 switchback=(PortRef("gw-a", "sb1"),)))
    for vlan in (1, 2, 3):
        inv.attach(Attachment("one", vlan, "n1"))
        inv.attach(Attachment("sb", vlan, "n1"))
    with pytest.raises(OverCapacity) as err:  # one port per VLAN each: no switch-back port would help
        inv.attach(Attachment("one", 4, "n1"))
    assert err.value.message == (
        "gateway 'gw-a' over capacity: the request needs 1 VLAN->VNI entry but only 0 of 6 are free; 6 in use by "
        "interface groups 'one' (3 = 1 port x 3 VLANs), 'sb' (3 = 1 port x 3 VLANs)")
    lower = Gateway("gw-a", "198.18.0.1", inv.gateways["gw-a"].management, 5, inv.gateways["gw-a"].ports)
    with pytest.raises(OverCapacity, match=r"; keep the capacity at 6 or more, or detach VLANs first$"):
        inv.put_gateway(lower)


def test_over_capacity_on_attach_names_the_groups_and_orders_savings() -> None:
    inv = _inventory(10)
    inv.put_group(InterfaceGroup("g", members=(PortRef("gw-a", "xe1"), PortRef("gw-a", "xe2"), PortRef("gw-a", "xe3"))))
    for vlan in (1, 2, 3):
        inv.attach(Attachment("g", vlan, "n1"))
    with pytest.raises(OverCapacity) as err:
        inv.attach(Attachment("g", 4, "n1"))
    assert err.value.message == (
        "gateway 'gw-a' over capacity: the request needs 3 VLAN->VNI entries but only 1 of 10 are free; 9 in use by "
        "interface group 'g' (9 = 3 ports x 3 VLANs); a switch-back port on 'gw-a' would bring group 'g' down to "
        "1 entry per VLAN instead of 3 (8 fewer)")


# ------------------------------------------------------------------ management addresses
@pytest.mark.parametrize(("driver", "address", "breaks"), [
    ("ovsdb", "tcp:198.18.1.9:6640", None),
    ("ovsdb", "ssl:gw1.example:6640", None),
    ("ovsdb", "tcp:[2001:db8::1]:6640", None),
    ("ovsdb", "unix:/run/openvswitch/db.sock", None),
    ("ovsdb", "198.18.1.9:6640", rules.OVSDB_ADDRESS_RULE),
    ("ovsdb", "ptcp:6640", rules.OVSDB_ADDRESS_RULE),
    ("ovsdb", "tcp:198.18.1.9", rules.INET_RULE.format(scheme="tcp")),
    ("ovsdb", "tcp:198.18.1.9:0", rules.INET_RULE.format(scheme="tcp")),
    ("ovsdb", "ssl:198.18.1.9:70000", rules.INET_RULE.format(scheme="ssl")),
    ("ovsdb", "tcp:300.18.1.9:6640", rules.INET_RULE.format(scheme="tcp")),
    ("ovsdb", "tcp:[nope]:6640", rules.INET_RULE.format(scheme="tcp")),
    ("ovsdb", "unix:", "unix: needs the path of the socket"),
    ("ssh", "admin@198.18.1.9", None),
    ("ssh", "ssh://admin@198.18.1.9:2222/", None),
    ("ssh", "admin@198.18.1.9:99999", rules.SSH_ADDRESS_RULE),
    ("ssh", "admin@gw 1", rules.SSH_ADDRESS_RULE),
])
def test_address_rules(driver: str, address: str, breaks: str | None) -> None:
    assert rules.address_violation(driver, address) == breaks
    if breaks is None:
        assert rules.new_address(driver, address) == address
    else:
        with pytest.raises(InvalidInput) as err:
            rules.new_address(driver, address)
        assert (err.value.field, err.value.fields["rule"]) == ("management.address", f"{address!r} {breaks}")


def test_a_written_address_is_checked_a_stored_one_loads_flagged() -> None:
    body = gw_body("gw-a", "198.18.0.1", management={"driver": "ovsdb", "address": "198.18.1.1:6640"})
    assert problems(body, S.GatewayIn) == [("management.address", "management.address: '198.18.1.1:6640' "
                                            + rules.OVSDB_ADDRESS_RULE)]
    old = Gateway("gw-a", "198.18.0.1", Management("ovsdb", "198.18.1.1:6640"))  # as an older version stored it
    assert violations(old) == [f"management.address: '198.18.1.1:6640' {rules.OVSDB_ADDRESS_RULE}"]


def test_an_ssh_password_is_refused_unechoed() -> None:
    with pytest.raises(InvalidInput) as err:
        rules.new_address("ssh", "admin:hunter2@198.18.1.9")
    assert "hunter2" not in err.value.message and "password" in err.value.message


@pytest.mark.parametrize(("driver", "a", "b"), [
    ("ssh", "ssh://admin@GW1.example", "gw1.example:22"),
    ("ssh", "root@198.18.1.9:22/", "198.18.1.9"),
    ("ovsdb", "tcp:198.18.1.9:6640", "ssl:198.18.1.9:6640"),
    ("ovsdb", "198.18.1.9:6640", "tcp:198.18.1.9:6640"),  # an older row's bare form
    ("ovsdb", "unix:/run/x/../db.sock", "unix:/run/db.sock"),
])
def test_one_endpoint_however_written(driver: str, a: str, b: str) -> None:
    assert rules.management_endpoint(driver, a) == rules.management_endpoint(driver, b)


def test_two_gateways_on_one_device_are_refused_on_writes_kept_on_loads() -> None:
    inv = Inventory()
    ssh = Management("ssh", "admin@198.18.1.9", "eos")
    inv.put_gateway(Gateway("gw-a", "198.18.0.1", ssh))
    other = Gateway("gw-b", "198.18.0.2", Management("ssh", "ssh://ops@198.18.1.9:22", "eos"))
    with pytest.raises(Conflict) as err:
        check_management(inv, other)
    assert err.value.field == "management.address"
    assert err.value.message == ("ssh address 'ssh://ops@198.18.1.9:22' reaches the device of gateway 'gw-a' "
                                 "(admin@198.18.1.9): one device is managed by one gateway")
    check_management(inv, Gateway("gw-b", "198.18.0.2", Management("ovsdb", "tcp:198.18.1.9:22")))  # another driver
    check_management(inv, Gateway("gw-a", "198.18.0.1", ssh, capacity=10))  # its own address, unchanged
    inv.put_gateway(other)  # a load (rows stored before the rule) keeps both
    inv.remove_gateway("gw-a")
    inv.remove_gateway("gw-b")
    check_management(inv, other)  # free again once they are gone
