"""The ``alaxala`` dialect on what real AX3660S switches printed (ALAXALA's Ansible guidebook,
tests/drivers/ssh/corpus/alaxala/): the operator's own VXLAN on silonet's VTEP is foreign, never
changed, and silonet's VNIs live beside it; a remote VTEP the operator's VNIs may use is never
removed (one remote list per VTEP); ``show version`` as single switches and stacks print it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from silonet.drivers.report import load_case
from silonet.drivers.ssh.dialect import Target, dialects, render_batch
from silonet.drivers.ssh.dialects import alaxala
from silonet.drivers.ssh.driver import SshDriver, replay
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ops import RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts, restrict
from tests.drivers.ssh.test_alaxala import FakeAx, _until

AX = dialects()["alaxala"]
CORPUS = Path(__file__).parent / "corpus" / "alaxala"
GUIDE_1 = CORPUS / "ax3660s-1-operator-vxlan-12.1.C"
OPERATOR_VNIS = {101, 102, 103, 104, 105, 201, 202, 203, 204, 205}
PEER = "198.18.0.5"  # another gateway of silonet's


def _read(folder: Path, ports: tuple[str, ...] = ("geth1_0_12",)) -> tuple[dict[str, str], Target]:
    case = load_case(folder)
    return case.outputs, Target("AX3660S-1", "1.1.1.1", ports)


def _network(vlan: int = 300, vni: int = 5000, flood: frozenset[str] = frozenset({PEER}),
             port: str = "geth1_0_12") -> GatewayState:
    return GatewayState({vni: LogicalSwitch(vni, "tenant-a", flood)}, {(port, vlan): vni})


# ------------------------------------------------------------------------------ the guidebook's switch
def test_the_operators_vxlan_on_silonets_vtep_is_foreign_not_an_error() -> None:
    outputs, target = _read(GUIDE_1)
    actual = replay(AX, target, outputs)
    assert actual.owned == GatewayState()
    assert {vni for vni in actual.facts.foreign_vnis} == OPERATOR_VNIS
    assert actual.facts.foreign_flood == {"1.1.1.2"} and actual.vtep_ip == "1.1.1.1"


def test_silonet_adds_its_vni_beside_the_operators_and_converges() -> None:
    outputs, target = _read(GUIDE_1)
    before = replay(AX, target, outputs)
    effective, failures = restrict(_network(), before.facts)
    assert not failures and effective.logical_switches[5000].flood == {PEER, "1.1.1.2"}
    lines = render_batch(AX, diff(effective, before.owned), target, before.owned, effective, generation=1,
                         facts=before.facts)
    assert lines == ["configure terminal", "interface vxlan 1", f"destination-ip {PEER}", "exit",
                     "vlan 300", 'name "silonet-tenant-a"', "vxlan-vni 5000", "exit",
                     "interface vxlan 1", "member vni add 5000", "exit",
                     "interface gigabitethernet 1/0/12", "switchport mode trunk",
                     "switchport trunk allowed vlan add 300", "exit", "save", "end"]
    # the switch after those lines (the captured text, edited as the lines edit it): silonet's VNI
    # reads back as written, the operator's as before, and nothing is left to do
    config = outputs[alaxala.SHOW_CONFIG]
    for old, new in (("vlan 1010\n", 'vlan 300\n  name "silonet-tenant-a"\n  vxlan-vni 5000\n!\nvlan 1010\n'),
                     ("1/0/12\n  switchport mode access\n",
                      "1/0/12\n  switchport mode trunk\n  switchport trunk allowed vlan 300\n"),
                     ("member vni 101-105,201-205\n  destination-ip 1.1.1.2\n",
                      f"member vni 101-105,201-205,5000\n  destination-ip 1.1.1.2\n  destination-ip {PEER}\n")):
        assert config.count(old) == 1
        config = config.replace(old, new)
    after = replay(AX, target, {**outputs, alaxala.SHOW_CONFIG: config})
    assert after.owned == effective and not after.faults
    assert after.facts.foreign_vnis == before.facts.foreign_vnis
    assert diff(restrict(_network(), after.facts)[0], after.owned) == []


# ------------------------------------------------------------------------------ prepare keeps foreign remotes
def _lines(actual: GatewayState, desired: GatewayState, ops: list, keep: frozenset[str]) -> list[str]:
    target = Target("ax-1", "198.18.0.1", ("geth1_0_12",))
    return render_batch(AX, ops, target, actual, desired, generation=1, facts=DeviceFacts(foreign_flood=keep))


def test_dropping_silonets_last_use_of_a_remote_the_operators_vnis_use_keeps_it() -> None:
    actual = _network(flood=frozenset({"1.1.1.2", PEER}))
    desired = _network(flood=frozenset({PEER}))
    ops = [SetFloodList(5000, frozenset({PEER}))]
    assert "no destination-ip 1.1.1.2" not in _lines(actual, desired, ops, frozenset({"1.1.1.2"}))
    # ...while a remote nobody else may use goes (the same batch, nothing foreign on the VTEP)
    assert "no destination-ip 1.1.1.2" in _lines(actual, desired, ops, frozenset())


def test_silonets_last_vni_leaving_removes_no_remote_the_operators_vnis_use() -> None:
    actual = _network(flood=frozenset({"1.1.1.2", PEER}))
    ops = [Unbind("geth1_0_12", 300), RemoveLogicalSwitch(5000)]
    kept = _lines(actual, GatewayState(), ops, frozenset({"1.1.1.2", PEER}))
    assert not any("destination-ip" in line for line in kept)
    assert "member vni remove 5000" in kept and "member vni remove 101" not in " ".join(kept)
    assert "no destination-ip 1.1.1.2" in _lines(actual, GatewayState(), ops, frozenset())


def test_a_vni_leaves_the_vtep_before_its_last_vlan_mapping_goes() -> None:
    """A batch cut short then leaves a silonet-* VLAN mapping a non-member (silonet's, completed or
    removed next pass), never a member no VLAN maps (read as someone else's, never touched)."""
    actual = _network()
    lines = _lines(actual, GatewayState(), [Unbind("geth1_0_12", 300), RemoveLogicalSwitch(5000)], frozenset())
    assert lines.index("member vni remove 5000") < lines.index("no vxlan-vni") < lines.index("no vlan 300")
    assert lines.count("member vni remove 5000") == 1
    # a VLAN taken over by another network: the old VNI leaves before the VLAN is remapped
    desired = _network(vni=5001)
    remap = render_batch(AX, diff(desired, actual), Target("ax-1", "198.18.0.1", ("geth1_0_12",)), actual, desired,
                         generation=1)
    assert remap.index("member vni remove 5000") < remap.index("vxlan-vni 5001")
    assert remap.count("member vni remove 5000") == 1 and "member vni add 5001" in remap


# ------------------------------------------------------------------------------ show version
# Guidebook chapter 4.5 (commit 28c1b844dc45986271e23cc5f4b3f7a3219e51d2): `show version` of the
# AX3660S-1 stack before and after its update, as the chapter's `diff -u` prints them (whole files:
# "@@ -1,30 +1,30 @@"), each side without the diff's first column.
STACK = """Switch {m} (Master)
-----------------
Date 2019/09/26 {t1} JST
Model: AX3660S-48T4XW
S/W: OS-L3M Ver. 12.1.{v}
H/W: Main board
       AX-3660-48T4XW [TB03G048T4X0S408{s1}:SL-L3A-001:730F01:0:612:11B567]
       Model No.: AX-3660-48T4XW
     Power slot 1 PS-M(AC)
       AX-F2430-PSA06 [{p1}]
     Power slot 2 PS-M(AC)
       AX-F2430-PSA06 [{p2}]
     Fan slot     FAN-M
       AX-F2430-FAN04 [{f}]


Switch {b} (Backup)
-----------------
Date 2019/09/26 {t2} JST
Model: AX3660S-48T4XW
S/W: OS-L3M Ver. 12.1.{v}
H/W: Main board
       AX-3660-48T4XW [TB03G048T4X0S408{s2}:SL-L3A-001:730F01:0:612:11B567]
       Model No.: AX-3660-48T4XW
     Power slot 1 PS-M(AC)
       AX-F2430-PSA06 [{p3}]
     Power slot 2 PS-M(AC)
       AX-F2430-PSA06 [{p4}]
     Fan slot     FAN-M
       AX-F2430-FAN04 [{g}]"""
BEFORE = STACK.format(m=1, b=2, t1="15:46:28", t2="15:46:28", v="G", s1="AH1Z074", s2="AH3E086", p1="M338SA000JAAP",
                      p2="M338S1000FAAP", f="TA0FAN040000C1404H3E091", p3="M338S8001CAAP", p4="M338T4000NAAP",
                      g="TA0FAN040000C1404366019")
AFTER = STACK.format(m=2, b=1, t1="15:57:36", t2="15:57:37", v="H", s1="AH3E086", s2="AH1Z074", p1="M338S8001CAAP",
                     p2="M338T4000NAAP", f="TA0FAN040000C1404366019", p3="M338SA000JAAP", p4="M338S1000FAAP",
                     g="TA0FAN040000C1404H3E091")


def test_show_version_of_one_switch_as_the_guidebook_captured_it() -> None:
    answer = (CORPUS / "ax3660s-1-show-version-12.1.H" / "show_version.txt").read_text()
    found = alaxala.version(answer)
    assert (found.model, found.version, found.text) == ("AX3660S-48T4XW", (12, 1, 8), "12.1.H")


def test_show_version_of_a_stack_and_the_release_letters_order() -> None:
    old, new = alaxala.version(BEFORE), alaxala.version(AFTER)
    assert (old.model, old.text, new.text) == ("AX3660S-48T4XW", "12.1.G", "12.1.H")
    assert old.version < new.version and new.at_least(12, 1, 8) and not old.at_least(12, 1, 8)
    # mid-update the switches differ: the master's block is the platform, wherever it is printed
    master, backup = AFTER.split("\n\n\n")
    mixed = backup.replace("Ver. 12.1.H", "Ver. 12.1.G") + "\n\n\n" + master
    assert mixed.startswith("Switch 1 (Backup)") and alaxala.version(mixed).text == "12.1.H"


def test_show_version_of_an_older_model_and_other_wordings() -> None:
    # an AX3640S on 11.14.S, as a netmiko 4.5.0 walkthrough (Qiita) printed it; its repository is not
    # in the index, so this is no corpus case
    older = alaxala.version("Date 2000/01/21 00:55:35 UTC\nModel: AX3640S-24T\nS/W: OS-L3A Ver. 11.14.S\n"
                            "H/W: AX-3640-24TE-A [---masked---]")
    assert (older.model, older.text, older.version) == ("AX3640S-24T", "11.14.S", (11, 14, 19))
    assert alaxala.version("Software: AX4630S Ver. 11.11.C\n").version == (11, 11, 3)  # the guess


def test_a_version_answer_without_a_software_line_is_refused() -> None:
    with pytest.raises(ValueError, match="S/W"):
        alaxala.version("% The command or parameter at the ^ marker is invalid.")


# ------------------------------------------------------------------------------ over SSH, beside the operator
async def _beside_the_operator(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeAx(folder) as ax:
        # the guidebook's switch: VLANs 101-105, 201-205 map VNIs of the same numbers, members of
        # interface vxlan 1, trunked on 1/0/2; one remote VTEP
        for vni in sorted(OPERATOR_VNIS):
            ax.vlans[vni] = {"name": None, "vni": vni}
        ax.vteps[1]["members"], ax.vteps[1]["dest"] = set(OPERATOR_VNIS), ["1.1.1.2"]
        ax.mode_of["1/0/2"], ax.allowed["1/0/2"] = "trunk", set(OPERATOR_VNIS)
        operator = {vid: dict(v) for vid, v in ax.vlans.items()}
        monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(ax.known_hosts))
        gw = Gateway("ax-1", "198.18.0.1", Management("ssh", ax.address, "alaxala", f"file:{ax.client_key}"), 8192,
                     (Port("geth1_0_1"),))
        driver = SshDriver(gw, lambda: None)
        await driver.start()
        try:
            await _until(lambda: driver.health().connected)
            first = await driver.read()
            assert first.owned == GatewayState() and OPERATOR_VNIS <= set(first.facts.foreign_vnis)
            wanted = _network(port="geth1_0_1")
            effective, _ = restrict(wanted, first.facts)
            await driver.apply(diff(effective, first.owned))
            assert ax.vteps[1]["members"] == OPERATOR_VNIS | {5000} and ax.vteps[1]["dest"] == ["1.1.1.2", PEER]
            back = await driver.read()
            assert back.owned == effective and diff(restrict(wanted, back.facts)[0], back.owned) == []
            # the network goes: silonet's VNI and VLAN only; every remote VTEP stays (the operator's
            # VNIs flood to each of them)
            gone, _ = restrict(GatewayState(), back.facts)
            await driver.apply(diff(gone, back.owned))
            assert ax.vteps[1]["members"] == OPERATOR_VNIS and ax.vteps[1]["dest"] == ["1.1.1.2", PEER]
            assert {vid: v for vid, v in ax.vlans.items()} == operator and ax.allowed["1/0/2"] == OPERATOR_VNIS
            last = await driver.read()
            assert last.owned == GatewayState() and diff(restrict(GatewayState(), last.facts)[0], last.owned) == []
        finally:
            await driver.close()


def test_over_ssh_silonet_comes_and_goes_beside_the_operators_vxlan(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_beside_the_operator(tmp_path, monkeypatch))
