"""The Linux-shell exec dialects (``sonic``, ``cumulus``): their parsers on edge cases, their
templates' idempotence, their refusals, and round trips through small models of the devices.

The models (``SonicModel``, ``NvueModel``) run the rendered lines the way the documented
commands behave: SONiC's ``config`` refuses what sonic-utilities refuses (an existing VLAN,
a VLAN with members or a map, a second map of a VLAN or a VNI, a member twice) and applies
each line at once; NVUE stages ``nv set``/``nv unset`` on a tree and applies it whole. A batch
rendered from ``diff(desired, parsed actual)``, run on the model and parsed back must give the
desired state, for a few hundred random transitions (VLANs remapped, VNIs moved and swapped
between VLANs, untagged ports, renames, flood changes). What such a switch cannot hold (VLAN 1,
one VLAN for two VNIs, an untagged port whose VNI no tagged binding carries) is refused by the
dialect's ``check``, binding by binding: the rest of the batch still converges."""

from __future__ import annotations

import copy
import json
import random
import re
import shlex

import pytest

from silonet.drivers.ssh.dialect import Target, device_facts, dialects, render_batch
from silonet.drivers.ssh.dialects import cumulus, sonic
from silonet.drivers.ssh.driver import interpret
from silonet.drivers.ssh.switchscope import Plan
from silonet.errors import DeviceError
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, diff
from silonet.plan.ownership import restrict

SONIC = dialects()["sonic"]
CUMULUS = dialects()["cumulus"]
PORTS = ("p1", "p2", "p3", "p48")
GW = Target("gw-a", "198.18.0.1", PORTS, ("p48",))
PEERS = ("198.18.0.2", "198.18.0.3", "198.18.0.4")


class DeviceRefused(AssertionError):
    """The model refused a rendered line, as the real device would."""


