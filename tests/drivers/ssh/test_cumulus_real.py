"""The ``cumulus`` dialect on what NVIDIA documents and real switches print (issue 19): the release
read from ``nv show system -o json`` and the ``mac-learning`` word chosen by it, both forms of that
word read back, NVUE's compressed keys, the VTEP an MLAG pair uses, and silonet managing its own
VNIs beside VXLAN configuration it does not own without touching it.

Captures quoted here are cited where they appear; the whole-device captures are the corpus cases
(tests/drivers/ssh/corpus/cumulus/)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from silonet.drivers.base import Platform, wait_connected
from silonet.drivers.report import load_case as load_capture
from silonet.drivers.ssh.dialect import Target, device_facts, dialects, render_batch
from silonet.drivers.ssh.dialects import cumulus
from silonet.drivers.ssh.driver import SshDriver, interpret, replay
from silonet.model import Gateway
from silonet.model.entities import Management, Port
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, diff
from silonet.plan.ownership import restrict
from tests.drivers.ssh.fakecli import FakeCli

CUMULUS = dialects()["cumulus"]
CORPUS = Path(__file__).parent / "corpus" / "cumulus"
GW = Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",))

# CumulusNetworks/docs content/cumulus-linux-56/System-Configuration/NVIDIA-User-Experience-NVUE/NVUE-API.md
# (commit 7bdd1fef7ac3b2e6cb9b077709b6d268b893ad00), "Replace an Entire Configuration", step 6: the
# REST object GET /nvue_v1/system returns, which `nv show system -o json` prints (the page: "The GET
# method ... is equivalent to the nv show commands"), and the `nv show system` table beside it.
SYSTEM_54_JSON = ('{\n "build": "Cumulus Linux 5.4.0",\n "hostname": "switch01",\n "timezone": "Etc/UTC",\n'
                  ' "uptime": 763\n}\n')
SYSTEM_54_TABLE = ("            operational          applied\n--------  -------------------  -------\n"
                   "hostname  switch01             cumulus\nbuild     Cumulus Linux 5.4.0\nuptime    0:12:59\n"
                   "timezone  Etc/UTC\n")
# CumulusNetworks/docs content/nvue-reference/Show-Commands/System.md (commit
# 26bd9f5a2fd77b06e3d5a3ac6a6930d51b907c6a), "nv show system".
SYSTEM_55_TABLE = ("          operational          applied\n--------  -------------------  -------\n"
                   "hostname  leaf01               leaf01 \nbuild     Cumulus Linux 5.5.0         \n"
                   "uptime    3 days, 18:40:31            \ntimezone  Etc/UTC\n")


def _nvue(tree: dict, ledger: dict | None = None) -> dict[str, str]:
    return {cumulus.CONFIG: json.dumps([{"header": {}}, {"set": tree}]), cumulus.INTERFACES: "{}",
            cumulus.LEDGER: json.dumps(ledger or {})}


def _vlan100(spec: dict, nve: dict | None = None) -> dict:
    return {"bridge": {"domain": {"br_default": {"vlan": {"100": {"vni": {"5000": spec}}}}}},
            "interface": {"p1": {"bridge": {"domain": {"br_default": {"vlan": {"100": {}}}}}}},
            **({"nve": {"vxlan": nve}} if nve else {})}


# ---------------------------------------------------------------------------- the release
@pytest.mark.parametrize(("answer", "text"), [(SYSTEM_54_JSON, "5.4.0"), (SYSTEM_54_TABLE, "5.4.0"),
                                              (SYSTEM_55_TABLE, "5.5.0")])
def test_the_release_is_read_from_what_nv_show_system_prints(answer: str, text: str) -> None:
    found = cumulus.version(answer)
    assert found.model == "Cumulus Linux" and found.text == text
    assert found.version == tuple(int(n) for n in text.split("."))


def test_product_release_is_preferred_where_the_release_prints_it() -> None:
    # Cumulus Linux 5.10 and later print `product-name`/`product-release` beside `build` (the NVUE
    # reference's `nv show system` example since 5.13 shows the rows)
    answer = json.dumps({"build": "Cumulus Linux 5.15.0", "product-name": "Cumulus Linux",
                         "product-release": "5.15.0"})
    assert cumulus.version(answer).version == (5, 15, 0)


@pytest.mark.parametrize("answer", ["", "{}", '{"build": "SONiC.4.0"}', "Error: The requested item does not exist"])
def test_an_answer_without_a_release_is_refused(answer: str) -> None:
    with pytest.raises(ValueError):
        cumulus.version(answer)


def test_the_dialect_asks_nv_show_system_as_json() -> None:
    assert CUMULUS.version_show == "nv show system -o json" and CUMULUS.version is cumulus.version


# ---------------------------------------------------------------------------- mac-learning by release
ADD = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000})


def _learning_lines(platform: Platform | None) -> list[str]:
    target = Target(GW.name, GW.vtep_ip, GW.ports, GW.switchbacks, platform)
    lines = render_batch(CUMULUS, diff(ADD, GatewayState()), target, GatewayState(), ADD)
    return [line for line in lines if "mac-learning" in line]


@pytest.mark.parametrize(("release", "word"), [((5, 4, 0), "on"), ((5, 14, 1), "on"), ((5, 15, 0), "enabled"),
                                               ((5, 16, 0), "enabled"), (None, "enabled")])
def test_mac_learning_is_written_in_the_word_of_the_release(release: tuple[int, ...] | None, word: str) -> None:
    # user guide 5.15, "New and Changed NVUE Commands", On/Off: `nv set bridge domain <domain-id> vlan
    # <vid> vni <vni-id> mac-learning on|off` (5.14.0 and earlier) -> `... enabled|disabled` (5.15 and later)
    platform = None if release is None else Platform("Cumulus Linux", release, ".".join(map(str, release)))
    assert _learning_lines(platform) == [f"nv set bridge domain br_default vlan 100 vni 5000 mac-learning {word}"]


@pytest.mark.parametrize("word", ["on", "enabled"])
def test_both_words_read_back_as_learning_on(word: str) -> None:
    parsed = CUMULUS.parse(_nvue(_vlan100({"mac-learning": word}), {"5000": "cust-42"}), GW)
    assert parsed.owned.bindings == {("p1", 100): 5000} and parsed.faults == {}


@pytest.mark.parametrize(("spec", "nve"), [({"mac-learning": "off"}, None), ({"mac-learning": "disabled"}, None),
                                           ({}, {"mac-learning": "disabled"}), ({}, {"mac-learning": "off"})])
def test_learning_off_on_silonets_vni_is_a_fault_in_either_word(spec: dict, nve: dict | None) -> None:
    parsed = CUMULUS.parse(_nvue(_vlan100(spec, nve), {"5000": "cust-42"}), GW)
    assert parsed.owned.bindings == {("p1", 100): 5000}  # still silonet's: only reported
    assert any("VNI 5000" in f and "MAC learning is off" in f for f in parsed.faults["switch"])


def test_a_word_no_release_knows_is_a_fault_and_the_vni_level_word_wins() -> None:
    parsed = CUMULUS.parse(_nvue(_vlan100({"mac-learning": "maybe"}), {"5000": "cust-42"}), GW)
    assert "not a value NVUE knows" in parsed.faults["switch"][0]
    on_here = CUMULUS.parse(_nvue(_vlan100({"mac-learning": "enabled"}, {"mac-learning": "off"}), {"5000": "x"}), GW)
    assert on_here.faults == {}


# ---------------------------------------------------------------------------- NVUE's keys and YAML
def test_compressed_keys_name_every_port() -> None:
    # as `nv config show -o yaml` of Cumulus VX 5.15.0 prints them (corpus nvair-515-*)
    assert list(cumulus.expand("swp1-4,12-13")) == ["swp1", "swp2", "swp3", "swp4", "swp12", "swp13"]
    assert list(cumulus.expand("swp2,6")) == ["swp2", "swp6"]
    assert list(cumulus.expand("vlan10,20,30,40")) == ["vlan10", "vlan20", "vlan30", "vlan40"]
    assert list(cumulus.expand("10,20-22")) == ["10", "20", "21", "22"]
    assert list(cumulus.expand("swp1s0-1")) == ["swp1s0", "swp1s1"]


def test_yaml_keeps_nvue_words_and_refuses_aliases() -> None:
    tree = cumulus.config_tree("- set:\n    nve:\n      vxlan:\n        enable: on\n        mac-learning: off\n")
    assert tree["nve"]["vxlan"] == {"enable": "on", "mac-learning": "off"}  # words, not YAML 1.1 booleans
    with pytest.raises(ValueError):
        cumulus.config_tree("- set: &a {x: 1}\n- set: *a\n")
    with pytest.raises(ValueError):
        cumulus.config_tree("- set: [unclosed\n")


# ---------------------------------------------------------------------------- the VTEP
def test_an_mlag_pair_is_one_vtep_at_its_shared_address() -> None:
    # user guide 5.15, "VXLAN Active-active Mode": both switches of the pair encapsulate with the anycast
    # address `nv set nve vxlan mlag shared-address` sets; the corpus docs-evpn-* cases read it so
    both = CUMULUS.parse(_nvue({"nve": {"vxlan": {"source": {"address": "198.18.0.7"},
                                                  "mlag": {"shared-address": "198.18.0.1"}}}}), GW)
    alone = CUMULUS.parse(_nvue({"nve": {"vxlan": {"source": {"address": "198.18.0.7"}}}}), GW)
    assert (both.vtep_ip, alone.vtep_ip) == ("198.18.0.1", "198.18.0.7")
    assert interpret(CUMULUS, GW, both).faults == {}
    assert interpret(CUMULUS, GW, alone).faults["switch"] == [
        "the device's VTEP source address is 198.18.0.7, the inventory says 198.18.0.1"]


# ---------------------------------------------------------------------------- what is not silonet's
def test_vnis_of_other_bridges_and_auto_vnis_are_foreign() -> None:
    tree = {"bridge": {"domain": {"br_default": {"vlan-vni-offset": 10000, "vlan": {"30": {"vni": {"auto": {}}}}},
                                  "br_other": {"vlan": {"100": {"vni": {"7100": {}}}}}}}}
    facts = CUMULUS.parse(_nvue(tree), GW).facts
    assert facts.foreign_vnis == {10030: "br_default vlan 30 vni 10030", 7100: "bridge br_other vlan 100 vni 7100"}
    assert not any(vlan == 100 for _port, vlan in facts.foreign_bindings)  # br_other's VLAN IDs are its own


def test_a_vtep_wide_flood_list_is_foreign_and_a_fault_once_silonet_has_vnis() -> None:
    nve = {"flooding": {"head-end-replication": {"198.18.0.9": {}, "evpn": {}}}}
    mine = CUMULUS.parse(_nvue(_vlan100({"mac-learning": "on"}, nve), {"5000": "cust-42"}), GW)
    assert mine.facts.foreign_flood == {"198.18.0.9"}
    assert "silonet's VNIs flood there too" in mine.faults["switch"][0]
    assert CUMULUS.parse(_nvue({"nve": {"vxlan": nve}}), GW).faults == {}


def _beside(case: str, desired: GatewayState) -> tuple[list[str], dict[tuple[str, int], str]]:
    """What silonet would send to the captured switch of ``case`` for ``desired``: the driver's read
    (replay), the plan restricted by what others hold (as the worker does), the batch."""
    capture = load_capture(CORPUS / case)
    t = capture.target
    target = Target(t["name"], t.get("vtep_ip") or "", tuple(t["ports"]), ())
    actual = replay(CUMULUS, target, capture.outputs)
    effective, refused = restrict(desired, actual.facts)
    ops = diff(effective, actual.owned)
    return render_batch(CUMULUS, ops, target, actual.owned, apply_ops(actual.owned, ops), facts=actual.facts), refused


def test_silonet_manages_its_vni_beside_evpn_it_does_not_own_and_never_touches_it() -> None:
    # corpus docs-evpn-symmetric-leaf03: L2 VNIs 10/20/30 on VLANs 10/20/30 (bond1..3 access ports),
    # L3 VNIs 4001/4002 in VRFs RED/BLUE, VTEP source set, all foreign. silonet adds VNI 5000 on swp4.
    desired = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"})),
                            4001: LogicalSwitch(4001, "cust-43")},
                           {("swp4", 100): 5000, ("swp4", 10): 4001})
    lines, refused = _beside("docs-evpn-symmetric-leaf03", desired)
    assert set(refused) == {("swp4", 10)}  # VNI 4001 is VRF RED's; VLAN 10 is taken
    assert lines == [
        "nv config detach",
        "nv set bridge domain br_default vlan 100 vni 5000",
        "nv set bridge domain br_default vlan 100 vni 5000 mac-learning enabled",
        "nv set bridge domain br_default vlan 100 vni 5000 flooding head-end-replication 198.18.0.2",
        "nv set interface swp4 bridge domain br_default vlan 100",
        "mkdir -p \"$HOME/.silonet\"",
        "printf '%s\\n' '{\"5000\": \"cust-42\"}' > \"$HOME/.silonet/vnis.json.new\"",
        "mv \"$HOME/.silonet/vnis.json.new\" \"$HOME/.silonet/vnis.json\"",
        "nv config apply -y",
        "nv config save",
    ]  # no `nve vxlan source address`: the switch's VXLAN (and its source) is someone else's


def test_on_a_switch_without_vxlan_the_source_address_goes_with_the_first_vni() -> None:
    desired = GatewayState({5000: LogicalSwitch(5000, "cust-42")}, {("swp10", 100): 5000})
    lines, _ = _beside("nvair-515-gpu-leaf1", desired)
    assert lines[:2] == ["nv config detach", "nv set nve vxlan source address 198.18.0.11"]
    assert not any(word in line for line in lines for word in ("swp2 ", "swp6 ", "vlan 10 ", "access"))


def test_a_foreign_access_port_among_the_gateways_ports_is_a_fault() -> None:
    tree = {"bridge": {"domain": {"br_default": {"vlan": {"90": {}}}}},
            "interface": {"p1,2": {"bridge": {"domain": {"br_default": {"access": 90}}}}}}
    faults = CUMULUS.parse(_nvue(tree), GW).faults
    assert sorted(faults) == ["port p1", "port p2"]
    assert "not silonet's" in faults["port p1"][0]


# ---------------------------------------------------------------------------- through the SSH driver
def test_the_driver_reads_the_release_once_and_writes_its_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {cumulus.VERSION: SYSTEM_54_JSON, cumulus.CONFIG: '[{"header": {}}, {"set": {}}]',
               cumulus.INTERFACES: json.dumps({"p1": {"type": "swp"}, "p2": {"type": "swp"}}), cumulus.LEDGER: "{}\n"}
    cli = FakeCli(tmp_path, exec_answers=answers)

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            gateway = Gateway("gw-a", "198.18.0.1", Management(driver="ssh", address=cli.address, dialect="cumulus",
                                                               credentials=f"file:{cli.client_key}"),
                              ports=(Port("p1"), Port("p2")))
            driver = SshDriver(gateway, on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                read = await driver.read()
                assert read.platform is not None and read.platform.version == (5, 4, 0)
                await driver.read()
                assert cli.execs.count(cumulus.VERSION) == 1  # once per connection
                mark = len(cli.execs)
                await driver.apply(diff(GatewayState({5000: LogicalSwitch(5000, "cust-42")}, {("p1", 100): 5000}),
                                        read.owned))
                assert "vni 5000 mac-learning on" in cli.execs[mark]
            finally:
                await driver.close()

    asyncio.run(scenario())


def test_device_facts_keep_the_foreign_flood_list() -> None:
    facts = CUMULUS.parse(_nvue({"nve": {"vxlan": {"flooding": {"head-end-replication": {"198.18.0.9": {}}}}}}), GW)
    assert device_facts(CUMULUS, facts.facts).foreign_flood == {"198.18.0.9"}
