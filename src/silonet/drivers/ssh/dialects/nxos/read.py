"""What an NX-OS switch's answers say: ``show version | json`` (the platform), ``show vlan brief
| json`` (the VLANs), ``show nve vni | json`` (the VNIs) and ``show running-config interface``
(the nve1 members and peers, the ports' mapping lines, the SVIs, the tunnel source).

Everything here is untrusted input (docs/architecture.md, "Trust boundaries"): numbers are read
as numbers or left out with a fault, names are bounded and escaped before they reach a reason.
The sources each reading was proven on are in the package docstring and the corpus
(tests/drivers/ssh/corpus/nxos).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import Parsed, Refusals, Target, platform
from silonet.drivers.untrusted import echo, shown
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

VERSION = "show version | json"
SHOW_VLAN = "show vlan brief | json"
SHOW_NVE = "show nve vni | json"
SHOW_RUN = "show running-config interface"
MARK = "silonet-"
NVE = "nve1"
XLATE_BASE, XLATE_SPAN = 2000, 1968  # translated VLANs 2000..3967
XLATE_LAST = XLATE_BASE + XLATE_SPAN - 1
MAX_RANGE = 4094  # VNIs one "member vni A-B" line may name: no switch holds more VLAN-backed VNIs
MAX_MEMBERS = 16384  # nve1 members read at most (a switch holds a few thousand)
NAME_MAX = 64  # a foreign name as silonet repeats it


def translated_vlan(vni: int) -> int:
    return XLATE_BASE + vni % XLATE_SPAN


def in_range(vlan: int) -> bool:
    return XLATE_BASE <= vlan <= XLATE_LAST


# ---------------------------------------------------------------- version
def read_version(answer: str) -> Platform:
    """``show version | json``: ``nxos_ver_str`` (NX-OS 7.0(3)I2 and later, Nexus 9000) or
    ``sys_ver_str`` (older trains), ``chassis_id`` for the model. A suffix such as ``[build ...]``
    is not the version: the first word is."""
    obj = _json(answer)
    text = obj.get("nxos_ver_str") or obj.get("sys_ver_str") or obj.get("kickstart_ver_str")
    if not isinstance(text, str) or not text.split():
        raise ValueError(f"no nxos_ver_str or sys_ver_str in {shown(answer[:200])}")
    return platform(obj.get("chassis_id") or "", text.split()[0])


# ---------------------------------------------------------------- JSON tables
def _json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        return {}  # NX-OS answers nothing at all for an empty table
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object: {shown(text[:200])}")
    return obj


def _rows(obj: dict[str, Any], table: str, row: str) -> list[dict[str, Any]]:
    """NX-OS JSON tables: a list of rows, or one row as an object, or nothing."""
    tab = obj.get(table)
    rows = tab.get(row) if isinstance(tab, dict) else None
    rows = [rows] if isinstance(rows, dict) else rows if isinstance(rows, list) else []
    return [r for r in rows if isinstance(r, dict)]


def _number(value: object) -> int | None:
    """A JSON number or a string of digits (``| json`` prints strings, ``| json native`` numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        return int(value.strip())
    return None


def vlan_names(text: str, faults: list[str]) -> dict[int, str]:
    """``show vlan brief | json`` (``TABLE_vlanbriefxbrief``; ``show vlan | json`` prints the same
    rows as ``TABLE_vlanbrief``): VLAN -> name. The ID is read from ``vlanshowbr-vlanid-utf``:
    some releases print ``vlanshowbr-vlanid`` encoded (16777216 for VLAN 1, the cisco.nxos
    fixture in the corpus), which is why NAPALM and the cisco.nxos modules read the -utf key."""
    obj = _json(text)
    rows = _rows(obj, "TABLE_vlanbriefxbrief", "ROW_vlanbriefxbrief") or _rows(obj, "TABLE_vlanbrief", "ROW_vlanbrief")
    out: dict[int, str] = {}
    for r in rows:
        raw = r.get("vlanshowbr-vlanid-utf", r.get("vlanshowbr-vlanid"))
        vlan = _number(raw)
        if vlan is None or not 1 <= vlan <= 4094:
            faults.append(f"{SHOW_VLAN}: VLAN ID {shown(raw)} is not a VLAN; ignored")
            continue
        out[vlan] = echo(r.get("vlanshowbr-vlanname") or "", NAME_MAX)
    return out


@dataclass
class NveRows:
    """``show nve vni | json``: L2 VNIs with their VLAN, L3 VNIs with their VRF."""

    vlan_of: dict[int, int] = field(default_factory=dict)
    vrf_of: dict[int, str] = field(default_factory=dict)
    other: dict[int, str] = field(default_factory=dict)  # a type this reader does not know, as printed


def nve_rows(text: str, faults: list[str]) -> NveRows:
    out = NveRows()
    for r in _rows(_json(text), "TABLE_nve_vni", "ROW_nve_vni"):
        vni = _number(r.get("vni"))
        if vni is None or not 1 <= vni <= 16777215:
            faults.append(f"{SHOW_NVE}: VNI {shown(r.get('vni'))} is not a VNI; ignored")
            continue
        kind = str(r.get("type", "")).strip()
        if (m := re.fullmatch(r"L2 \[(\d{1,4})\]", kind)) and 1 <= int(m[1]) <= 4094:
            out.vlan_of[vni] = int(m[1])
        elif m := re.fullmatch(r"L3 \[(.*)\]", kind):  # the VRF it routes for (an L3 VNI, EVPN)
            out.vrf_of[vni] = echo(m[1], NAME_MAX)
        else:
            out.other[vni] = echo(kind or "unknown type", NAME_MAX)
    return out


# ---------------------------------------------------------------- running-config
def running_interfaces(text: str) -> dict[str, list[str]]:
    """``show running-config interface`` -> interface name -> its (stripped) lines. Other sections
    of a longer capture (``show running-config``) end the interface before them."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        if m := re.match(r"^interface (\S+)\s*$", raw):
            current = out.setdefault(m[1], [])
        elif current is not None and raw[:1].isspace() and raw.strip():
            current.append(raw.strip())
        elif raw.strip() and not raw.startswith("!"):
            current = None
    return out


@dataclass
class Nve:
    """``interface nve1`` as configured: members (an L3 member is ``associate-vrf``), the static
    ingress-replication peers of each, and whether BGP EVPN is its host reachability."""

    members: dict[int, bool] = field(default_factory=dict)  # VNI -> associate-vrf
    peers: dict[int, set[str]] = field(default_factory=dict)
    evpn: bool = False
    source: str | None = None  # source-interface


def nve_config(lines: list[str], faults: list[str]) -> Nve:
    """``member vni N`` or ``member vni A-B`` (NX-OS prints consecutive members with the same
    settings as one range: the cisco genieparser capture in the corpus), optionally
    ``associate-vrf``; the lines after it, up to the next member, apply to every VNI it names."""
    nve = Nve()
    current: list[int] = []
    for line in lines:
        if line.startswith("member vni "):
            current = []
            m = re.fullmatch(r"member vni (\d{1,8})(?:-(\d{1,8}))?( associate-vrf)?", line)
            first = int(m[1]) if m else 0
            last = int(m[2]) if m and m[2] else first
            if not m or not 1 <= first <= last <= 16777215 or last - first >= MAX_RANGE \
                    or len(nve.members) + last - first >= MAX_MEMBERS:
                faults.append(f"interface {NVE}: cannot read {shown(line)}; its VNIs and peers are ignored")
                continue
            current = list(range(first, last + 1))
            for vni in current:
                nve.members[vni] = bool(m[3])
                nve.peers.setdefault(vni, set())
        elif m := re.fullmatch(r"peer-ip (\S+)", line):
            for vni in current:
                nve.peers[vni].add(m[1])
        elif line == "host-reachability protocol bgp":
            nve.evpn = True
        elif m := re.fullmatch(r"source-interface (\S+)", line):
            nve.source = m[1]
    return nve


def interface_address(lines: list[str]) -> str | None:
    """The primary ``ip address A.B.C.D/len`` of an interface (a ``secondary`` one is not it)."""
    for line in lines:
        if (m := re.fullmatch(r"ip address (\d{1,3}(?:\.\d{1,3}){3})/\d{1,2}", line)) is not None:
            return m[1]
    return None


def secondary_addresses(lines: list[str]) -> tuple[str, ...]:
    """An interface's ``ip address A.B.C.D/len secondary`` lines: on a vPC pair's NVE source
    loopback, the anycast VTEP both members share."""
    return tuple(m[1] for line in lines
                 if (m := re.fullmatch(r"ip address (\d{1,3}(?:\.\d{1,3}){3})/\d{1,2} secondary", line)))


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def vlan_list(text: str) -> set[int] | None:
    """``1-99,101,200-210`` -> the VLANs (None when it is not such a list)."""
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\d{1,4})(?:-(\d{1,4}))?", part.strip())
        if not m:
            return None
        first, last = int(m[1]), int(m[2] or m[1])
        if not 1 <= first <= last <= 4094:
            return None
        out.update(range(first, last + 1))
    return out


def trunk_vlans(lines: list[str]) -> set[int] | None:
    """The VLANs a trunk port carries by its ``switchport trunk allowed vlan`` lines (the running
    config continues a long list with ``... allowed vlan add``); None: every VLAN (no such line)."""
    allowed: set[int] | None = None
    for line in lines:
        if line == "switchport trunk allowed vlan none":
            allowed = set()
        elif m := re.fullmatch(r"switchport trunk allowed vlan (add )?(\S+)", line):
            vlans = vlan_list(m[2])
            if vlans is not None:
                allowed = (allowed or set()) | vlans if m[1] else vlans
    return allowed


# ---------------------------------------------------------------- what the device rules out
EVPN_RULE = (f"interface {NVE} uses host-reachability protocol bgp (BGP EVPN), beside which NX-OS refuses "
             "'ingress-replication protocol static', the flood list this dialect writes: silonet adds no VNI here")


@dataclass(frozen=True)
class Unholdable:
    """The bindings this device's own configuration rules out (``DeviceFacts.refuse``): every new
    VNI on a BGP EVPN nve1, and a VNI whose translated VLAN someone else holds. VNIs silonet
    already has there (``kept``) stay."""

    evpn: bool
    taken: Mapping[int, str]  # translated VLAN -> what holds it
    kept: frozenset[int]

    def __call__(self, state: GatewayState) -> Refusals:
        out: Refusals = {}
        for key, vni in state.bindings.items():
            if vni in self.kept:
                continue
            t = translated_vlan(vni)
            if self.evpn:
                out[key] = EVPN_RULE
            elif t in self.taken:
                out[key] = (f"VNI {vni} would translate to VLAN {t}, which {self.taken[t]} holds on this switch "
                            f"(silonet's translated VLANs are {XLATE_BASE}-{XLATE_LAST}): left alone")
        return out


# ---------------------------------------------------------------- the whole reading
def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    faults: dict[str, list[str]] = {}
    switch: list[str] = []
    names = vlan_names(outputs[SHOW_VLAN], switch)
    rows = nve_rows(outputs[SHOW_NVE], switch)
    interfaces = running_interfaces(outputs[SHOW_RUN])
    if NVE not in interfaces:
        switch.append(f"interface {NVE} is not configured")
    nve = nve_config(interfaces.get(NVE, []), switch)
    if nve.evpn:
        switch.append(EVPN_RULE)

    owned: dict[int, int] = {}  # translated VLAN -> VNI
    switches: dict[int, LogicalSwitch] = {}
    foreign_vnis: dict[int, str] = {}
    for vni, vlan in sorted(rows.vlan_of.items()):
        name = names.get(vlan, "")
        if name.startswith(MARK) and vlan == translated_vlan(vni) and not nve.members.get(vni):
            owned[vlan] = vni
            switches[vni] = LogicalSwitch(vni, name[len(MARK):], frozenset(nve.peers.get(vni, ())))
            continue
        foreign_vnis[vni] = name or f"VLAN{vlan:04d}"
        if name.startswith(MARK):
            switch.append(f"VLAN {vlan} '{name}' carries VNI {vni}, whose silonet VLAN is {translated_vlan(vni)}: "
                          "left alone")
    for vni, vrf in rows.vrf_of.items():
        foreign_vnis[vni] = f"vrf {vrf}"
    foreign_vnis.update(rows.other)
    for vni, l3 in nve.members.items():  # members the table does not list (a VNI down, a VRF not yet up)
        if vni not in switches and vni not in foreign_vnis and not names.get(translated_vlan(vni), "").startswith(MARK):
            foreign_vnis[vni] = "L3 (associate-vrf)" if l3 else f"L2 ({NVE} member)"

    taken: dict[int, str] = {}
    for vlan, name in sorted(names.items()):
        if in_range(vlan) and vlan not in owned and not name.startswith(MARK):
            taken[vlan] = f"VLAN {vlan} '{name}'"
            switch.append(f"VLAN {vlan} '{name}' lies in silonet's translated range {XLATE_BASE}-{XLATE_LAST}: "
                          "VNIs that translate onto it are refused")
    for dev in interfaces:
        if (m := re.fullmatch(r"Vlan(\d{1,4})", dev)) and in_range(vlan := int(m[1])) and vlan not in owned \
                and vlan not in taken and not names.get(vlan, "").startswith(MARK):
            taken[vlan] = f"interface Vlan{vlan} (an SVI)"
            switch.append(f"interface Vlan{vlan} (an SVI) lies in silonet's translated range "
                          f"{XLATE_BASE}-{XLATE_LAST}: VNIs that translate onto it are refused")
    if switch:
        faults["switch"] = switch

    trunks = {_port(dev) for dev, lines in interfaces.items() if "switchport mode trunk" in lines}
    managed = set(gw.ports) if gw.ports else trunks
    bindings: dict[tuple[str, int], int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    for dev, lines in interfaces.items():
        port = _port(dev)
        if port not in managed:
            continue
        if port not in trunks:
            faults[f"port {port}"] = ["not a trunk port: NX-OS port VLAN mapping needs switchport mode trunk"]
        for line in lines:
            if not (m := re.fullmatch(r"switchport vlan mapping (\d{1,4}) (\d{1,4})", line)):
                continue
            ingress, xlated = int(m[1]), int(m[2])
            if xlated in owned:
                bindings[(port, ingress)] = owned[xlated]
            else:
                foreign_bindings[(port, ingress)] = names.get(xlated) or f"VLAN{xlated:04d}"
        # someone else's VLAN the trunk carries as it is: a mapping of that ingress VLAN would take it over
        carried = trunk_vlans(lines)
        for vlan, name in names.items() if port in trunks else ():
            if vlan not in owned and (carried is None or vlan in carried) and (port, vlan) not in bindings:
                foreign_bindings.setdefault((port, vlan), name or f"VLAN{vlan:04d}")

    refuse = Unholdable(nve.evpn, taken, frozenset(switches)) if nve.evpn or taken else None
    facts = DeviceFacts(frozenset(trunks), dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        refuse=refuse)
    lines = interfaces.get(nve.source, []) if nve.source else []
    return Parsed(GatewayState(switches, dict(sorted(bindings.items()))), facts, {}, faults,
                  vtep_ip=interface_address(lines) if nve.source else None, vtep_also=secondary_addresses(lines))
