"""The ``eos`` dialect against what real switches say (issue 19): the release read from captured
``show version | json`` answers chooses the VLAN->VNI mapping syntax (``vxlan vlan add|remove``
from EOS 4.21, pyeapi PR #188; ``vxlan vlan V vni N`` / ``no vxlan vlan V vni`` before, pyeapi
0.8.3), mappings EOS made for EVPN (``vlanToVniMap.<vlan>.source == "evpn"``) and VRF VNIs are
someone else's, and an answer that Vxlan1 does not exist is a fault, not a failed read."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from silonet.drivers.base import Platform, wait_connected
from silonet.drivers.report import load_case as load_capture
from silonet.drivers.ssh.dialect import Target, dialects, render_batch
from silonet.drivers.ssh.dialects import eos
from silonet.drivers.ssh.driver import SshDriver, interpret, replay
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ownership import restrict
from tests.drivers.ssh.fakecli import FakeCli
from tests.drivers.ssh.golden import load_case
from tests.drivers.ssh.test_protocol import CHATTER, EMPTY, MODES, _gateway

CORPUS = Path(__file__).parent / "corpus" / "eos"
EOS = dialects()["eos"]
GW = Target("gw-a", "198.18.0.1", ("p1",))


def _captured(case: str) -> Platform:
    """The platform the SSH driver reads from a corpus case's captured ``show version | json``."""
    capture = load_capture(CORPUS / case)
    found = replay(EOS, Target("gw", ""), capture.outputs).platform
    assert found is not None
    return found


def _render(case: str, found: Platform | None) -> list[str]:
    target, actual, desired = load_case(case)
    return render_batch(EOS, diff(desired, actual), replace(target, platform=found), actual, desired, generation=1)


# ------------------------------------------------------------------ the release, from captured answers
@pytest.mark.parametrize(("case", "model", "numbers"), [
    ("pyeapi-vxlan-multicast", "DCS-7048T-A-F", (4, 14, 1, 2055159)),
    ("suzieq-veos-no-vxlan", "vEOS", (4, 23, 5)),
    ("napalm-ceos-vlans", "cEOSLab", (4, 30, 0, 31408673, 4300)),
])
def test_the_release_is_read_from_captured_show_version(case: str, model: str, numbers: tuple[int, ...]) -> None:
    found = _captured(case)
    assert (found.model, found.version) == (model, numbers)


def test_a_release_before_4_21_maps_and_unmaps_in_the_old_syntax() -> None:
    """EOS 4.14 (pyeapi's captured switch): ``vxlan vlan V vni N`` and ``no vxlan vlan V vni``
    (pyeapi 0.8.3 ``update_vlan``/``remove_vlan``), never the add/remove words it does not know."""
    old = _captured("pyeapi-vxlan-multicast")
    added, removed = _render("add-vni", old), _render("remove-vni", old)
    assert "   vxlan vlan 100 vni 5000" in added and "   no vxlan vlan 100 vni" in removed
    assert not [line for line in added + removed if "vxlan vlan add" in line or "vxlan vlan remove" in line]


@pytest.mark.parametrize("case", ["suzieq-veos-no-vxlan", "napalm-ceos-vlans"])
def test_a_release_from_4_21_maps_and_unmaps_with_add_and_remove(case: str) -> None:
    """EOS 4.23 and 4.30 (captured): ``vxlan vlan add|remove V vni N`` only. Once a switch holds a
    mapping in range syntax the old words are refused (pyeapi PR #188, issue #186)."""
    new = _captured(case)
    added, removed = _render("add-vni", new), _render("remove-vni", new)
    assert "   vxlan vlan add 100 vni 5000" in added and "   vxlan vlan remove 100 vni 5000" in removed
    old = ("vxlan vlan 100 vni 5000", "no vxlan vlan 100 vni")
    assert not [line for line in added + removed if line.strip() in old]


