"""The sonic dialect against what real SONiC switches print and hold (issue 19): the release
``show version`` names, CONFIG_DB in both layouts, the EVPN pieces a switch must hold before
silonet can serve it (each missing one a switch fault), and the batch that makes the VTEP *and*
its EVPN NVO when the switch has none. The captured cases themselves are in
``corpus/sonic`` (read by test_corpus.py); the strings here are quoted from public captures."""

from __future__ import annotations

import json

import pytest

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import Target, dialects, render_batch
from silonet.drivers.ssh.dialects import sonic
from silonet.drivers.ssh.dialects.sonic.read import config_tables, evpn_vtep, too_old
from silonet.errors import DeviceError
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, diff
from tests.drivers.ssh.test_exec_dialects import GW, SonicModel

SONIC = dialects()["sonic"]
ONE_VNI = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset())}, {("p1", 100): 5000})


def _show_version(build: str, built: str = "Thu Nov 16 14:23:00 UTC 2023", sku: str = "Accton-AS7326-56X") -> str:
    """The head of ``show version`` as sonic-utilities show/main.py prints it (a blank line first)."""
    return (f"\nSONiC Software Version: {build}\nDistribution: Debian 11.8\nKernel: 5.10.0-18-2-amd64\n"
            f"Build commit: 8c08d87\nBuild date: {built}\nBuilt by: sonicbld@sonic-build-server\n\n"
            f"Platform: x86_64-accton_as7326_56x-r0\nHwSKU: {sku}\nASIC: broadcom\n")


# ---------------------------------------------------------------------- the release
@pytest.mark.parametrize(("build", "built", "release"), [
    ("SONiC.202311.1-8c08d87", "Thu Nov 16 14:23:00 UTC 2023", (202311, 1)),
    ("SONiC.20201231.39", "", (202012, 39)),  # sonic-mgmt docs/testbed/sai_quality
    ("SONiC.20230531.22", "", (202305, 22)),  # SONiC auditd HLD, "Tested device specs"
    ("SONiC.202405c.16350-int-20240926.071054", "", (202405, 16350)),  # an LLDP capture of a 202405c build
    ("SONiC.SONiC-AX-2210-202211.0-22072024", "", (202211, 0)),  # a vendor build naming its branch
    # master builds carry what master had when built
    ("SONiC.master.102109-392899682", "Mon May 23 19:34:41 UTC 2022", (202205,)),
    ("SONiC.master.39085-dirty-20210923.145659", "Thu Sep 23 14:56:59 UTC 2021", (202109,)),
    ("SONiC.HEAD.32-21ea29a", "Fri Mar 22 01:55:48 UTC 2019", (201903,)),  # sonic-utilities Command-Reference
])
def test_the_release_is_the_branch_or_for_master_the_build_month(build: str, built: str,
                                                                 release: tuple[int, ...]) -> None:
    found = SONIC.version(_show_version(build, built))
    assert found.version == release
    assert found.text == build and found.model == "Accton-AS7326-56X"


def test_a_version_answer_without_the_version_line_or_a_date_is_refused() -> None:
    with pytest.raises(ValueError, match="SONiC Software Version"):
        SONIC.version("Error: No such command \"version\".\n")
    with pytest.raises(ValueError, match="no release"):
        SONIC.version("SONiC Software Version: SONiC.dev-update.0-dirty\n")


def test_the_release_before_evpn_vxlan_is_a_switch_fault_and_gets_no_batch() -> None:
    old = SONIC.version(_show_version("SONiC.HEAD.32-21ea29a", "Fri Mar 22 01:55:48 UTC 2019"))
    new = SONIC.version(_show_version("SONiC.20201231.39", ""))
    assert too_old(old) is not None and too_old(new) is None and too_old(None) is None
    outputs = {sonic.CONFIG: "{}", sonic.REMOTE_VNI: ""}
    assert "before 202012" in SONIC.parse(outputs, Target("gw", "198.18.0.1", platform=old)).faults["switch"][0]
    assert SONIC.parse(outputs, Target("gw", "198.18.0.1", platform=new)).faults == {}
    ops = diff(ONE_VNI, GatewayState())
    with pytest.raises(DeviceError, match=r"before 202012.*nothing was sent"):
        render_batch(SONIC, ops, Target("gw", "198.18.0.1", ("p1",), platform=old), GatewayState(), ONE_VNI)
    for fine in (new, None):
        assert render_batch(SONIC, ops, Target("gw", "198.18.0.1", ("p1",), platform=fine), GatewayState(), ONE_VNI)