# ---------------------------------------------------------------------- SONiC model
class SonicModel:
    """CONFIG_DB and the sonic-utilities commands the sonic templates use."""

    def __init__(self, ports: tuple[str, ...] = PORTS) -> None:
        self.db: dict[str, dict[str, dict]] = {"PORT": {p: {"admin_status": "up"} for p in ports}}
        self.evpn: dict[int, set[str]] = {}

    def t(self, table: str) -> dict[str, dict]:
        return self.db.setdefault(table, {})

    def has(self, key: str) -> bool:
        table, _, rest = key.partition("|")
        return rest in self.db.get(table, {})

    def outputs(self) -> dict[str, str]:
        rows = "".join(f"| Vlan1 | {ip} | {vni} |\n+--+--+--+\n" for vni, ips in sorted(self.evpn.items())
                       for ip in sorted(ips))
        grid = "+--+--+--+\n| VLAN | RemoteVTEP | VNI |\n+==+==+==+\n" + rows + "Total count : 0\n"
        return {sonic.CONFIG: json.dumps({k: v for k, v in self.db.items() if v}, indent=4),
                sonic.REMOTE_VNI: grid}

    def run(self, batch: str) -> None:
        env = {"vtep": "", "nvo": ""}
        for line in batch.split(" && "):
            self.line(line, env)

    def line(self, line: str, env: dict[str, str]) -> None:
        if line.startswith("nvo=$(sonic-db-cli CONFIG_DB KEYS 'VXLAN_EVPN_NVO|*'"):
            env["nvo"] = next(("VXLAN_EVPN_NVO|" + k for k in sorted(self.t("VXLAN_EVPN_NVO"))), "")
            return
        if line.startswith('{ [ -z "$nvo" ] || vtep=$(sonic-db-cli CONFIG_DB HGET "$nvo" source_vtep)'):
            if env["nvo"]:
                env["vtep"] = self.t("VXLAN_EVPN_NVO")[env["nvo"].partition("|")[2]]["source_vtep"]
            return
        if m := re.fullmatch(r'\{ \[ -n "\$nvo" \] \|\| \[ "\$vtep" != (\S+) \] \|\| (.*); \}', line):
            if not env["nvo"] and env["vtep"] == m[1]:
                self.command(m[2].replace('"$vtep"', env["vtep"]))
            return
        line = line.replace("$vtep", env["vtep"])
        if line.startswith("has() {"):
            return
        if line.startswith("vtep=$(sonic-db-cli CONFIG_DB KEYS 'VXLAN_TUNNEL|*'"):
            env["vtep"] = next(iter(sorted(self.t("VXLAN_TUNNEL"))), "")
            return
        if m := re.fullmatch(r'\{ \[ -n "(\S*)" \] \|\| \{ vtep=(\S+); (.*); \}; \}', line):
            if not m[1]:
                env["vtep"] = m[2]
                self.command(m[3].replace('""', m[2]))
            return
        if m := re.fullmatch(r"\{ (! )?has (.+?) \|\| (.*); \}", line):
            key = shlex.split(m[2])[0]
            if self.has(key) == bool(m[1]):
                self.command(m[3])
            return
        self.command(line)

    def command(self, line: str) -> None:
        argv = shlex.split(line)
        assert argv[0] == "sudo", line
        argv = argv[1:]
        vlans, members, maps = self.t("VLAN"), self.t("VLAN_MEMBER"), self.t("VXLAN_TUNNEL_MAP")
        match argv:
            case ["config", "save", "-y"]:
                pass
            case ["sonic-db-cli", "CONFIG_DB", "HSET", key, field, value]:
                table, _, name = key.partition("|")
                assert name in self.t(table), f"HSET on missing {key}"
                self.t(table)[name][field] = value
            case ["config", "vlan", "add", vid]:
                if not 2 <= int(vid) <= 4094 or f"Vlan{vid}" in vlans:
                    raise DeviceRefused(line)
                vlans[f"Vlan{vid}"] = {"vlanid": vid}
            case ["config", "vlan", "del", vid]:
                name = f"Vlan{vid}"
                if name not in vlans or any(k.startswith(name + "|") for k in members) or \
                        any(m["vlan"] == name for m in maps.values()):
                    raise DeviceRefused(line)
                del vlans[name]
            case ["config", "vlan", "member", "add", *flags, vid, port]:
                key, untagged = f"Vlan{vid}|{port}", flags == ["-u"]
                if f"Vlan{vid}" not in vlans or key in members or port not in self.t("PORT"):
                    raise DeviceRefused(line)
                if untagged and any(k.endswith("|" + port) and m["tagging_mode"] == "untagged"
                                    for k, m in members.items()):
                    raise DeviceRefused(line + " (port can be untagged in at most one VLAN)")
                members[key] = {"tagging_mode": "untagged" if untagged else "tagged"}
            case ["config", "vlan", "member", "del", vid, port]:
                if f"Vlan{vid}|{port}" not in members:
                    raise DeviceRefused(line)
                del members[f"Vlan{vid}|{port}"]
            case ["config", "vxlan", "add", name, ip]:
                if self.t("VXLAN_TUNNEL"):
                    raise DeviceRefused(line + " (VTEP already configured)")
                self.t("VXLAN_TUNNEL")[name] = {"src_ip": ip}
            case ["config", "vxlan", "evpn_nvo", "add", nvo, name]:
                if self.t("VXLAN_EVPN_NVO") or name not in self.t("VXLAN_TUNNEL"):
                    raise DeviceRefused(line + " (EVPN NVO already configured, or no such VTEP)")
                self.t("VXLAN_EVPN_NVO")[nvo] = {"source_vtep": name}
            case ["config", "vxlan", "map", "add", name, vid, vni]:
                if name not in self.t("VXLAN_TUNNEL") or f"Vlan{vid}" not in vlans:
                    raise DeviceRefused(line)
                if any(m["vlan"] == f"Vlan{vid}" or m["vni"] == vni for m in maps.values()):
                    raise DeviceRefused(line + " (already mapped)")
                maps[f"{name}|map_{vni}_Vlan{vid}"] = {"vlan": f"Vlan{vid}", "vni": vni}
            case ["config", "vxlan", "map", "del", name, vid, vni]:
                maps.pop(f"{name}|map_{vni}_Vlan{vid}", None)
            case _:
                raise AssertionError(f"unexpected line {line!r}")


# ---------------------------------------------------------------------- NVUE model
LEAVES = {"untagged", "access", "mac-learning", "address", "enable"}


