"""Gateway pairs in the lab, without root: topology rules, layout (anycast address, pair MAC, mixed
drivers, the dual-homed ToR's names), inventory shape, the gratuitous ARP frame, and the fault
command's refusals (all checked before anything is touched)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from silonet.cli.lab import lab_app
from silonet.lab import GatewaySpec, Group, Host, Lab, LabError, LabTopology, PortRef, Silo, Tor, paper_topology
from silonet.lab.build import bridge_commands
from silonet.lab.fault import garp_frame
from silonet.lab.layout import SHORT_RE, build_layout, tor_short
from silonet.lab.state import StateFile
from silonet.service.topology import parse_topology

# One pair silo with a dual-homed ToR, one unpaired gateway; the pair's first member is the
# second gateway, so its anycast address is .2 and, in a mixed lab, its driver ssh.
TOPO = LabTopology("pairs", (GatewaySpec("gw-u", "su"), GatewaySpec("gw-a", "sp", pair="pp"),
                             GatewaySpec("gw-b", "sp", pair="pp")), (
    Silo("sp", "paas", (Group("gp", (Tor("pp", "p1", (Host("h500", 500, "203.0.113.1"),
                                                        Host("h501", 501, "203.0.113.2")), "pp-tor"),)),)),
    Silo("su", "kvm", (Group("gu", (Tor("gw-u", "p1", (Host("hu", 0, "203.0.113.3"),)),)),)),
))


def _data() -> dict[str, Any]:
    return TOPO.to_dict()


def _bad(data: dict[str, Any], message: str) -> None:
    with pytest.raises(LabError, match=re.escape(message)):
        LabTopology.from_dict(data, "t.yaml")


def test_pair_rules_name_the_place() -> None:
    TOPO.validate()
    d = _data()
    third = {**d, "gateways": [*d["gateways"], {"name": "gw-c", "silo": "sp", "pair": "pp"}]}
    _bad(third, "t.yaml: pair 'pp' has 3 gateway(s) (gw-a, gw-b, gw-c): a pair has exactly two members")
    alone = {**d, "gateways": [d["gateways"][0], d["gateways"][1], {"name": "gw-b", "silo": "sp"}]}
    _bad(alone, "pair 'pp' has 1 gateway(s) (gw-a)")
    two_silos = {**d, "gateways": [d["gateways"][0], d["gateways"][1], {"name": "gw-b", "silo": "su", "pair": "pp"}]}
    _bad(two_silos, "pair 'pp': gateways 'gw-a' (silo 'sp') and 'gw-b' (silo 'su') must be in one silo")
    no_silo = {**d, "gateways": [d["gateways"][0], d["gateways"][1], {"name": "gw-b", "pair": "pp"}]}
    _bad(no_silo, "pair 'pp': gateway 'gw-b' names no silo")
    like_gateway = yaml.safe_load(yaml.safe_dump(d).replace("pp", "gw-u"))
    _bad(like_gateway, "pair 'gw-u' is also a gateway's name")
    bad_name = yaml.safe_load(yaml.safe_dump(d).replace("pp", "P_P"))
    _bad(bad_name, "pair name 'P_P' (gateway 'gw-a') must be 1..15 lowercase letters")
    unknown = yaml.safe_load(yaml.safe_dump(d).replace("gateway: pp", "gateway: qq"))
    _bad(unknown, "group 'gp': ToR 'pp-tor': gateway 'qq' is not in the topology, nor a pair of it")
    with_sb = yaml.safe_load(yaml.safe_dump(d))
    with_sb["silos"][0]["groups"][0]["switchback"] = [{"gateway": "gw-a", "port": "p48"}]
    _bad(with_sb, "ToR 'pp-tor' is dual-homed to pair 'pp' and cannot share a group with a switch-back")
    clash = yaml.safe_load(yaml.safe_dump(d))
    clash["silos"][1]["groups"][0]["tors"].append({"gateway": "gw-a", "port": "p1", "hosts": []})
    _bad(clash, "duplicate gateway port 'gw-a:p1'")


def test_round_trip_keeps_pairs(tmp_path: Path) -> None:
    d = TOPO.to_dict()
    assert [g.get("pair") for g in d["gateways"]] == [None, "pp", "pp"]
    assert "pair" not in d["gateways"][0], "an unpaired gateway's YAML stays as it was"
    assert LabTopology.from_dict(yaml.safe_load(yaml.safe_dump(d))) == TOPO
    paper = paper_topology()
    assert LabTopology.from_dict(paper.to_dict()) == paper
    assert paper.pairs() == {"paas": ("gw-pa", "gw-pb")}
    assert paper.uplinks(paper.silos[-1].groups[0].tors[0]) == (PortRef("gw-pa", "p1"), PortRef("gw-pb", "p1"))
    assert [g.name for g in paper.gateways[:5]] == ["gw-va", "gw-vb1", "gw-vb2", "gw-kvm", "gw-bm"]


def test_layout_shares_the_anycast_address_and_mac(tmp_path: Path) -> None:
    layout = build_layout("tp", 3, tmp_path, TOPO.resolved())
    u, a, b = layout.gateways
    assert u.vtep_ip == "198.18.6.1" and u.pair is None and u.pair_mac is None
    assert a.vtep_ip == b.vtep_ip == "198.18.6.2", "the first member's underlay address, for both"
    assert (a.mgmt_ip, b.mgmt_ip) == ("198.18.7.2", "198.18.7.3"), "each keeps its own management address"
    assert a.pair_mac == b.pair_mac == "02:aa:c6:12:06:02"
    (pair,) = layout.pairs
    assert (pair.name, pair.members, pair.vtep_ip, pair.mac, pair.tors) == (
        "pp", ("gw-a", "gw-b"), "198.18.6.2", "02:aa:c6:12:06:02", ("pp-tor",))
    assert pair.partner("gw-a") == "gw-b" and pair.partner("gw-b") == "gw-a"
    assert a.vtep_ports == b.vtep_ports == ["p1"] and a.front_ports == ["p1"]
    assert a.inventory_ports == [{"name": "p1", "switchback": False}]
    (tor,) = layout.dual_tors
    assert (tor.netns, tor.bridge, tor.dir) == ("tp-pp-tor", "pp-tor", tmp_path / "tp" / "pp-tor")
    assert [tor.uplink_if(m) for m in tor.members] == ["upa", "upb"]
    assert layout.switch("pp-tor") is tor and layout.switch("gw-a") is a
    assert layout.netns() == ["tp-ul", "tp-gw-u", "tp-gw-a", "tp-gw-b", "tp-pp-tor", "tp-hu", "tp-h500", "tp-h501"]
    h500 = layout.host("h500")
    assert (h500.gateway, h500.tor_netns, h500.tor_port) == ("pp", "tp-pp-tor", "h500")
    assert layout.host("hu").tor_netns == "tp-gw-u"
    cmds = " ".join(bridge_commands(a))
    assert "set Bridge br-ul other_config:hwaddr=02:aa:c6:12:06:02" in cmds and "add-port gw-a p1" in cmds
    assert "hwaddr" not in " ".join(bridge_commands(u))


def test_mixed_lab_gives_a_pair_its_first_members_driver(tmp_path: Path) -> None:
    mixed = build_layout("tp", 3, tmp_path, TOPO.resolved(), "mixed")
    assert [(g.name, g.driver, g.sshd) for g in mixed.gateways] == [
        ("gw-u", "ovsdb", True), ("gw-a", "ssh", True), ("gw-b", "ssh", True)]  # gw-b alone would be ovsdb
    swapped = replace(TOPO, gateways=(TOPO.gateways[1], TOPO.gateways[0], TOPO.gateways[2]))
    assert [g.driver for g in build_layout("tp", 3, tmp_path, swapped.resolved(), "mixed").gateways] == [
        "ovsdb", "ssh", "ovsdb"]


def test_dual_homed_tor_names(tmp_path: Path) -> None:
    assert tor_short("pp-tor") == "pp-tor"
    long = "PaaS Rack.North-42"
    short = tor_short(long)
    assert short == tor_short(long) and SHORT_RE.match(short) and len(short) <= 15, short
    assert tor_short("PaaS Rack.North-43") != short, "the digest tells similar names apart"
    renamed = yaml.safe_load(yaml.safe_dump(TOPO.to_dict()).replace("name: pp-tor", f"name: {long}"))
    assert build_layout("tp", 3, tmp_path, LabTopology.from_dict(renamed)).dual_tors[0].netns == f"tp-{short}"
    like_gateway = yaml.safe_load(yaml.safe_dump(TOPO.to_dict()).replace("name: pp-tor", "name: gw-u"))
    with pytest.raises(LabError, match=re.escape("namespace name(s) tp-gw-u used twice")):
        build_layout("tp", 3, tmp_path, LabTopology.from_dict(like_gateway))
    upa = yaml.safe_load(yaml.safe_dump(TOPO.to_dict()).replace("name: h501", "name: upa"))
    with pytest.raises(LabError, match=re.escape("dual-homed ToR 'pp-tor': interface name(s) upa used twice")):
        build_layout("tp", 3, tmp_path, LabTopology.from_dict(upa))


def test_inventory_shape(tmp_path: Path) -> None:
    inv = Lab("tp", 3, tmp_path).inventory(TOPO)
    gws = {g["name"]: g for g in inv["gateways"]}
    assert "pair" not in gws["gw-u"]
    assert gws["gw-a"]["pair"] == gws["gw-b"]["pair"] == "pp"
    assert gws["gw-a"]["vtep_ip"] == gws["gw-b"]["vtep_ip"] == "198.18.6.2"
    assert gws["gw-a"]["management"] == {"driver": "ovsdb", "address": "tcp:198.18.7.2:6640"}
    assert gws["gw-b"]["management"] == {"driver": "ovsdb", "address": "tcp:198.18.7.3:6640"}
    assert gws["gw-b"]["ports"] == [{"name": "p1", "switchback": False}]
    groups = {g["name"]: g for g in inv["interface_groups"]}
    assert groups["gp"]["members"] == [{"gateway": "gw-a", "port": "p1"}, {"gateway": "gw-b", "port": "p1"}]
    assert groups["gu"]["members"] == [{"gateway": "gw-u", "port": "p1"}]
    topo = parse_topology(yaml.safe_dump(inv), "inventory")  # what `silonet apply -f` reads
    assert {g.name: g.pair for g in topo.gateways} == {"gw-u": None, "gw-a": "pp", "gw-b": "pp"}


def test_garp_frame() -> None:
    frame = bytes.fromhex(garp_frame("02:aa:c6:12:06:02", "198.18.6.2"))
    assert len(frame) == 60
    mac, ip = bytes.fromhex("02aac6120602"), bytes([198, 18, 6, 2])
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    assert frame[14:22] == bytes.fromhex("0001080006040001"), "Ethernet/IPv4 ARP request"
    assert frame[22:28] == mac and frame[28:32] == ip and frame[32:38] == bytes(6) and frame[38:42] == ip
    with pytest.raises(LabError, match="not a MAC"):
        garp_frame("02:aa", "198.18.6.2")


def _state(tmp_path: Path, phase: str, faulted: list[str]) -> Lab:
    lab = Lab("tp", 3, tmp_path)
    state = StateFile(lab.dir / "lab.json")
    state.create("tp", 3, TOPO.resolved().to_dict())
    state.set(phase=phase, active={"pp": "gw-a"}, faulted=faulted)
    return lab


def test_fault_refusals_touch_nothing(tmp_path: Path) -> None:
    """Every refusal comes before the first command: these run without root or a built lab."""
    lab = _state(tmp_path, "up", ["gw-b"])
    with pytest.raises(LabError, match=re.escape("gateway 'gw-b' is already down (a fault)")):
        lab.fault("gw-b", "down")
    with pytest.raises(LabError, match=re.escape("gateway 'gw-a' is not down")):
        lab.fault("gw-a", "up")
    with pytest.raises(LabError, match=re.escape("no gateway 'gw-x' in lab 'tp'")):
        lab.fault("gw-x", "down")
    with pytest.raises(LabError, match=re.escape("fault action 'reboot' must be one of down, up")):
        lab.fault("gw-a", "reboot")
    with pytest.raises(LabError, match=re.escape("gateway 'gw-b' is down (a fault)")):
        lab.start_daemon("gw-b", "ovs-vtep")
    assert StateFile(lab.dir / "lab.json").load()["faulted"] == ["gw-b"]
    half = _state(tmp_path / "half", "failed", [])
    with pytest.raises(LabError, match=re.escape("lab 'tp' is failed, not up")):
        half.fault("gw-a", "down")
    cli = CliRunner().invoke(lab_app, ["fault", "gw-a", "sideways", "--prefix", "tp", "--dir", str(tmp_path)])
    assert cli.exit_code != 0 and "sideways" in cli.output
    cli = CliRunner().invoke(lab_app, ["fault", "gw-a", "down", "--prefix", "zz", "--dir", str(tmp_path)])
    assert cli.exit_code != 0 and "lab 'zz' is not up" in str(cli.exception or cli.output)