# ---------------------------------------------------------------------- CONFIG_DB
def test_config_db_reads_the_same_in_sonic_cfggen_and_redis_layouts() -> None:
    nested = {"VLAN": {"Vlan30": {"vlanid": "30"}}, "VLAN_MEMBER": {"Vlan30|Ethernet52": {"tagging_mode": "tagged"}},
              "VXLAN_TUNNEL": {"vtep": {"src_ip": "2.2.2.2"}}}
    flat = {"VLAN|Vlan30": {"vlanid": "30"}, "VLAN_MEMBER|Vlan30|Ethernet52": {"tagging_mode": "tagged"},
            # sonic-db-dump wraps the fields (sonic-utilities' mock config_db.json holds one such entry)
            "VXLAN_TUNNEL|vtep": {"expireat": 1602451533.2, "ttl": -0.001, "type": "hash",
                                  "value": {"src_ip": "2.2.2.2"}}}
    assert config_tables(json.dumps(nested)) == config_tables(json.dumps(flat)) == nested
    assert config_tables("") == {}
    with pytest.raises(ValueError, match="JSON object"):
        config_tables("[]")
    assert config_tables('{"VLAN": {"Vlan30": "not an object"}, "PORT|Ethernet0": 7}') == {"VLAN": {}}


def test_vnet_and_vrf_vnis_and_routed_vlans_are_foreign() -> None:
    db = {"VNET|Vnet_2000": {"vni": "2000", "vxlan_tunnel": "tunnel1"}, "VRF|Vrf1": {"vni": "1000"},
          "VRF|Vrf2": {"vni": "0"}, "VLAN_INTERFACE|Vlan100": {"vnet_name": "Vnet_2000"},
          "VLAN_INTERFACE|Vlan100|10.0.0.1/24": {}}
    parsed = SONIC.parse({sonic.CONFIG: json.dumps(db), sonic.REMOTE_VNI: ""}, Target("gw", "198.18.0.1", ("p1",)))
    assert parsed.facts.foreign_vnis == {1000: "VRF Vrf1", 2000: "VNET Vnet_2000"}
    assert parsed.facts.foreign_bindings == {("p1", 100): "Vlan100"}


# ---------------------------------------------------------------------- what the switch must hold
@pytest.mark.parametrize(("db", "vtep", "faults"), [
    ({}, None, []),  # nothing yet: the batch makes VTEP and NVO
    ({"VXLAN_TUNNEL": {"vtep": {"src_ip": "2.2.2.2"}}, "VXLAN_EVPN_NVO": {"nvo": {"source_vtep": "vtep"}}}, "vtep", []),
    ({"VXLAN_TUNNEL": {"vtep1": {"src_ip": "1.1.1.1"}}}, "vtep1", ["no EVPN NVO (VXLAN_EVPN_NVO) names VTEP vtep1"]),
    ({"VXLAN_TUNNEL": {"a": {"src_ip": "1.1.1.1"}, "b": {"src_ip": "1.1.1.2"}}}, None,
     ["no EVPN NVO (VXLAN_EVPN_NVO) names VTEP a, b", "2 VTEPs and no EVPN NVO naming one"]),
    ({"VXLAN_TUNNEL": {"vtep": {"src_ip": "2.2.2.2"}}, "VXLAN_EVPN_NVO": {"nvo": {"source_vtep": "gone"}}}, None,
     ["EVPN NVO nvo names VTEP gone, which is not a configured VTEP"]),
    # a point-to-point (VNET) tunnel is not a VTEP; the EVPN one is the NVO's
    ({"VXLAN_TUNNEL": {"a-p2p": {"src_ip": "1.1.1.1", "dst_ip": "1.1.1.9"}, "z": {"src_ip": "2.2.2.2"}},
      "VXLAN_EVPN_NVO": {"nvo": {"source_vtep": "z"}}}, "z", []),
])
def test_what_the_switch_lacks_for_silonet_is_a_switch_fault(db: dict, vtep: str | None, faults: list[str]) -> None:
    found: dict[str, list[str]] = {}
    assert evpn_vtep(db, found) == vtep
    got = found.get("switch", [])
    assert len(got) == len(faults) and all(f.startswith(want) for f, want in zip(got, faults, strict=True)), got