@pytest.mark.parametrize(("version", "new"), [("4.20.15M", False), ("4.21.0F", True), ("4.21.3F", True),
                                              ("5.0.1", True), ("4.9.9", False)])
def test_the_boundary_is_4_21(version: str, new: bool) -> None:
    found = eos.version(json.dumps({"modelName": "vEOS-lab", "version": version}))
    assert eos.add_remove(found) is new
    assert eos.add_remove(None)  # no release known (tests only): the newest syntax


def test_a_swap_unmaps_first_in_the_syntax_of_the_release() -> None:
    """Two VLANs trading VNIs: ``begin.j2`` unmaps both before either is remapped, in each syntax."""
    actual = GatewayState({5000: LogicalSwitch(5000, "a", frozenset()), 5001: LogicalSwitch(5001, "b", frozenset())},
                          {("p1", 100): 5000, ("p1", 101): 5001})
    desired = GatewayState(actual.logical_switches, {("p1", 100): 5001, ("p1", 101): 5000})
    ops = diff(desired, actual)

    def lines(found: Platform | None) -> list[str]:
        return render_batch(EOS, ops, Target("gw-a", "198.18.0.1", ("p1",), (), found), actual, desired, 1)

    new, old = lines(None), lines(_captured("pyeapi-vxlan-multicast"))
    assert new[1:5] == ["interface Vxlan1", "   vxlan vlan remove 100 vni 5000",
                        "interface Vxlan1", "   vxlan vlan remove 101 vni 5001"]
    assert old[1:5] == ["interface Vxlan1", "   no vxlan vlan 100 vni", "interface Vxlan1", "   no vxlan vlan 101 vni"]


# ------------------------------------------------------------------ what the switch made is not silonet's
def _vxlan(vni_map: dict, vrf_map: dict | None = None, source: str = "198.18.0.1") -> str:
    return json.dumps({"interfaces": {"Vxlan1": {"srcIpAddr": source, "vlanToVniMap": vni_map,
                                                 "vrfToVniMap": vrf_map or {}, "vlanToVtepList": {}}}})


def _read(vxlan: str, vlans: dict[int, str]) -> tuple[GatewayState, object, dict]:
    outputs = {eos.SHOW_VXLAN: vxlan,
               eos.SHOW_VLAN: json.dumps({"vlans": {str(v): {"name": n, "dynamic": False} for v, n in vlans.items()}}),
               eos.SHOW_SWITCHPORT: json.dumps({"switchports": {"p1": {"switchportInfo": {
                   "mode": "trunk", "trunkAllowedVlans": "ALL"}}}})}
    actual = interpret(EOS, GW, EOS.parse(outputs, GW))
    return actual.owned, actual.facts, actual.faults


def test_mappings_evpn_made_and_vrf_vnis_are_foreign() -> None:
    """As ``show interfaces Vxlan1 | json`` prints them on an EVPN VTEP (the shape a driver written
    against real EOS reads: Connectria/autonet-arista autonet_arista/eos/tasks/vxlan.py skips
    ``source == 'evpn'`` mappings, "observed L3 VNIs from EVPN", and reads ``vrfToVniMap`` as VRF ->
    VNI): the static mapping of a silonet VLAN is silonet's; the mapping EOS made for a VRF is not,
    even on a VLAN named like silonet's; the VRF's VNI is taken."""
    owned, facts, faults = _read(
        _vxlan({"100": {"vni": 5000, "source": "static"}, "4094": {"vni": 20000, "source": "evpn"},
                "4093": {"vni": 20001, "source": "evpn"}},
               {"red": 20000, "blue": 20001, "green": 20002}),
        {100: "silonet-cust-42", 4093: "silonet-look-alike"})
    assert owned == GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset())}, {("p1", 100): 5000})
    assert facts.foreign_vnis == {20000: "VLAN4094", 20001: "silonet-look-alike", 20002: "vrf green"}
    assert facts.foreign_bindings == {("p1", 4093): "silonet-look-alike", ("p1", 4094): "VLAN4094"}
    assert faults == {}
    # silonet asking for a VRF's VNI gets a reason, not a mapping
    desired = GatewayState({20002: LogicalSwitch(20002, "mine", frozenset())}, {("p1", 200): 20002})
    effective, failures = restrict(desired, facts)
    assert effective.bindings == {}
    assert "VNI 20002 is held by foreign logical switch 'vrf green'" in failures[("p1", 200)]