class NvueModel:
    """NVUE's applied and pending trees, and the ledger file."""

    def __init__(self, ports: tuple[str, ...] = PORTS) -> None:
        self.applied: dict = {}
        self.pending: dict | None = None
        self.ports = ports
        self.ledger: str | None = None
        self.tmp: str | None = None
        self.applies = 0

    def outputs(self) -> dict[str, str]:
        return {cumulus.CONFIG: json.dumps([{"header": {"model": "VX"}}, {"set": self.applied}]),
                cumulus.INTERFACES: json.dumps({p: {"type": "swp"} for p in ("lo", *self.ports)}),
                cumulus.LEDGER: self.ledger if self.ledger is not None else "{}"}

    def run(self, batch: str) -> None:
        for line in batch.split(" && "):
            self.line(line)

    def line(self, line: str) -> None:
        argv = shlex.split(line)
        match argv:
            case ["nv", "config", "detach"]:
                self.pending = copy.deepcopy(self.applied)
            case ["nv", "config", "apply", "-y"]:
                assert self.pending is not None, "apply without a pending revision"
                self.validate(self.pending)
                self.applied, self.pending = self.pending, None
                self.applies += 1
            case ["nv", "config", "save"] | ["mkdir", "-p", "$HOME/.silonet"]:
                pass
            case ["nv", "set", *path]:
                assert self.pending is not None, "nv set before nv config detach"
                node = self.pending
                for i, tok in enumerate(path):
                    if tok in LEAVES and i == len(path) - 2:
                        node[tok] = int(path[-1]) if path[-1].isdigit() else path[-1]
                        break
                    node = node.setdefault(tok, {})
            case ["nv", "unset", *path]:
                assert self.pending is not None, "nv unset before nv config detach"
                node = self.pending
                for tok in path[:-1]:
                    node = node.get(tok, {})
                node.pop(path[-1], None)
            case ["printf", r"%s\n", text, ">", "$HOME/.silonet/vnis.json.new"]:
                self.tmp = text
            case ["mv", "$HOME/.silonet/vnis.json.new", "$HOME/.silonet/vnis.json"]:
                assert self.tmp is not None
                self.ledger, self.tmp = self.tmp, None
            case _:
                raise AssertionError(f"unexpected line {line!r}")

    @staticmethod
    def validate(tree: dict) -> None:
        vlans = tree.get("bridge", {}).get("domain", {}).get("br_default", {}).get("vlan", {})
        seen: dict[str, str] = {}
        for vid, vlan in vlans.items():
            vnis = list(vlan.get("vni", {}))
            if len(vnis) > 1:
                raise DeviceRefused(f"VLAN {vid} maps to {vnis}")
            for vni in vnis:
                if vni in seen:
                    raise DeviceRefused(f"VNI {vni} on VLANs {seen[vni]} and {vid}")
                seen[vni] = vid


# ---------------------------------------------------------------------- helpers
def _state(switches: dict[int, tuple[str, tuple[str, ...]]], bindings: dict[tuple[str, int], int]) -> GatewayState:
    return GatewayState({v: LogicalSwitch(v, n, frozenset(f)) for v, (n, f) in switches.items()},
                        dict(sorted(bindings.items())))


def _no_flood(state: GatewayState) -> GatewayState:
    return GatewayState({v: LogicalSwitch(v, ls.network) for v, ls in state.logical_switches.items()},
                        state.bindings)


def _converge(dialect, model, desired: GatewayState) -> GatewayState:  # type: ignore[no-untyped-def]
    """One reconcile pass against the model: read, restrict, diff, render, run, read back."""
    parsed = dialect.parse(model.outputs(), GW)
    effective, _ = restrict(desired, device_facts(dialect, parsed.facts))
    ops = diff(effective, parsed.owned)
    lines = render_batch(dialect, ops, GW, parsed.owned, apply_ops(parsed.owned, ops), generation=1)
    if lines:
        model.run(dialect.join.join(lines))
    return dialect.parse(model.outputs(), GW).owned


S1 = _state({5000: ("cust-42", PEERS[:2]), 5001: ("cust-43", ())},
            {("p1", 100): 5000, ("p2", 100): 5000, ("p3", 0): 5000, ("p48", 101): 5001})