def test_the_vtep_source_is_the_evpn_vteps_and_a_silonet_map_elsewhere_is_a_fault() -> None:
    db = {"VLAN": {"Vlan100": {"vlanid": "100", "description": "silonet:cust-42"}},
          "VLAN_MEMBER": {"Vlan100|p1": {"tagging_mode": "tagged"}},
          "VXLAN_TUNNEL": {"other": {"src_ip": "198.19.0.9"}, "evpn": {"src_ip": "198.18.0.1"}},
          "VXLAN_EVPN_NVO": {"nvo": {"source_vtep": "evpn"}},
          "VXLAN_TUNNEL_MAP": {"other|map_5000_Vlan100": {"vlan": "Vlan100", "vni": "5000"}}}
    parsed = SONIC.parse({sonic.CONFIG: json.dumps(db), sonic.REMOTE_VNI: ""}, GW)
    assert parsed.vtep_ip == "198.18.0.1"
    assert parsed.owned.bindings == {("p1", 100): 5000}
    assert parsed.faults == {"switch": ["Vlan100 (silonet's) is mapped on VTEP other, not on the EVPN VTEP evpn"]}


def test_remote_vnis_read_from_a_testbed_grid() -> None:
    # NVIDIA's sonic-mgmt ngts SonicVxlanCli.check_vxlan_remotevni: "The typical output of the command"
    grid = ("+---------+--------------+--------+\n| VLAN    | RemoteVTEP   |    VNI |\n"
            "+=========+==============+========+\n| Vlan100 | 30.0.0.2     | 500100 |\n"
            "+---------+--------------+--------+\n| Vlan100 | 40.0.0.3     | 500100 |\n"
            "+---------+--------------+--------+\n| Vlan101 | 30.0.0.2     | 500101 |\n"
            "+---------+--------------+--------+\nTotal count : 3\n")
    assert sonic.remote_vnis(grid) == {500100: {"30.0.0.2", "40.0.0.3"}, 500101: {"30.0.0.2"}}


# ---------------------------------------------------------------------- the batch
def _apply(model: SonicModel, desired: GatewayState, cut: str | None = None) -> list[str]:
    parsed = SONIC.parse(model.outputs(), GW)
    ops = diff(desired, parsed.owned)
    lines = render_batch(SONIC, ops, GW, parsed.owned, apply_ops(parsed.owned, ops))
    upto = next(i for i, line in enumerate(lines) if cut in line) + 1 if cut else len(lines)
    model.run(" && ".join(lines[:upto]))
    return lines


def test_a_switch_without_a_vtep_gets_the_vtep_and_its_evpn_nvo_before_any_map() -> None:
    model = SonicModel()
    lines = _apply(model, ONE_VNI)
    vtep = next(i for i, line in enumerate(lines) if "config vxlan add" in line)
    nvo = next(i for i, line in enumerate(lines) if "config vxlan evpn_nvo add silonet" in line)
    assert vtep < nvo < next(i for i, line in enumerate(lines) if "config vxlan map add" in line)
    assert model.db["VXLAN_TUNNEL"] == {"silonet": {"src_ip": "198.18.0.1"}}
    assert model.db["VXLAN_EVPN_NVO"] == {"silonet": {"source_vtep": "silonet"}}
    parsed = SONIC.parse(model.outputs(), GW)
    assert parsed.faults == {} and parsed.vtep_ip == "198.18.0.1" and parsed.owned == ONE_VNI