def test_a_mapping_without_source_or_with_an_empty_one_is_configuration() -> None:
    """Older releases print no ``source`` (pyeapi's 4.14 capture has no mapping to show it), and a
    partial real capture shows ``"source": ""`` beside ``evpn`` (Connectria/autonet-arista
    autonet_arista/eos/tasks/tests/conftest.py): both are configured mappings."""
    owned, facts, _ = _read(_vxlan({"100": {"vni": 5000}, "101": {"vni": 5001, "source": ""}}),
                            {100: "silonet-a", 101: "silonet-b"})
    assert set(owned.logical_switches) == {5000, 5001} and facts.foreign_vnis == {}


def test_the_tunnel_source_is_reported_and_an_unset_one_is_not() -> None:
    outputs = {eos.SHOW_VXLAN: _vxlan({}, source="0.0.0.0"), eos.SHOW_VLAN: '{"vlans": {}}',
               eos.SHOW_SWITCHPORT: '{"switchports": {}}'}
    assert EOS.parse(outputs, GW).vtep_ip is None
    outputs[eos.SHOW_VXLAN] = _vxlan({}, source="198.18.0.9")
    actual = interpret(EOS, GW, EOS.parse(outputs, GW))
    assert actual.vtep_ip == "198.18.0.9"
    assert actual.faults == {"switch": ["the device's VTEP source address is 198.18.0.9, the inventory says "
                                        "198.18.0.1"]}


def test_an_answer_that_vxlan1_does_not_exist_is_a_fault_and_other_text_fails_the_read() -> None:
    outputs = {eos.SHOW_VXLAN: "% Interface does not exist", eos.SHOW_VLAN: '{"vlans": {}}',
               eos.SHOW_SWITCHPORT: '{"switchports": {}}'}
    parsed = EOS.parse(outputs, GW)
    assert parsed.faults == {"switch": ["interface Vxlan1 is not configured (the switch says "
                                        "'% Interface does not exist')"]}
    outputs[eos.SHOW_VXLAN] = "gw-a#"
    with pytest.raises(ValueError, match="no JSON object"):
        EOS.parse(outputs, GW)


# ------------------------------------------------------------------ over SSH: asked once, then obeyed
def test_over_ssh_an_old_release_gets_the_old_syntax_and_the_release_is_asked_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake EOS CLI answering ``show version | json`` as pyeapi's captured 4.14 switch did: the
    driver asks it once per connection, before the show commands, and types ``vxlan vlan V vni N``."""
    prompt, modes = MODES["eos"]
    version = (CORPUS / "pyeapi-vxlan-multicast" / "show_version_json.txt").read_text()
    cli = FakeCli(tmp_path, prompt=prompt, modes=modes,
                  show={**CHATTER["eos"], **dict(zip(EOS.show, EMPTY["eos"], strict=True)), eos.VERSION: version})
    _target, actual, desired = load_case("add-vni")

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("eos", cli), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                read = await driver.read()
                assert read.platform is not None and read.platform.version[:2] == (4, 14)
                await driver.read()
                assert cli.lines.count(eos.VERSION) == 1 and cli.lines.index(eos.VERSION) < cli.lines.index(EOS.show[0])
                mark = len(cli.lines)
                await driver.apply(diff(desired, actual))
                typed = cli.lines[mark:]
                assert "   vxlan vlan 100 vni 5000" in typed and not [x for x in typed if "vxlan vlan add" in x]
            finally:
                await driver.close()

    asyncio.run(scenario())