# ---------------------------------------------------------------------- parsers
@pytest.mark.parametrize("name", ["sonic", "cumulus"])
def test_an_empty_device_parses_as_nothing_owned(name: str) -> None:
    if name == "sonic":
        outputs = {sonic.CONFIG: "{}", sonic.REMOTE_VNI: "Total count : 0\n"}
    else:
        outputs = {cumulus.CONFIG: '[{"header": {}}, {"set": {}}]', cumulus.INTERFACES: "{}", cumulus.LEDGER: "{}"}
    parsed = dialects()[name].parse(outputs, GW)
    assert parsed.owned == GatewayState()
    assert parsed.facts.foreign_bindings == {} and parsed.facts.foreign_vnis == {}
    assert parsed.facts.ports is None and parsed.faults == {}


def test_sonic_untagged_member_reads_as_vlan_0_and_a_vni_without_evpn_peers_has_no_flood_list() -> None:
    model = SonicModel()
    model.db.update({
        "VLAN": {"Vlan100": {"vlanid": "100", "description": "silonet:cust-42"},
                 "Vlan101": {"vlanid": "101", "description": "silonet:cust-43"}},
        "VLAN_MEMBER": {"Vlan100|p1": {"tagging_mode": "tagged"}, "Vlan100|p3": {"tagging_mode": "untagged"},
                        "Vlan101|p48": {"tagging_mode": "tagged"}},
        "VXLAN_TUNNEL": {"vtep": {"src_ip": "198.18.0.1"}},
        "VXLAN_TUNNEL_MAP": {"vtep|map_5000_Vlan100": {"vlan": "Vlan100", "vni": "5000"},
                             "vtep|map_5001_Vlan101": {"vlan": "Vlan101", "vni": "5001"}}})
    model.evpn = {5000: {"198.18.0.2"}}
    parsed = SONIC.parse(model.outputs(), GW)
    assert parsed.owned.bindings == {("p1", 100): 5000, ("p3", 0): 5000, ("p48", 101): 5001}
    assert parsed.owned.logical_switches[5000].flood == {"198.18.0.2"}
    assert parsed.owned.logical_switches[5001].flood == frozenset()
    assert parsed.owned.logical_switches[5001].network == "cust-43"


def test_sonic_foreign_vlans_block_their_vlan_id_on_every_gateway_port() -> None:
    model = SonicModel()
    model.db.update({
        "VLAN": {"Vlan200": {"vlanid": "200"}, "Vlan300": {"vlanid": "300", "description": "storage"}},
        "VLAN_MEMBER": {"Vlan200|p2": {"tagging_mode": "tagged"}, "Vlan300|p3": {"tagging_mode": "untagged"}},
        "VXLAN_TUNNEL": {"evpn-vtep": {"src_ip": "198.19.0.9"}},
        "VXLAN_TUNNEL_MAP": {"evpn-vtep|map_7000_Vlan200": {"vlan": "Vlan200", "vni": "7000"}},
        "VRF": {"Vrf1": {"vni": "9000"}}})
    parsed = SONIC.parse(model.outputs(), GW)
    facts = parsed.facts
    assert parsed.owned == GatewayState()
    assert facts.foreign_vnis == {7000: "map_7000_Vlan200", 9000: "VRF Vrf1"}
    assert facts.foreign_bindings[("p2", 200)] == "map_7000_Vlan200"
    assert facts.foreign_bindings[("p3", 0)] == "Vlan300"  # its untagged VLAN is taken
    assert all(facts.foreign_bindings[(p, 200)] == "map_7000_Vlan200" for p in PORTS)
    assert all((p, 300) in facts.foreign_bindings for p in PORTS)
    assert parsed.vtep_ip == "198.19.0.9"  # the driver compares it with the inventory's
    assert [f.split(":")[0] for f in parsed.faults["switch"]] == ["no EVPN NVO (VXLAN_EVPN_NVO) names VTEP evpn-vtep"]


def test_sonic_untagged_only_member_of_a_silonet_vlan_is_reported_not_owned() -> None:
    model = SonicModel()
    model.db.update({
        "VLAN": {"Vlan100": {"vlanid": "100", "description": "silonet:cust-42"}},
        "VLAN_MEMBER": {"Vlan100|p3": {"tagging_mode": "untagged"}},
        "VXLAN_TUNNEL": {"vtep": {"src_ip": "198.18.0.1"}},
        "VXLAN_TUNNEL_MAP": {"vtep|map_5000_Vlan100": {"vlan": "Vlan100", "vni": "5000"}}})
    parsed = SONIC.parse(model.outputs(), GW)
    assert parsed.owned.bindings == {} and 5000 in parsed.owned.logical_switches
    assert parsed.facts.foreign_bindings == {("p3", 0): "Vlan100 untagged"}
    assert "port p3" in parsed.faults


