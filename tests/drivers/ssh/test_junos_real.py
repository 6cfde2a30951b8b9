"""The junos dialect on what real switches print (issue 19): ``display set`` read-back, ports
silonet must not bind on, the VTEP source, the version command, and the trunk mode silonet sets
with its first membership on a port. The captured cases themselves are in corpus/junos."""

from __future__ import annotations

import pytest

from silonet.drivers.ssh.dialect import Target, device_facts, dialects, render_batch
from silonet.drivers.ssh.dialects import junos
from silonet.drivers.ssh.dialects.junos import read
from silonet.drivers.ssh.driver import interpret
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ownership import restrict

D = dialects()["junos"]
GW = Target("gw-a", "198.18.0.1", ("p1", "p2", "p3"), ())
TRUNK = "set interfaces {} unit 0 family ethernet-switching interface-mode trunk"
SWITCH = "set switch-options vtep-source-interface lo0.0"
LO0 = "set interfaces lo0 unit 0 family inet address 198.18.0.1/32"


def _parse(vlans: list[str], interfaces: list[str], switch: list[str] | None = None, gw: Target = GW):
    return junos.parse({junos.SHOW_VLANS: "\n".join(vlans), junos.SHOW_INTERFACES: "\n".join([*interfaces, LO0]),
                        junos.SHOW_SWITCH_OPTIONS: "\n".join([SWITCH] if switch is None else switch)}, gw)


def _state(bindings: dict[tuple[str, int], int]) -> GatewayState:
    return GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset()),
                         5001: LogicalSwitch(5001, "cust-43", frozenset())}, bindings)


OURS = ["set vlans silonet-cust-42 vlan-id 100", "set vlans silonet-cust-42 vxlan vni 5000",
        "set vlans silonet-cust-43 vlan-id 101", "set vlans silonet-cust-43 vxlan vni 5001"]


# ------------------------------------------------------------------ trunk mode (finding 1)
def test_first_membership_on_a_port_makes_it_a_trunk_once() -> None:
    actual = _state({("p1", 100): 5000})
    desired = _state({("p1", 100): 5000, ("p1", 101): 5001, ("p2", 100): 5000, ("p2", 101): 5001})
    lines = render_batch(D, diff(desired, actual), GW, actual, desired)
    assert lines.count(TRUNK.format("p2")) == 1  # a port silonet has not used yet: made a trunk, once
    assert lines.index(TRUNK.format("p2")) < lines.index(
        "set interfaces p2 unit 0 family ethernet-switching vlan members silonet-cust-42")
    assert TRUNK.format("p1") not in lines  # silonet's port already: it made it a trunk before


def test_an_access_port_someone_uses_is_refused_and_never_changed() -> None:
    """ELS: members and no interface-mode make an access port (the ADCX lab's xe-0/0/0). silonet
    binds nothing there and types nothing about it; a trunk and an unconfigured port are usable."""
    parsed = _parse(["set vlans v10 vlan-id 10"], [
        "set interfaces p1 unit 0 family ethernet-switching vlan members v10",
        "set interfaces p2 unit 0 family ethernet-switching interface-mode trunk",
        "set interfaces p2 unit 0 family ethernet-switching vlan members v10"])
    assert parsed.facts.ports == frozenset({"p2", "p3"})
    assert parsed.faults == {"port p1": ["not a trunk port (no interface-mode: access, VLAN v10): silonet binds "
                                         "VLANs on trunks only and does not change the mode of a port someone "
                                         "else set up (interface-mode trunk lets silonet use it)"]}
    actual = interpret(D, GW, parsed)
    desired = _state({("p1", 100): 5000, ("p2", 100): 5000, ("p3", 101): 5001})
    effective, failures = restrict(desired, actual.facts)
    assert list(failures) == [("p1", 100)]
    lines = render_batch(D, diff(effective, actual.owned), GW, actual.owned, effective)
    assert not [line for line in lines if " p1 " in line], lines
    assert TRUNK.format("p3") in lines and TRUNK.format("p2") in lines  # the trunk: set again, a no-op


