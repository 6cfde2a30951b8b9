"""The ``alaxala`` dialect: AX-specific golden batches, the parser's ownership rules, the
capacity error an AX gateway gets without a switch-back port, and the real SshDriver against
a local SSH server that answers like the AX CLI (prompts, the ``!`` unsaved marker, the y/n
question on leaving config mode unsaved, show output built from its own state, errors)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import asyncssh
import pytest

from silonet.drivers.ssh.dialect import Target, device_facts, dialects, render_batch, scope_conflicts
from silonet.drivers.ssh.dialects import alaxala
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import DeviceError
from silonet.model import Attachment, Gateway, Management, Port, VirtualNetwork
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ops import Bind, EnsureLogicalSwitch, SetFloodList
from silonet.plan.ownership import DeviceFacts, restrict
from silonet.service import Manager
from silonet.service import schemas as S
from tests.drivers.ssh.golden import HERE, check_golden

AX = dialects()["alaxala"]
GOLDEN = HERE / "golden" / "alaxala"
TARGET = Target("ax-1", "198.18.0.1", ("geth1_0_1", "geth1_0_2", "tengeth1_0_49"), ("tengeth1_0_49",))
PEERS = frozenset({"198.18.0.2", "198.18.0.3"})


def _state(switches: dict[int, tuple[str, frozenset[str]]], bindings: dict[tuple[str, int], int]) -> GatewayState:
    return GatewayState({v: LogicalSwitch(v, n, f) for v, (n, f) in switches.items()}, dict(sorted(bindings.items())))


ADDED = _state({5000: ("cust-42", PEERS)}, {("geth1_0_1", 100): 5000, ("geth1_0_2", 100): 5000})
# AX-specific cases: (actual, desired) on TARGET, real AX port names.
CASES: dict[str, tuple[GatewayState, GatewayState]] = {
    # a VNI with two remote VTEPs, on a group of two member ports: one VLAN mapping, two trunks
    "ax-add-vni": (GatewayState(), ADDED),
    # ...and gone again: trunks, then the VLAN, then the VTEP membership, then the remotes
    "ax-remove-vni": (ADDED, GatewayState()),
    # one remote VTEP leaves, another joins
    "ax-flood-change": (ADDED, _state({5000: ("cust-42", frozenset({"198.18.0.3", "198.18.0.4"}))},
                                      dict(ADDED.bindings))),
    # a group behind the switch-back port: its VLANs are mapped and trunked there only
    "ax-switchback-group": (GatewayState(), _state(
        {5000: ("cust-42", frozenset({"198.18.0.2"})), 5001: ("cust-43", frozenset({"198.18.0.2"}))},
        {("tengeth1_0_49", 100): 5000, ("tengeth1_0_49", 101): 5001})),
}


def render(actual: GatewayState, desired: GatewayState, target: Target = TARGET) -> list[str]:
    assert not scope_conflicts(desired)
    effective, _ = restrict(desired, DeviceFacts(remote_macs=AX.remote_macs))
    return render_batch(AX, diff(effective, actual), target, actual, effective, generation=1)


def expected(case: str) -> list[str]:
    return (GOLDEN / case / "expected.txt").read_text().splitlines()


# ------------------------------------------------------------------------------ golden
@pytest.mark.parametrize("case", sorted(CASES))
def test_ax_cases_render_as_golden(case: str) -> None:
    actual, desired = CASES[case]
    check_golden(GOLDEN / case / "expected.txt", "\n".join(render(actual, desired)) + "\n")


def test_the_dialect_declares_what_the_brief_says() -> None:
    assert (AX.scope, AX.style, AX.verified, AX.remote_macs, AX.default_capacity) == (
        "switch", "shell", "captured output: AX3660S 12.1.C, 12.1.H (ALAXALA Ansible guidebook)", False, 8192)
    assert "AX3660S" in AX.platform and "AX4630S" in AX.platform
    prompt = re.compile(AX.prompt)
    for line in ("AX4630S-1> ", "AX4630S-1#", "!AX4630S-1# ", "!AX3660S-1(config)# ", "AX3660S-1(config-vlan)#",
                 "!AX3660S-1(config-if)# ", 'Unsaved changes found! Do you exit "configure" without save ? (y/n): '):
        assert prompt.search(line), line
    for line in ("#Last modified by admin", "!", '  name "silonet-x"', "VTEP ID: 1", "vlan 100", "AX4630S-1# vlan 1"):
        assert not prompt.search(line), line


def test_switch_scope_refuses_one_vlan_for_two_vnis() -> None:
    desired = _state({6000: ("red", frozenset()), 6001: ("blue", frozenset())},
                     {("geth1_0_1", 300): 6000, ("geth1_0_2", 300): 6001})
    assert scope_conflicts(desired) == [(300, [6000, 6001])]


def test_an_untagged_binding_fails_alone_and_is_never_typed() -> None:
    desired = _state({5000: ("cust-42", PEERS)}, {("geth1_0_1", 0): 5000, ("geth1_0_2", 100): 5000})
    effective, failures = restrict(desired, device_facts(AX))
    assert failures == {("geth1_0_1", 0): "the alaxala dialect maps tagged VLANs only; VLAN 0 (untagged) cannot "
                                          "carry VNI 5000"}
    lines = render_batch(AX, diff(effective, GatewayState()), TARGET, GatewayState(), effective, generation=1)
    assert "interface gigabitethernet 1/0/2" in lines and "interface gigabitethernet 1/0/1" not in lines
    with pytest.raises(DeviceError, match=r"ax-1.*geth1_0_1 VLAN 0.*tagged VLANs only.*nothing was sent"):
        render(GatewayState(), _state({5000: ("cust-42", PEERS)}, {("geth1_0_1", 0): 5000}))  # one holding it


def test_the_vtep_and_the_destination_syntax_live_in_one_template() -> None:
    assert alaxala.settings() == (1, "silonet-")
    lines = render(GatewayState(), ADDED)
    assert lines.count("interface vxlan 1") == 2 and "destination-ip 198.18.0.2" in lines
    # two member ports, one VLAN: the VLAN mapping is written once, each port is trunked
    assert lines.count("vxlan-vni 5000") == 1 and lines.count("switchport mode trunk") == 2


# ------------------------------------------------------------------------------ parser
def _config(vtep1: str = "  member vni 5000\n  destination-ip 198.18.0.2\n", extra: str = "") -> dict[str, str]:
    config = (
        "#Last modified by admin\n!\nhostname \"AX4630S-1\"\n!\nvlan 1\n  name \"VLAN0001\"\n!\n"
        "vlan 100\n  name \"silonet-cust-42\"\n  vxlan-vni 5000\n!\n" + extra +
        "interface gigabitethernet 1/0/1\n  switchport mode trunk\n  switchport trunk allowed vlan 100\n!\n"
        "interface vxlan 1\n  source-interface loopback 0\n" + vtep1 + "!\nAX4630S-1# ")
    vni = "Date 2024/05/20 10:15:30 JST\nVTEP ID: 1\n  VNI: 5000      Status: enable\n" \
          "                 Learning: On\n    VLAN: 100   Port: 1/0/1\nAX4630S-1# "
    return {alaxala.SHOW_VNI: vni, alaxala.SHOW_CONFIG: config}


def test_parser_uses_the_gateways_own_port_names() -> None:
    target = Target("ax-1", "198.18.0.1", ("gigabitethernet1_0_1",))
    parsed = AX.parse(_config(), target)
    assert parsed.owned == _state({5000: ("cust-42", frozenset({"198.18.0.2"}))}, {("gigabitethernet1_0_1", 100): 5000})
    assert parsed.facts.ports == frozenset({"gigabitethernet1_0_1"})
    assert parsed.facts.foreign_bindings == {("gigabitethernet1_0_1", 1): "VLAN0001"}


def test_a_vtep_shared_with_foreign_vnis_reads_them_as_foreign_and_keeps_its_remotes() -> None:
    outputs = _config("  member vni 201,5000\n  destination-ip 198.18.0.12\n",
                      extra="vlan 201\n  name \"ops\"\n  vxlan-vni 201\n!\n")
    parsed = AX.parse(outputs, TARGET)
    assert parsed.owned == _state({5000: ("cust-42", frozenset({"198.18.0.12"}))}, {("geth1_0_1", 100): 5000})
    assert parsed.facts.foreign_vnis == {201: "ops"} and parsed.facts.foreign_flood == {"198.18.0.12"}


def test_a_missing_vtep_is_an_explicit_error() -> None:
    outputs = _config()
    outputs[alaxala.SHOW_CONFIG] = outputs[alaxala.SHOW_CONFIG].replace("interface vxlan 1", "interface vxlan 2")
    with pytest.raises(ValueError, match=r"interface vxlan 1 is not configured"):
        AX.parse(outputs, TARGET)


def test_a_member_no_vlan_maps_is_someone_elses_and_never_removed() -> None:
    parsed = AX.parse(_config("  member vni 5000-5001\n  destination-ip 198.18.0.2\n"), TARGET)
    assert set(parsed.owned.logical_switches) == {5000} and parsed.facts.foreign_vnis == {5001: "VTEP 1"}
    effective, _ = restrict(GatewayState(), parsed.facts)
    lines = render_batch(AX, diff(effective, parsed.owned), TARGET, parsed.owned, effective, facts=parsed.facts)
    assert "member vni remove 5001" not in lines and "member vni remove 5000" in lines
    assert not any("destination-ip" in line for line in lines)  # VNI 5001 may still use it


def test_a_mapping_left_before_member_add_is_completed_or_removed() -> None:
    outputs = _config("  destination-ip 198.18.0.2\n")  # VLAN 100 -> 5000, not a member of VTEP 1
    outputs[alaxala.SHOW_VNI] = "Date 2024/05/20 10:15:30 JST\nVTEP ID: 1\n"
    parsed = AX.parse(outputs, TARGET)
    assert parsed.owned == GatewayState({}, {(alaxala.NO_PORT, 100): 5000})
    assert "not a member of interface vxlan 1" in parsed.faults["switch"][0]
    wanted = _state({5000: ("cust-42", frozenset({"198.18.0.2"}))}, {("geth1_0_1", 100): 5000})
    lines = render(parsed.owned, wanted)
    assert "member vni add 5000" in lines and "vxlan-vni 5000" not in lines and "no vlan 100" not in lines
    assert render(parsed.owned, GatewayState())[1:-2] == ["vlan 100", "no vxlan-vni", "exit", "no vlan 100"]


# ------------------------------------------------------------------------------ capacity
def _ax_gateway(name: str, switchback: bool) -> S.GatewayIn:
    ports = [{"name": f"geth1_0_{i}"} for i in range(1, 49)]
    if switchback:
        ports.append({"name": "tengeth1_0_49", "switchback": True})
    return S.GatewayIn.model_validate({
        "name": name, "vtep_ip": "198.18.0.1", "capacity": 8192, "ports": ports,
        "management": {"driver": "ssh", "dialect": "alaxala", "address": "admin@127.0.0.1:22",
                       "credentials": "env:SILONET_SECRET_AX"}})


def _topology(gateway: S.GatewayIn, group: str, vlans: range, switchback: bool) -> S.Topology:
    members = [{"gateway": gateway.name, "port": f"geth1_0_{i}"} for i in range(1, 49)]
    sb = [{"gateway": gateway.name, "port": "tengeth1_0_49"}] if switchback else []
    return S.Topology.model_validate({
        "gateways": [gateway.model_dump()],
        "interface_groups": [{"name": group, "members": members, "switchback": sb}],
        "networks": [{"name": f"net-{v}", "tenant": "t", "vni": 20000 + v,
                      "attachments": [{"interface_group": group, "vlan": v}]} for v in vlans]})


def test_48_ports_without_switchback_overflow_an_ax_at_the_171st_vlan(client, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    gw = _ax_gateway("ax-1", switchback=False)
    manager.apply(_topology(gw, "vsa", range(1, 171), switchback=False))  # 48 x 170 = 8160 entries
    assert client.get("/v1/gateways/ax-1").json()["used"] == 8160
    client.post("/v1/networks", json={"name": "net-171", "tenant": "t", "vni": 20171}).raise_for_status()
    r = client.post("/v1/networks/net-171/attachments", json={"interface_group": "vsa", "vlan": 171})
    assert r.status_code == 409, r.text  # 48 x 171 = 8208 > 8192
    msg = str(r.json())
    assert "needs 48 VLAN->VNI entries" in msg and "only 32 of 8192 are free" in msg, msg
    assert "switch-back port" in msg and "1 entry per VLAN instead of 48" in msg, msg
    assert client.get("/v1/gateways/ax-1").json()["used"] == 8160


def test_with_a_switchback_port_all_4094_vlans_fit_an_ax(client, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    gw = _ax_gateway("ax-2", switchback=True)
    manager.apply(_topology(gw, "vsb", range(1, 4), switchback=True))
    assert client.get("/v1/gateways/ax-2").json()["used"] == 3  # 1 entry per VLAN, not 48
    # The other 4091 against the aggregate the service checks every attach with (storing
    # 4094 attachments row by row would take seconds): they all fit, 4094 of 8192 entries.
    inv = manager.inventory()
    for vlan in range(4, 4095):  # one VNI per VLAN: on AX, VLAN<->VNI is one to one per switch
        inv.put_network(VirtualNetwork(f"net-{vlan}", "t", 20000 + vlan))
        inv.attach(Attachment("vsb", vlan, f"net-{vlan}"))
    assert inv.usage("ax-2") == 4094 <= inv.gateways["ax-2"].capacity == 8192


# ------------------------------------------------------------------------------ fake AX CLI
class _Refused(Exception):
    pass


class FakeAx:
    """An SSH server on 127.0.0.1 (ephemeral port, generated host and client keys) whose shell
    answers like the AX CLI: ``>``/``#``/``(config...)#`` prompts, ``!`` while unsaved,
    ``save`` in config mode, the y/n question on leaving config mode unsaved, ``show vxlan
    vni`` and ``show running-config`` built from its state, and an error for a bad command."""

    HOST = "AX4630S-1"
    QUESTION = 'Unsaved changes found! Do you exit "configure" without save ? (y/n): '
    ERROR = "% The command or parameter at the ^ marker is invalid."

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._client = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = folder / "ax_client_key"
        self.known_hosts = folder / "known_hosts"
        self.port = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self.lines: list[str] = []  # every line typed into a shell, in order
        self.prompts: list[str] = []  # every prompt (or question) written
        self.ports = {"1/0/1": "gigabitethernet", "1/0/2": "gigabitethernet", "1/0/3": "gigabitethernet",
                      "1/0/49": "tengigabitethernet"}
        self.mode_of = {n: "access" for n in self.ports}
        self.allowed: dict[str, set[int]] = {n: set() for n in self.ports}
        self.access = {"1/0/3": 10}
        self.vlans: dict[int, dict] = {1: {"name": "VLAN0001", "vni": None}, 10: {"name": None, "vni": None},
                                       700: {"name": "ops", "vni": 7000}}
        self.vteps: dict[int, dict] = {1: {"source": "loopback 0", "members": set(), "dest": []},
                                       2: {"source": "loopback 1", "members": {7000}, "dest": ["192.0.2.2"]}}
        self.mode, self.current = "user", None
        self.unsaved = False
        self.question = False
        self.saves = 0

    async def __aenter__(self) -> FakeAx:
        self._client.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        authorized = asyncssh.import_authorized_keys(self._client.export_public_key().decode())
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[self.host_key], authorized_client_keys=authorized,
            process_factory=self._session, encoding="utf-8", keepalive_interval=0)
        self.port = self._server.sockets[0].getsockname()[1]
        key = self.host_key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {key}\n")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def address(self) -> str:
        return f"admin@127.0.0.1:{self.port}"

    # ----------------------------------------------------------- session
    def prompt(self) -> str:
        suffix = {"config": "(config)", "config-vlan": "(config-vlan)", "config-if": "(config-if)",
                  "config-vxlan": "(config-if)"}.get(self.mode, "")
        return f"{'!' if self.unsaved else ''}{self.HOST}{suffix}{'>' if self.mode == 'user' else '#'} "

    def _write(self, process: asyncssh.SSHServerProcess, output: str) -> None:
        tail = self.QUESTION if self.question else self.prompt()
        self.prompts.append(tail)
        process.stdout.write(output + tail)

    async def _session(self, process: asyncssh.SSHServerProcess) -> None:
        with contextlib.suppress(asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, ConnectionError):
            self.mode, self.current, self.question = "user", None, False
            self._write(process, "\nCopyright (c) ALAXALA Networks Corporation (fake). All rights reserved.\n\n")
            while raw := await process.stdin.readline():
                line = raw.strip()
                self.lines.append(line)
                if self.question:
                    if line in ("y", "n"):
                        self.question = False
                        self.mode = "admin" if line == "y" else self.mode
                    self._write(process, "")
                    continue
                try:
                    output = self.run(line)
                except _Refused:
                    output = f"{' ' * len(self.prompt())}^\n{self.ERROR}\n"
                self._write(process, output)
        process.exit(0)

    def run(self, line: str) -> str:
        w, mode = line.split(), self.mode
        if not w:
            return ""
        if line == "set terminal pager disable" and mode in ("user", "admin"):
            return ""
        if line == "show vxlan vni" and mode in ("user", "admin"):
            return self.show_vni()
        if line == alaxala.VERSION and mode in ("user", "admin"):  # the shape of the guidebook's capture
            return (f"Date 2024/05/20 10:15:30 JST\nModel: AX3660S-48T4XW\nS/W: OS-L3M Ver. 12.1.H \n"
                    f"H/W: Main board\n       AX-3660-48T4XW [{self.HOST}]\n")
        if mode == "user":  # (enable answers an error in admin mode: silonet types it once per session)
            if line == "enable":
                self.mode = "admin"
                return ""
            raise _Refused
        if mode == "admin":
            if line == "disable":
                self.mode = "user"
            elif line in ("configure", "configure terminal"):
                self.mode = "config"
            elif line == "show running-config":
                return self.running_config()
            else:
                raise _Refused
            return ""
        if line == "save":
            self.unsaved = False
            self.saves += 1
            return ""
        if line == "end" or (line == "exit" and mode == "config"):
            self.question = self.unsaved
            self.mode = "config" if self.unsaved else "admin"
            return ""
        if line == "exit":
            self.mode = "config"
            return ""
        handler = getattr(self, "_" + mode.replace("-", "_"))
        handler(w)
        self.unsaved = True
        return ""

    def _config(self, w: list[str]) -> None:
        if w[0] == "vlan" and len(w) == 2:
            self.current = int(w[1])
            if not 1 <= self.current <= 4094:
                raise _Refused
            self.vlans.setdefault(self.current, {"name": None, "vni": None})
            self.mode = "config-vlan"
        elif w[:2] == ["no", "vlan"] and len(w) == 3 and int(w[2]) in self.vlans and int(w[2]) != 1:
            del self.vlans[int(w[2])]
        elif w[:2] == ["interface", "vxlan"] and len(w) == 3 and int(w[2]) in self.vteps:
            self.current, self.mode = int(w[2]), "config-vxlan"
        elif w[0] == "interface" and len(w) == 3 and self.ports.get(w[2]) == w[1]:
            self.current, self.mode = w[2], "config-if"
        else:
            raise _Refused

    def _config_vlan(self, w: list[str]) -> None:
        vlan = self.vlans[self.current]
        if w[0] == "name" and len(w) == 2:
            vlan["name"] = w[1].strip('"')
        elif w[0] == "vxlan-vni" and len(w) == 2:
            vni = int(w[1])
            if any(v["vni"] == vni for k, v in self.vlans.items() if k != self.current):
                raise _Refused
            vlan["vni"] = vni
        elif w == ["no", "vxlan-vni"]:
            vlan["vni"] = None
        else:
            raise _Refused

    def _config_vxlan(self, w: list[str]) -> None:
        vtep = self.vteps[self.current]
        if w[:3] == ["member", "vni", "add"] and len(w) == 4:
            vtep["members"].add(int(w[3]))
        elif w[:3] == ["member", "vni", "remove"] and len(w) == 4 and int(w[3]) in vtep["members"]:
            vtep["members"].discard(int(w[3]))
        elif w[0] == "destination-ip" and len(w) == 2:
            vtep["dest"] += [] if w[1] in vtep["dest"] else [w[1]]
        elif w[:2] == ["no", "destination-ip"] and len(w) == 3 and w[2] in vtep["dest"]:
            vtep["dest"].remove(w[2])
        else:
            raise _Refused

    def _config_if(self, w: list[str]) -> None:
        if w == ["switchport", "mode", "trunk"]:
            self.mode_of[self.current] = "trunk"
        elif w[:4] == ["switchport", "trunk", "allowed", "vlan"] and len(w) == 6 and w[4] in ("add", "remove"):
            vids = alaxala.vlan_list(w[5])
            self.allowed[self.current] = (self.allowed[self.current] | vids if w[4] == "add"
                                          else self.allowed[self.current] - vids)
        else:
            raise _Refused

    # ----------------------------------------------------------- show output
    @staticmethod
    def _ranges(ids: set[int]) -> str:
        out: list[str] = []
        for i in sorted(ids):
            if out and out[-1][1] == i - 1:
                out[-1][1] = i
            else:
                out.append([i, i])
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in out)

    def _trunking(self, vid: int) -> list[str]:
        return [n for n in self.ports if self.mode_of[n] == "trunk" and vid in self.allowed[n]]

    def show_vni(self) -> str:
        out = ["Date 2024/05/20 10:15:30 JST"]
        for vid, vtep in sorted(self.vteps.items()):
            out.append(f"VTEP ID: {vid}")
            for vni in sorted(vtep["members"]):
                out += [f"  VNI: {vni:<9} Status: enable", "                 Learning: On"]
                for vlan, v in sorted(self.vlans.items()):
                    if v["vni"] == vni:
                        out.append(f"    VLAN: {vlan:<5} Port: {','.join(self._trunking(vlan)) or '-'}")
        return "\n".join(out) + "\n"

    def running_config(self) -> str:
        out = ["#Last modified by admin at Mon May 20 10:14:02 2024 with version 12.1.H", "!",
               f'hostname "{self.HOST}"', "!", "vxlan enable", "!"]
        for vid, v in sorted(self.vlans.items()):
            out.append(f"vlan {vid}")
            out += [f'  name "{v["name"]}"'] if v["name"] else []
            out += [f"  vxlan-vni {v['vni']}"] if v["vni"] else []
            out.append("!")
        out += ["interface loopback 0", "  ip address 198.18.0.1", "!"]
        for n, kind in self.ports.items():
            out += [f"interface {kind} {n}", f"  switchport mode {self.mode_of[n]}"]
            if self.mode_of[n] == "trunk" and self.allowed[n]:
                out.append(f"  switchport trunk allowed vlan {self._ranges(self.allowed[n])}")
            if n in self.access:
                out.append(f"  switchport access vlan {self.access[n]}")
            out.append("!")
        for vid, vtep in sorted(self.vteps.items()):
            out += [f"interface vxlan {vid}", f"  source-interface {vtep['source']}"]
            out += [f"  member vni {self._ranges(vtep['members'])}"] if vtep["members"] else []
            out += [f"  destination-ip {ip}" for ip in vtep["dest"]]
            out.append("!")
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ protocol
async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _drive(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeAx(folder) as ax:
        monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(ax.known_hosts))
        management = Management("ssh", ax.address, "alaxala", f"file:{ax.client_key}")
        gw = Gateway("ax-1", "198.18.0.1", management, 8192,
                     (Port("geth1_0_1"), Port("geth1_0_2"), Port("tengeth1_0_49", True)))
        driver = SshDriver(gw, lambda: None)
        await driver.start()
        try:
            await _until(lambda: driver.health().connected)

            # read: nothing of silonet's yet; the operator's VLANs and VTEP 2 are foreign
            actual = await driver.read()
            assert actual.owned == GatewayState()
            assert actual.facts.ports == frozenset({"geth1_0_1", "geth1_0_2", "geth1_0_3", "tengeth1_0_49"})
            assert actual.facts.foreign_vnis == {7000: "ops"}
            assert actual.facts.foreign_bindings[("geth1_0_1", 10)] == "VLAN0010"
            assert ax.mode == "admin" and ax.lines == [*alaxala.SETUP, alaxala.VERSION, *alaxala.SHOW]
            assert actual.platform is not None and actual.platform.to_dict() == {"model": "AX3660S-48T4XW",
                                                                                  "version": "12.1.H"}
            assert actual.vtep_ip == "198.18.0.1" and not actual.faults
            # the operator's VLAN 10 is not silonet's to map: refused with a reason, VNI dropped
            on_vlan10 = _state({5000: ("cust-42", PEERS)}, {("geth1_0_1", 10): 5000})
            effective, failures = restrict(on_vlan10, actual.facts)
            assert effective == GatewayState() and "VLAN0010" in failures[("geth1_0_1", 10)]

            # apply: exactly the golden lines, saved in config mode, back at "#" without "!"
            effective, failures = restrict(ADDED, actual.facts)
            assert not failures
            start = len(ax.lines)
            await driver.apply(diff(effective, actual.owned))
            assert ax.lines[start:] == expected("ax-add-vni")
            assert "!AX4630S-1(config)# " in ax.prompts and ax.prompts[-1] == "AX4630S-1# "
            assert (ax.saves, ax.unsaved, ax.mode) == (1, False, "admin")
            assert ax.vlans[100] == {"name": "silonet-cust-42", "vni": 5000} and ax.vteps[1]["members"] == {5000}

            # read back: what was written is what the parser sees
            back = await driver.read()
            assert back.owned == ADDED

            # everything goes, comes back, and the flood list changes: the golden lines each time
            for case in ("ax-remove-vni", "ax-add-vni", "ax-flood-change"):
                before, desired = CASES[case]
                assert (await driver.read()).owned == before
                start = len(ax.lines)
                await driver.apply(diff(desired, before))
                assert ax.lines[start:] == expected(case), case
                assert ax.prompts[-1] == "AX4630S-1# "
            assert ax.vteps[1]["dest"] == ["198.18.0.3", "198.18.0.4"] and ax.saves == 4
            await driver.apply(diff(GatewayState(), (await driver.read()).owned))
            assert 100 not in ax.vlans and ax.vteps[1] == {"source": "loopback 0", "members": set(), "dest": []}
            assert (await driver.read()).owned == GatewayState()

            # a refused command: DeviceError naming the gateway, the line and the device's words;
            # config mode left without saving through the y/n question ("y"); session still usable
            bad = [EnsureLogicalSwitch(5000, "cust-42"), SetFloodList(5000, frozenset({"198.18.0.2"})),
                   Bind("geth9_0_9", 300, 5000)]
            start = len(ax.lines)
            with pytest.raises(DeviceError) as err:
                await driver.apply(bad)
            assert "ax-1" in str(err.value) and "interface gigabitethernet 9/0/9" in str(err.value)
            assert ax.ERROR in str(err.value)
            assert ax.lines[start:][-3:] == ["interface gigabitethernet 9/0/9", "end", "y"]
            assert ax.QUESTION in ax.prompts and ax.unsaved and ax.mode == "admin" and ax.saves == 5
            assert ax.prompts[-1] == "!AX4630S-1# "
            # the next pass sees what the refused batch left (VLAN 300 mapped, no port) and removes it
            again = await driver.read()
            assert again.owned == _state({5000: ("cust-42", frozenset({"198.18.0.2"}))}, {(alaxala.NO_PORT, 300): 5000})
            await driver.apply(diff(GatewayState(), again.owned))
            assert 300 not in ax.vlans and ax.vteps[1] == {"source": "loopback 0", "members": set(), "dest": []}
            assert (await driver.read()).owned == GatewayState() and not ax.unsaved and ax.saves == 6
        finally:
            await driver.close()


def test_ssh_driver_against_a_fake_ax_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_drive(tmp_path, monkeypatch))


def test_ax_gateway_defaults_to_8192_entries(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/gateways", json={
        "name": "ax1", "vtep_ip": "198.18.0.41",
        "management": {"driver": "ssh", "dialect": "alaxala", "address": "admin@198.18.1.41:22",
                       "credentials": "env:SILONET_SECRET_AX"},
        "ports": [{"name": "geth1_0_1"}]})
    assert r.status_code == 201 and r.json()["capacity"] == 8192
    r = client.post("/v1/gateways", json={
        "name": "ov1", "vtep_ip": "198.18.0.42", "management": {"driver": "ovsdb", "address": "tcp:127.0.0.1:1"}})
    assert r.json()["capacity"] == 4096