def test_sonic_remote_vni_grid_parses_per_vni() -> None:
    grid = ("+---------+--------------+--------+\n| VLAN    | RemoteVTEP   |    VNI |\n"
            "+=========+==============+========+\n| Vlan100 | 198.18.0.2   | 500100 |\n"
            "+---------+--------------+--------+\n| Vlan100 | 198.18.0.3   | 500100 |\n"
            "+---------+--------------+--------+\nTotal count : 2\n")
    assert sonic.remote_vnis(grid) == {500100: {"198.18.0.2", "198.18.0.3"}}
    assert sonic.remote_vnis("") == {}


def _nvue(tree: dict, ledger: dict | None = None, ports: tuple[str, ...] = PORTS) -> dict[str, str]:
    return {cumulus.CONFIG: json.dumps([{"header": {}}, {"set": tree}]),
            cumulus.INTERFACES: json.dumps({p: {} for p in ports}),
            cumulus.LEDGER: json.dumps(ledger or {})}


def test_cumulus_untagged_port_reads_as_vlan_0_and_a_vni_without_her_has_no_flood_list() -> None:
    tree = {"bridge": {"domain": {"br_default": {"vlan": {
                "100": {"vni": {"5000": {"flooding": {"head-end-replication": {"198.18.0.2": {}, "evpn": {}}}}}},
                "101": {"vni": {"5001": {"mac-learning": "on"}}}}}}},
            "interface": {"p1": {"bridge": {"domain": {"br_default": {"vlan": {"100": {}}}}}},
                          "p3": {"bridge": {"domain": {"br_default": {"untagged": 100, "vlan": {"100": {}}}}}},
                          "p48": {"bridge": {"domain": {"br_default": {"vlan": {"101": {}}}}}}},
            "nve": {"vxlan": {"source": {"address": "198.18.0.1"}}}}
    parsed = CUMULUS.parse(_nvue(tree, {"5000": "cust-42", "5001": "cust-43"}), GW)
    assert parsed.owned.bindings == {("p1", 100): 5000, ("p3", 0): 5000, ("p48", 101): 5001}
    assert parsed.owned.logical_switches[5000].flood == {"198.18.0.2"}  # "evpn" is not a peer
    assert parsed.owned.logical_switches[5001].flood == frozenset()
    assert parsed.faults == {}


def test_cumulus_without_ledger_everything_is_foreign_and_all_vlan_trunks_are_faults() -> None:
    tree = {"bridge": {"domain": {"br_default": {"vlan": {"100": {"vni": {"5000": {}}}, "10,20-21": {}}}}},
            "interface": {"p1": {"bridge": {"domain": {"br_default": {}}}},
                          "swp1-2": {"bridge": {"domain": {"br_default": {"vlan": {"20": {}}}}}}},
            "nve": {"vxlan": {"source": {"address": "198.19.9.9"}}},
            "vrf": {"RED": {"evpn": {"vni": {"4001": {}}}}}}
    parsed = CUMULUS.parse(_nvue(tree, None, (*PORTS, "swp1", "swp2")), GW)
    facts = parsed.facts
    assert parsed.owned == GatewayState()
    assert facts.foreign_vnis == {5000: "br_default vlan 100 vni 5000", 4001: "vrf RED"}
    assert facts.foreign_bindings[("swp1", 20)] == facts.foreign_bindings[("swp2", 20)] == "br_default vlan 20"
    assert facts.foreign_bindings[("p1", 100)] == "br_default vlan all"
    assert all((p, v) in facts.foreign_bindings for p in PORTS for v in (10, 20, 21, 100))
    assert parsed.faults["port p1"] == ["trunks every br_default VLAN (no VLAN list)"]
    assert parsed.vtep_ip == "198.19.9.9"  # driver.interpret makes the fault: the inventory says 198.18.0.1
    assert "198.19.9.9" in interpret(CUMULUS, GW, parsed).faults["switch"][0]


# ---------------------------------------------------------------------- templates
STATES = [GatewayState(), S1,
          _state({5000: ("a", PEERS)}, {("p1", 100): 5000}),
          _state({5000: ("a", ()), 5001: ("b", PEERS[:1])},
                 {("p1", 100): 5000, ("p2", 0): 5000, ("p3", 0): 5001, ("p48", 200): 5001})]


