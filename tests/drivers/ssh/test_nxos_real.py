"""The nxos dialect on what real NX-OS switches print (issue 19): each fix against the capture
that showed it (tests/drivers/ssh/corpus/nxos), then small variations of that output.

- L3 VNIs (``L3 [<vrf>]`` rows, ``member vni N associate-vrf``) are someone else's, not dropped;
- ``member vni A-B`` ranges are members, and the lines after one apply to each of its VNIs;
- VLAN IDs are read from ``vlanshowbr-vlanid-utf`` (``vlanshowbr-vlanid`` may be encoded);
- a foreign VLAN or SVI in the translated range refuses the VNIs that translate onto it;
- an nve1 with ``host-reachability protocol bgp`` takes no static ingress replication: a fault,
  every new binding refused, and no batch creates a VNI there;
- the platform from ``show version | json``; the tunnel source from nve1's loopback; the
  foreign VLANs a trunk carries as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from silonet.drivers.report import load_case
from silonet.drivers.ssh.dialect import Target, dialects, render_batch
from silonet.drivers.ssh.dialects.nxos import read
from silonet.drivers.ssh.driver import interpret, replay
from silonet.errors import DeviceError
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ownership import restrict

NXOS = dialects()["nxos"]
CORPUS = Path(__file__).parent / "corpus" / "nxos"
GW = Target("gw-a", "198.18.0.1", ("p1",))
VLAN1 = {"vlanshowbr-vlanid": "1", "vlanshowbr-vlanid-utf": "1", "vlanshowbr-vlanname": "default"}
TRUNK = "interface p1\n  switchport\n  switchport mode trunk\n  switchport trunk allowed vlan 1\n"
NVE = "interface nve1\n  no shutdown\n  source-interface loopback0\n"


def _vlans(*rows: dict) -> str:
    return json.dumps({"TABLE_vlanbriefxbrief": {"ROW_vlanbriefxbrief": [VLAN1, *rows]}})


def _vlan(vlan: int, name: str) -> dict:
    return {"vlanshowbr-vlanid": str(vlan), "vlanshowbr-vlanid-utf": str(vlan), "vlanshowbr-vlanname": name}


def _nve_rows(*rows: tuple[int, str]) -> str:
    return json.dumps({"TABLE_nve_vni": {"ROW_nve_vni": [{"if-name": "nve1", "vni": str(v), "type": t}
                                                         for v, t in rows]}})


def _read(vlans: str = "", nve: str = "", run: str = TRUNK + NVE, gw: Target = GW):
    return interpret(NXOS, gw, NXOS.parse({read.SHOW_VLAN: vlans or _vlans(), read.SHOW_NVE: nve,
                                           read.SHOW_RUN: run}, gw))


def _case(name: str):
    case = load_case(CORPUS / name)
    t = case.target
    return replay(NXOS, Target(t["name"], t.get("vtep_ip") or "", tuple(t.get("ports", ()))), case.outputs)


# ---------------------------------------------------------------- L3 VNIs
def test_the_l3_vni_of_a_captured_evpn_leaf_is_foreign() -> None:
    """suzieq leaf04: ``L3 [evpn-vrf]`` (VNI 999) was dropped before, as if the VNI were free."""
    got = _case("suzieq-leaf04-9.3-evpn-vpc")
    assert got.facts.foreign_vnis == {20: "VLAN0020", 30: "VLAN0030", 999: "vrf evpn-vrf"}
    effective, failures = restrict(GatewayState({999: LogicalSwitch(999, "cust", frozenset())}, {("p1", 5): 999}),
                                   got.facts)
    assert not effective.logical_switches and "foreign logical switch 'vrf evpn-vrf'" in failures[("p1", 5)]


def test_an_associate_vrf_member_the_table_does_not_list_is_foreign() -> None:
    got = _read(nve="", run=TRUNK + NVE + "  member vni 50001 associate-vrf\n  member vni 7000\n")
    assert got.facts.foreign_vnis == {50001: "L3 (associate-vrf)", 7000: "L2 (nve1 member)"}


# ---------------------------------------------------------------- member ranges
def test_a_captured_member_range_is_every_vni_of_it() -> None:
    got = _case("genie-7.0.3-I7-4-nve-ranges")
    assert sorted(got.facts.foreign_vnis) == [*range(2000002, 2000011), *range(3003002, 3003011)]


def test_peers_after_a_range_go_to_its_vnis_not_to_the_member_before_it() -> None:
    """Before: ``member vni A-B`` did not match, so its ``peer-ip`` lines were credited to silonet's
    VNI 5000 printed just before it, and silonet would have removed them from the switch."""
    run = TRUNK + NVE + ("  member vni 5000\n    ingress-replication protocol static\n      peer-ip 198.18.0.2\n"
                         "  member vni 7001-7003\n    ingress-replication protocol static\n      peer-ip 198.18.0.9\n")
    got = _read(_vlans(_vlan(3064, "silonet-cust-42")), _nve_rows((5000, "L2 [3064]")), run)
    assert got.owned.logical_switches[5000].flood == frozenset({"198.18.0.2"})
    assert sorted(got.facts.foreign_vnis) == [7001, 7002, 7003]
    nve = read.nve_config(read.running_interfaces(run)["nve1"], [])
    assert nve.peers[7002] == {"198.18.0.9"}


@pytest.mark.parametrize("line", ["member vni 9-3", "member vni 1-16777215", "member vni 0", "member vni 5000 foo"])
def test_a_member_line_that_is_not_one_is_a_fault_and_its_peers_go_nowhere(line: str) -> None:
    run = TRUNK + NVE + f"  member vni 5000\n  {line}\n    peer-ip 198.18.0.9\n"
    got = _read(_vlans(_vlan(3064, "silonet-cust-42")), _nve_rows((5000, "L2 [3064]")), run)
    assert got.owned.logical_switches[5000].flood == frozenset()
    assert any("cannot read" in f and "member vni" in f for f in got.faults["switch"])


# ---------------------------------------------------------------- VLAN IDs
def test_the_vlan_id_is_read_from_the_utf_key() -> None:
    """The cisco.nxos fixture: ``vlanshowbr-vlanid`` 16777216, ``-utf`` 1 (before: a VLAN 16777216)."""
    got = _case("cisco-nxos-vlan-brief-encoded-id")
    assert got.faults == {"switch": ["interface nve1 is not configured"]}
    encoded = json.dumps({"TABLE_vlanbriefxbrief": {"ROW_vlanbriefxbrief": [
        {"vlanshowbr-vlanid": 50331648, "vlanshowbr-vlanid-utf": 3064, "vlanshowbr-vlanname": "silonet-cust-42"}]}})
    owned = _read(encoded, _nve_rows((5000, "L2 [3064]"))).owned
    assert owned.logical_switches[5000].network == "cust-42"


def test_a_vlan_id_that_is_not_one_is_a_fault() -> None:
    bad = json.dumps({"TABLE_vlanbriefxbrief": {"ROW_vlanbriefxbrief": [{"vlanshowbr-vlanid-utf": "70000"}]}})
    assert any("VLAN ID '70000' is not a VLAN" in f for f in _read(bad).faults["switch"])


def test_show_vlan_json_rows_still_read() -> None:
    old = json.dumps({"TABLE_vlanbrief": {"ROW_vlanbrief": _vlan(3064, "silonet-cust-42")}})
    assert 5000 in _read(old, _nve_rows((5000, "L2 [3064]"))).owned.logical_switches


# ---------------------------------------------------------------- the translated range
def test_a_captured_svi_in_the_range_refuses_the_vnis_that_translate_onto_it() -> None:
    """suzieq leaf04's ``interface Vlan3960`` (vPC underlay over the peer-link) is VLAN 3960 = T(1960):
    VNI 1960 (and 1960 + 1968k) is refused, binding by binding; VNI 1961 is not; nothing is
    written onto VLAN 3960 (before: a fault at most, and the VLAN renamed and given a vn-segment)."""
    got = _read(run=TRUNK + NVE + "interface Vlan3960\n  no shutdown\n  ip address 169.254.1.1/31\n")
    assert any("interface Vlan3960 (an SVI)" in f for f in got.faults["switch"])
    desired = GatewayState({1960: LogicalSwitch(1960, "a", frozenset()), 3928: LogicalSwitch(3928, "b", frozenset()),
                            1961: LogicalSwitch(1961, "c", frozenset())},
                           {("p1", 10): 1960, ("p1", 11): 3928, ("p1", 12): 1961})
    effective, failures = restrict(desired, got.facts)
    assert sorted(failures) == [("p1", 10), ("p1", 11)]
    assert "would translate to VLAN 3960, which interface Vlan3960 (an SVI) holds" in failures[("p1", 10)]
    assert list(effective.logical_switches) == [1961]
    lines = render_batch(NXOS, diff(effective, got.owned), GW, got.owned, effective, facts=got.facts)
    assert "vlan 3961" in lines and not any("3960" in line for line in lines)


def test_a_foreign_vlan_in_the_range_refuses_but_silonet_keeps_its_own() -> None:
    vlans = _vlans(_vlan(2500, "lab"), _vlan(3064, "silonet-cust-42"))
    got = _read(vlans, _nve_rows((5000, "L2 [3064]")))
    desired = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset()),
                            500: LogicalSwitch(500, "x", frozenset())}, {("p1", 100): 5000, ("p1", 101): 500})
    effective, failures = restrict(desired, got.facts)
    assert list(failures) == [("p1", 101)] and "VLAN 2500 'lab'" in failures[("p1", 101)]
    assert effective.bindings == {("p1", 100): 5000}


def test_a_bare_new_vni_onto_a_taken_vlan_is_not_written() -> None:
    got = _read(_vlans(_vlan(2500, "lab")))
    desired = GatewayState({500: LogicalSwitch(500, "x", frozenset())}, {})
    with pytest.raises(DeviceError) as err:
        render_batch(NXOS, diff(desired, GatewayState()), GW, GatewayState(), desired, facts=got.facts)
    assert "VNI 500" in err.value.fields["reason"] and "nothing was sent" in err.value.fields["reason"]


# ---------------------------------------------------------------- BGP EVPN
def test_a_captured_bgp_evpn_nve1_is_a_fault_and_refuses_every_new_binding() -> None:
    got = _case("suzieq-leaf04-9.3-evpn-vpc")
    assert any("host-reachability protocol bgp" in f for f in got.faults["switch"])
    key = ("port-channel1", 100)
    desired = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {key: 5000})
    effective, failures = restrict(desired, got.facts)
    assert effective == GatewayState() and "ingress-replication protocol static" in failures[key]


def test_on_bgp_evpn_no_batch_creates_a_vni_and_silonets_own_stay() -> None:
    run = TRUNK + "interface nve1\n  host-reachability protocol bgp\n  member vni 5000\n"
    got = _read(_vlans(_vlan(3064, "silonet-cust-42")), _nve_rows((5000, "L2 [3064]")), run)
    kept = GatewayState(dict(got.owned.logical_switches), {("p1", 100): 5000})
    assert restrict(kept, got.facts) == (kept, {})  # what silonet already has is not torn down
    new = GatewayState({5001: LogicalSwitch(5001, "cust-43", frozenset())}, {})
    with pytest.raises(DeviceError) as err:
        render_batch(NXOS, diff(new, GatewayState()), GW, GatewayState(), new, facts=got.facts)
    assert "host-reachability protocol bgp" in err.value.fields["reason"]


# ---------------------------------------------------------------- version, source, trunks
def test_the_version_of_both_json_trains() -> None:
    assert _case("suzieq-leaf04-9.3-evpn-vpc").platform.version == (9, 3, 4)
    old = _case("napalm-nxosv-7.3-version").platform
    assert (old.model, old.text, old.version) == ("NX-OSv Chassis", "7.3(1)D1(1)", (7, 3, 1, 1, 1))
    assert old.at_least(7, 3) and not old.at_least(9)


@pytest.mark.parametrize("answer", ["", "% Invalid command at '^' marker.", '{"chassis_id": "x"}', '["9.3(4)"]'])
def test_an_answer_without_a_version_is_refused(answer: str) -> None:
    with pytest.raises(ValueError):
        read.read_version(answer)


def test_the_tunnel_source_is_nve1s_loopback_and_a_mismatch_is_a_fault() -> None:
    run = TRUNK + NVE + "interface loopback0\n  ip address 198.18.0.9/32\n  ip address 198.18.0.99/32 secondary\n"
    got = _read(run=run)
    assert got.vtep_ip == "198.18.0.9"
    assert "the device's VTEP source address is 198.18.0.9, the inventory says 198.18.0.1" in got.faults["switch"]


def test_a_trunk_carries_the_foreign_vlans_its_allowed_list_names() -> None:
    run = ("interface p1\n  switchport mode trunk\n  switchport trunk allowed vlan 1,200-210\n"
           "  switchport trunk allowed vlan add 3064\n  switchport vlan mapping enable\n"
           "  switchport vlan mapping 100 3064\n" + NVE)
    got = _read(_vlans(_vlan(205, "servers"), _vlan(300, "other"), _vlan(3064, "silonet-cust-42")),
                _nve_rows((5000, "L2 [3064]")), run)
    assert got.owned.bindings == {("p1", 100): 5000}
    assert got.facts.foreign_bindings == {("p1", 1): "default", ("p1", 205): "servers"}


@pytest.mark.parametrize(("inventory", "fault"), [("10.0.0.134", False), ("10.0.0.204", False), ("10.0.0.9", True)])
def test_a_vpc_members_anycast_vtep_is_its_sources_secondary_address(inventory: str, fault: bool) -> None:
    """suzieq's leaf04 (NX-OS 9.3, vPC): nve1's loopback1 has 10.0.0.204 (the member's own) and
    10.0.0.134 secondary, the anycast VTEP both vPC members share. A pair member declared with the
    anycast address, or a gateway with the primary, reads without a fault; any other address faults."""
    case = load_case(CORPUS / "suzieq-leaf04-9.3-evpn-vpc")
    actual = replay(NXOS, Target("leaf04", inventory, ()), case.outputs)
    faults = actual.faults.get("switch", [])
    assert any("VTEP source address" in f for f in faults) == fault, faults
    if not fault:
        assert actual.vtep_ip == inventory