@pytest.mark.parametrize(("lines", "why"), [
    (["set interfaces p1 unit 0 family ethernet-switching interface-mode access"], "interface-mode access"),
    (["set interfaces p1 unit 0 family ethernet-switching"], "no interface-mode: access"),
    (["set interfaces p1 unit 0 family inet address 198.18.1.1/31"], "routed on unit 0 (family inet)"),
    (["set interfaces p1 ether-options 802.3ad ae0"], "a member of ae0"),
    (["set interfaces p1 vlan-tagging", "set interfaces p1 unit 110 vlan-id 110",
      "set interfaces p1 unit 110 family inet address 198.18.2.1/24"], "set up with units 110"),
    (["set interfaces p1 unit 0 family ethernet-switching interface-mode trunk", "deactivate interfaces p1"],
     "'interfaces p1' is deactivated"),
])
def test_ports_set_up_for_something_else_are_refused(lines: list[str], why: str) -> None:
    parsed = _parse([], lines)
    assert "p1" not in (parsed.facts.ports or ()) and parsed.facts.ports is not None
    assert any(why in fault for fault in parsed.faults["port p1"]), parsed.faults


def test_a_port_with_only_a_description_is_usable() -> None:
    parsed = _parse([], ['set interfaces p1 description "to server 7"'])
    assert parsed.facts.ports is None and not parsed.faults


# ------------------------------------------------------------------ display set read-back
def test_owned_and_foreign_from_display_set() -> None:
    parsed = _parse([
        *OURS, 'set vlans silonet-cust-42 description "silonet network cust-42 (VNI 5000)"',
        "set vlans silonet-cust-42 vxlan static-remote-vtep-list 198.18.0.2",
        "set vlans servers vlan-id 200", "set vlans servers vxlan vni 7000",
        "set vlans servers vxlan static-remote-vtep-list 198.18.0.9",
        "set vlans range vlan-id-list 300-302",
        "deactivate vlans silonet-cust-43 vxlan"], [
        "set interfaces p1 unit 0 family ethernet-switching interface-mode trunk",
        "set interfaces p1 unit 0 family ethernet-switching vlan members silonet-cust-42",
        "set interfaces p1 unit 0 family ethernet-switching vlan members servers"])
    assert parsed.owned == GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))},
                                        {("p1", 100): 5000})
    assert parsed.facts.foreign_vnis == {7000: "servers"} and parsed.facts.foreign_flood == {"198.18.0.9"}
    assert {v for (p, v) in parsed.facts.foreign_bindings if p == "p1"} == {200, 300, 301, 302}
    assert parsed.faults == {"switch": ["'vlans silonet-cust-43 vxlan' is deactivated: silonet does not activate "
                                        "statements"]}
    assert parsed.vtep_ip == "198.18.0.1"


def test_memberships_not_by_name_are_told() -> None:
    """A member by VLAN ID or range (a real fabric's ``vlan members 220``) or by ``vlans <name>
    interface`` reaches silonet's VLAN without its name: silonet cannot take it off, so it says so."""
    parsed = _parse([*OURS, "set vlans silonet-cust-43 interface p2.0"], [
        "set interfaces p1 unit 0 family ethernet-switching interface-mode trunk",
        "set interfaces p1 unit 0 family ethernet-switching vlan members 90-100"])
    assert parsed.owned.bindings == {}
    assert parsed.faults["port p1"] == ["a member of VLAN 90-100 by number, which reaches silonet's VLAN 100: "
                                        "silonet adds and removes its VLANs by name only"]
    assert "by 'vlans silonet-cust-43 interface p2.0'" in parsed.faults["port p2"][0]