@pytest.mark.parametrize("name", ["sonic", "cumulus"])
@pytest.mark.parametrize("state", range(len(STATES)))
def test_the_diff_of_a_state_against_itself_renders_no_line(name: str, state: int) -> None:
    s = STATES[state]
    assert diff(s, s) == []
    assert render_batch(dialects()[name], diff(s, s), GW, s, s) == []


@pytest.mark.parametrize("name", ["sonic", "cumulus"])
@pytest.mark.parametrize(("desired", "refused", "why"), [
    (_state({5000: ("a", ())}, {("p1", 1): 5000, ("p2", 100): 5000}), ("p1", 1), "VLAN 1 is the switch's default VLAN"),
    (_state({5000: ("a", ()), 5001: ("b", ())}, {("p1", 0): 5000, ("p2", 100): 5001}), ("p1", 0),
     "no tagged binding of that VNI"),
    (_state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 200): 5000}), ("p2", 200),
     "VNI 5000 would need VLANs 100, 200"),
    (_state({5000: ("a", ()), 5001: ("b", ())}, {("p1", 100): 5000, ("p2", 100): 5001}), ("p2", 100),
     "VLAN 100 would map to VNIs 5000, 5001"),
    (_state({5000: ("a", ())}, {("p1", 100): 5000, ("p1", 0): 5000}), ("p1", 0), "both a tagged and the untagged"),
])
def test_what_a_switch_scoped_platform_cannot_do_fails_that_binding_alone(
        name: str, desired: GatewayState, refused: tuple[str, int], why: str) -> None:
    """The dialect's check refuses the binding (a binding error of its attachment, naming the rule);
    the rest of the batch is applied; a batch that still holds it is refused before a line exists."""
    dialect = dialects()[name]
    model = SonicModel() if name == "sonic" else NvueModel()
    effective, failures = restrict(desired, device_facts(dialect))
    assert list(failures) == [refused] and why in failures[refused]
    assert effective.bindings == {k: v for k, v in desired.bindings.items() if k != refused}
    got = _converge(dialect, model, desired)
    assert got.bindings == effective.bindings and set(got.logical_switches) == set(effective.logical_switches)
    with pytest.raises(DeviceError) as err:
        render_batch(dialect, diff(desired, GatewayState()), GW, GatewayState(), desired)
    assert "gw-a" in str(err.value) and why in str(err.value) and "nothing was sent" in str(err.value)


@pytest.mark.parametrize("name", ["sonic", "cumulus"])
@pytest.mark.parametrize(("before", "after"), [
    # the VNI moves from VLAN 100 to 200: its untagged port p2 follows it
    (_state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 0): 5000}),
     _state({5000: ("a", ())}, {("p1", 200): 5000, ("p2", 0): 5000})),
    # p2 turns from a tagged into the untagged member of VLAN 100, and back
    (_state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 100): 5000}),
     _state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 0): 5000})),
    (_state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 0): 5000}),
     _state({5000: ("a", ())}, {("p1", 100): 5000, ("p2", 100): 5000})),
    # VLAN 100 changes network (VNI 5000 -> 5001) under its ports, the old VNI goes
    (_state({5000: ("a", PEERS[:1])}, {("p1", 100): 5000, ("p2", 0): 5000}),
     _state({5001: ("b", PEERS[1:])}, {("p1", 100): 5001, ("p2", 0): 5001})),
])
def test_untagged_ports_and_remapped_vlans_converge(name: str, before: GatewayState, after: GatewayState) -> None:
    dialect = dialects()[name]
    model = SonicModel() if name == "sonic" else NvueModel()
    strip = _no_flood if name == "sonic" else (lambda s: s)
    assert strip(_converge(dialect, model, before)) == strip(before)
    assert strip(_converge(dialect, model, after)) == strip(after)


def test_a_sonic_flood_list_change_alone_sends_nothing() -> None:
    before = _state({5000: ("a", PEERS[:1])}, {("p1", 100): 5000})
    after = _state({5000: ("a", PEERS[1:])}, {("p1", 100): 5000})
    assert render_batch(SONIC, diff(after, before), GW, before, after) == []
    assert render_batch(CUMULUS, diff(after, before), GW, before, after)[1:-2] == [
        "nv unset bridge domain br_default vlan 100 vni 5000 flooding head-end-replication 198.18.0.2",
        "nv set bridge domain br_default vlan 100 vni 5000 flooding head-end-replication 198.18.0.3",
        "nv set bridge domain br_default vlan 100 vni 5000 flooding head-end-replication 198.18.0.4"]