def test_a_batch_cut_after_the_vtep_makes_the_nvo_on_the_next_pass() -> None:
    model = SonicModel()
    _apply(model, ONE_VNI, cut="config vxlan add")
    assert "VXLAN_EVPN_NVO" not in model.db or not model.db["VXLAN_EVPN_NVO"]
    assert "no EVPN NVO" in SONIC.parse(model.outputs(), GW).faults["switch"][0]
    _apply(model, ONE_VNI)
    assert model.db["VXLAN_EVPN_NVO"] == {"silonet": {"source_vtep": "silonet"}}
    assert SONIC.parse(model.outputs(), GW).faults == {}


def test_someone_elses_vtep_gets_no_nvo_from_silonet_and_the_nvos_vtep_carries_the_maps() -> None:
    bare = SonicModel()
    bare.db["VXLAN_TUNNEL"] = {"vtep": {"src_ip": "198.18.0.1"}}
    _apply(bare, ONE_VNI)
    assert not bare.db.get("VXLAN_EVPN_NVO") and "vtep|map_5000_Vlan100" in bare.db["VXLAN_TUNNEL_MAP"]
    evpn = SonicModel()  # the NVO's VTEP, not the first one, carries silonet's maps
    evpn.db["VXLAN_TUNNEL"] = {"a-vnet": {"src_ip": "198.19.0.9"}, "evpn": {"src_ip": "198.18.0.1"}}
    evpn.db["VXLAN_EVPN_NVO"] = {"nvo": {"source_vtep": "evpn"}}
    _apply(evpn, ONE_VNI)
    assert list(evpn.db["VXLAN_TUNNEL_MAP"]) == ["evpn|map_5000_Vlan100"]
    assert SONIC.parse(evpn.outputs(), GW).faults == {}


def test_the_dialect_asks_the_version_once_per_session_and_says_what_it_was_proven_on() -> None:
    assert SONIC.version_show == "show version" and SONIC.version_show not in SONIC.show
    assert "captured output" in SONIC.verified
    assert isinstance(SONIC.version(_show_version("SONiC.202311.1-8c08d87")), Platform)


@pytest.mark.parametrize(("build", "cli"), [("SONiC.20201231.39", False), ("SONiC.202106.1-abc", True),
                                            ("SONiC.202311.1-8c08d87", True), (None, True)])
def test_the_nvo_is_written_by_the_cli_where_the_cli_can(build: str | None, cli: bool) -> None:
    """``config vxlan evpn_nvo add`` died in a Traceback until sonic-utilities PR 1511 (March 2021):
    a 202012 switch gets the CONFIG_DB entry the command would have written."""
    found = SONIC.version(_show_version(build, "")) if build else None
    lines = render_batch(SONIC, diff(ONE_VNI, GatewayState()), Target("gw", "198.18.0.1", ("p1",), platform=found),
                         GatewayState(), ONE_VNI)
    nvo = [line for line in lines if "VXLAN_EVPN_NVO|silonet" in line or "evpn_nvo add" in line]
    assert len(nvo) == 1 and ("sudo config vxlan evpn_nvo add silonet" in nvo[0]) == cli
    assert cli or "sudo sonic-db-cli CONFIG_DB HSET 'VXLAN_EVPN_NVO|silonet' source_vtep \"$vtep\"" in nvo[0]


def test_a_gateway_port_in_routed_or_access_mode_is_unusable_and_others_are_not() -> None:
    """sonic-utilities refuses any member on a routed port and a tagged one on an access port
    (config/vlan.py): such a gateway port fails its bindings saying so; silonet never changes modes."""
    from silonet.drivers.ssh.dialects.sonic import port_modes

    db = {"PORT": {"Ethernet0": {"mode": "routed"}, "Ethernet4": {"mode": "access"}, "Ethernet8": {"mode": "trunk"},
                   "Ethernet12": {}, "Ethernet16": {"mode": "routed"}},
          "PORTCHANNEL": {"PortChannel1": {"mode": "routed"}}}
    got = port_modes(db, ("Ethernet0", "Ethernet4", "Ethernet8", "Ethernet12", "PortChannel1"))
    assert sorted(got) == ["Ethernet0", "Ethernet4", "PortChannel1"]  # Ethernet16 is not a gateway port
    assert "refuses any member" in got["Ethernet0"] and "refuses a tagged member" in got["Ethernet4"]