def test_lines_that_are_not_statements_are_ignored() -> None:
    text = "\n".join(["show configuration vlans | display set", "## Last commit: 2025-01-07 by admin",
                      'set vlans v10 description "a \\"quoted\\" name"', "2fyZwpHFvqLH/UT/\"",
                      "set vlans v10 vlan-id 10", "", "{master:0}", "admin@gw-a> "])
    vlans, off = read.read_vlans(text)
    assert list(vlans) == ["v10"] and vlans["v10"].ids == {10} and off == []
    assert read.words('set a "b c" d\\e') == ["set", "a", "b c", "d\\e"]


# ------------------------------------------------------------------ VTEP source (finding 2)
@pytest.mark.parametrize(("interfaces", "switch", "vtep", "fault"), [
    ([], ["set switch-options vtep-source-interface lo0.0"], "198.18.0.1", None),
    (["set interfaces lo0 unit 0 family inet address 198.18.0.7/32 primary"], [SWITCH], "198.18.0.7", None),
    ([], [], None, "no switch-options vtep-source-interface: VXLAN cannot work"),
    ([], ["set switch-options vtep-source-interface lo0.5"], None,
     "the VTEP source interface lo0.5 has no IPv4 address in the configuration"),
    (["set interfaces lo0 unit 0 family inet address 198.18.0.7/32"], [SWITCH], None,
     "has 2 IPv4 addresses and none is marked primary"),
])
def test_the_vtep_source_is_read(interfaces: list[str], switch: list[str], vtep: str | None,
                                 fault: str | None) -> None:
    parsed = _parse([], interfaces, switch)
    assert parsed.vtep_ip == vtep
    assert (fault is None and "switch" not in parsed.faults) or fault in parsed.faults["switch"][0]


def test_the_inventory_is_told_when_the_vtep_source_differs() -> None:
    actual = interpret(D, Target("gw-a", "198.18.0.9", ("p1",), ()), _parse([], []))
    assert actual.vtep_ip == "198.18.0.1"
    assert actual.faults["switch"] == ["the device's VTEP source address is 198.18.0.1, the inventory says 198.18.0.9"]


# ------------------------------------------------------------------ version command (finding 3)
def test_the_version_command() -> None:
    assert D.version_show == "show version | display xml" and D.version is read.version
    p = read.version('<rpc-reply><software-information><host-name>a</host-name><product-model>qfx5120-48y'
                         '</product-model><junos-version>21.4R3-S5.4</junos-version></software-information>'
                         '<cli><banner>{master:0}</banner></cli></rpc-reply>')
    assert (p.model, p.text, p.version) == ("qfx5120-48y", "21.4R3-S5.4", (21, 4, 3, 5, 4))
    old = read.version("<software-information><product-name>ex2200</product-name><package-information>"
                           "<name>junos</name><comment>JUNOS Base OS boot [11.4R1.6]</comment>"
                           "</package-information></software-information>")
    assert (old.model, old.text) == ("ex2200", "11.4R1.6")
    with pytest.raises(ValueError, match="no <junos-version>"):
        read.version("error: syntax error, expecting <command>: xml")


def test_the_platform_is_only_reported_no_release_changes_syntax() -> None:
    """The ELS statements silonet types read the same in every release that has them: prepare
    renders one batch for an old and a new platform alike."""
    desired = _state({("p1", 100): 5000})
    old = read.version("<product-model>qfx5100-48s-6q</product-model><junos-version>14.1X53-D40.8</junos-version>")
    new = read.version("<product-model>qfx5120-48y</product-model><junos-version>23.4R2.13</junos-version>")
    batches = [render_batch(D, diff(desired, GatewayState()), Target("gw-a", "198.18.0.1", ("p1",), (), platform=p),
                            GatewayState(), desired) for p in (old, new, None)]
    assert batches[0] == batches[1] == batches[2]


def test_device_facts_keep_what_the_parser_read() -> None:
    facts = device_facts(D, _parse([], ["set interfaces p1 unit 0 family inet address 198.18.1.1/31"]).facts)
    assert facts.ports == frozenset({"p2", "p3"}) and not facts.bare_vnis