def test_the_plan_swaps_two_vlans_unmapping_both_before_mapping_either() -> None:
    before = _state({5000: ("a", ()), 5001: ("b", ())}, {("p1", 100): 5000, ("p2", 200): 5001})
    after = _state({5000: ("a", ()), 5001: ("b", ())}, {("p1", 200): 5000, ("p2", 100): 5001})
    ops = diff(after, before)
    p = Plan(ops, before, after)
    first = p.work(0)
    assert sorted(first.unmap) == [(100, 5000), (200, 5001)] and [m[:2] for m in first.map] == [(200, 5000)]
    assert p.work(1).unmap == [] and [m[:2] for m in p.work(1).map] == [(100, 5001)]


def test_a_rename_only_rewrites_the_name() -> None:
    before = _state({5000: ("a", ())}, {("p1", 100): 5000})
    after = _state({5000: ("b", ())}, {("p1", 100): 5000})
    lines = render_batch(SONIC, diff(after, before), GW, before, after)
    assert lines[1:] == ["sudo sonic-db-cli CONFIG_DB HSET 'VLAN|Vlan100' description silonet:b",
                         "sudo config save -y"]
    lines = render_batch(CUMULUS, diff(after, before), GW, before, after)
    assert not any(line.startswith("nv ") for line in lines)  # the name lives in the ledger only
    assert "'{\"5000\": \"b\"}'" in lines[1]


# ---------------------------------------------------------------------- round trips
def _random_state(rng: random.Random) -> GatewayState:
    vnis = rng.sample(range(5000, 5006), rng.randint(0, 4))
    vlans = rng.sample([100, 101, 102, 103, 104, 105], len(vnis))
    switches: dict[int, tuple[str, tuple[str, ...]]] = {}
    bindings: dict[tuple[str, int], int] = {}
    for vni, vlan in zip(vnis, vlans, strict=True):
        switches[vni] = (rng.choice(["red", "blue"]) + str(vni), tuple(rng.sample(PEERS, rng.randint(0, 3))))
        for port in rng.sample(PORTS, rng.randint(1, 3)):
            bindings[(port, vlan)] = vni
    for port in PORTS:
        if rng.random() < 0.25 and vnis:
            vni = rng.choice(vnis)
            vlan = vlans[vnis.index(vni)]
            if (port, vlan) not in bindings:
                bindings[(port, 0)] = vni
    return _state(switches, bindings)


@pytest.mark.parametrize("name", ["sonic", "cumulus"])
def test_random_transitions_converge_in_one_batch_on_the_device_model(name: str) -> None:
    dialect = dialects()[name]
    model = SonicModel() if name == "sonic" else NvueModel()
    rng = random.Random(20261125)
    done = 0
    for _ in range(300):
        desired = _random_state(rng)
        got = _converge(dialect, model, desired)
        want = _no_flood(desired) if name == "sonic" else desired
        assert (_no_flood(got) if name == "sonic" else got) == want
        done += 1
    assert done == 300
    if name == "cumulus":
        assert model.applies > 0


def test_a_sonic_batch_cut_short_is_completed_by_the_next_pass() -> None:
    model = SonicModel()
    desired = S1
    parsed = SONIC.parse(model.outputs(), GW)
    ops = diff(desired, parsed.owned)
    lines = render_batch(SONIC, ops, GW, parsed.owned, apply_ops(parsed.owned, ops))
    cut = next(i for i, line in enumerate(lines) if "map add" in line) + 1
    model.run(" && ".join(lines[:cut]))  # the VLAN exists, described and mapped; no member yet
    assert _no_flood(_converge(SONIC, model, desired)) == _no_flood(desired)


def test_cumulus_ledger_keeps_every_applied_vni_while_the_revision_applies() -> None:
    model = NvueModel()
    _converge(CUMULUS, model, _state({5000: ("a", ())}, {("p1", 100): 5000}))
    target = _state({5001: ("b", ())}, {("p2", 101): 5001})
    parsed = CUMULUS.parse(model.outputs(), GW)
    ops = diff(target, parsed.owned)
    lines = render_batch(CUMULUS, ops, GW, parsed.owned, apply_ops(parsed.owned, ops))
    apply = lines.index("nv config apply -y")
    ledger_during = next(line for line in lines[:apply] if line.startswith("printf"))
    assert '"5000": "a"' in ledger_during and '"5001": "b"' in ledger_during
    ledger_after = next(line for line in lines[apply:] if line.startswith("printf"))
    assert '"5000"' not in ledger_after
    model.run(" && ".join(lines))
    assert CUMULUS.parse(model.outputs(), GW).owned == target


# ---------------------------------------------------------------------- the batch in a real shell
STUB = """#!{python}
import copy, json, os, re, shlex, sys
PORTS = {ports!r}
LEAVES = {leaves!r}
{classes}
path = os.environ["SILONET_FAKE_STATE"]
with open(path) as f:
    state = json.load(f)
sonic_model, nvue_model = SonicModel(), NvueModel()
sonic_model.db, nvue_model.applied, nvue_model.pending = state["db"], state["applied"], state["pending"]
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
try:
    if name == "sonic-db-cli" and args[1] == "EXISTS":
        print(1 if sonic_model.has(args[2]) else 0)
    elif name == "sonic-db-cli" and args[1] == "HGET":
        table, _, key = args[2].partition("|")
        print(sonic_model.db[table][key][args[3]])
    elif name == "sonic-db-cli" and args[1] == "KEYS":
        table = args[2].split("|")[0]
        print("\\n".join(table + "|" + k for k in sorted(sonic_model.db.get(table, {{}}))))
    elif name in ("sonic-db-cli", "config"):
        sonic_model.command(shlex.join(["sudo", name, *args]))
    else:
        nvue_model.line(shlex.join([name, *args]))
except DeviceRefused as err:
    print("Error: " + str(err), file=sys.stderr)
    sys.exit(2)
with open(path, "w") as f:
    json.dump({{"db": sonic_model.db, "applied": nvue_model.applied, "pending": nvue_model.pending}}, f)
"""


@pytest.mark.parametrize("name", ["sonic", "cumulus"])
def test_batches_run_in_bash_as_on_the_model(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The guards (``has KEY || ...``), ``$vtep``, quoting and the ledger file in a real shell, with
    the device's commands stubbed by the models above: bash must leave the device where the
    line-by-line reading of ``SonicModel``/``NvueModel`` does."""
    import inspect
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    classes = "\n\n".join(inspect.getsource(c) for c in (DeviceRefused, SonicModel, NvueModel))
    stub = STUB.format(python=sys.executable, ports=PORTS, leaves=LEAVES, classes=classes)
    for cmd in ("sonic-db-cli", "config", "nv"):
        (bin_dir / cmd).write_text(stub)
        (bin_dir / cmd).chmod(0o755)
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    dialect = dialects()[name]
    sonic_model, nvue_model = SonicModel(), NvueModel()
    state = tmp_path / "state.json"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "SILONET_FAKE_STATE": str(state)}
    ledger = tmp_path / ".silonet" / "vnis.json"

    def outputs() -> dict[str, str]:
        if name == "sonic":
            return sonic_model.outputs()
        return {**nvue_model.outputs(), cumulus.LEDGER: ledger.read_text() if ledger.exists() else "{}"}

    after = _state({5000: ("cust-42", PEERS[:1]), 5001: ("cust-43", ())},
                   {("p1", 200): 5000, ("p2", 0): 5000, ("p48", 101): 5001})
    strip = _no_flood if name == "sonic" else (lambda s: s)
    for desired in (S1, after, GatewayState()):
        parsed = dialect.parse(outputs(), GW)
        ops = diff(desired, parsed.owned)
        batch = dialect.join.join(render_batch(dialect, ops, GW, parsed.owned, apply_ops(parsed.owned, ops)))
        state.write_text(json.dumps({"db": sonic_model.db, "applied": nvue_model.applied,
                                     "pending": nvue_model.pending}))
        done = subprocess.run(["bash", "-c", batch], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        saved = json.loads(state.read_text())
        sonic_model.db, nvue_model.applied, nvue_model.pending = saved["db"], saved["applied"], saved["pending"]
        assert strip(dialect.parse(outputs(), GW).owned) == strip(desired)
