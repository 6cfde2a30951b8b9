"""Reading an AX: ``show running-config`` and ``show vxlan vni`` -> silonet's state and everyone
else's (``read``), ``show version`` -> the platform (``version``). The rules are in the package
docstring; the shapes are those of the captures in tests/drivers/ssh/corpus/alaxala/."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import Parsed, Target, platform
from silonet.drivers.untrusted import bounded_range
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

SHOW_VNI = "show vxlan vni"
SHOW_CONFIG = "show running-config"
VERSION = "show version"
# ``[!]host[(config...)]>|#``, or the y/n question on leaving config mode unsaved.
PROMPT = r"(^!?[^\s()<>#!]+(\(config[^)]*\))?[>#]|\(y/n\):?)[ \t\x00]*$"

SHORT = {"gigabitethernet": "geth", "tengigabitethernet": "tengeth"}
LONG = {short: kind for kind, short in SHORT.items()}
PORT_KINDS = frozenset({*SHORT, "twentyfivegigabitethernet", "fortygigabitethernet", "hundredgigabitethernet",
                        "port-channel"})
NOT_PORTS = frozenset({"vxlan", "vlan", "loopback", "mgmt", "null", "tunnel"})
NO_PORT = "no-port"  # the pseudo-port of an owned VLAN mapping that no port trunks
PORT_NAME_RE = re.compile(r"([a-z][a-z-]*?)(\d+(?:_\d+)*)")
PORT_NUMBER_RE = re.compile(r"(\d+(?:/\d+)*)(?:-(\d+))?")
_prompt_line = re.compile(PROMPT)


# ---------------------------------------------------------------------------- names
def interface(port: str) -> str:
    """Inventory port name -> AX interface: ``geth1_0_11`` -> ``gigabitethernet 1/0/11``."""
    m = PORT_NAME_RE.fullmatch(port)
    if m and (kind := LONG.get(m[1], m[1])) in PORT_KINDS:
        return f"{kind} {m[2].replace('_', '/')}"
    return port


def _port_name(kind: str, number: str, known: Mapping[str, str]) -> str:
    """AX interface -> inventory port name: the gateway's own name for it if it has one."""
    return known.get(f"{kind} {number}") or SHORT.get(kind, kind) + number.replace("/", "_")


def vlan_list(spec: str) -> set[int]:
    """``101-105,201`` (also ``all`` / ``none``) -> the IDs."""
    spec = spec.strip().strip('"')
    if spec.lower() == "all":
        return set(range(1, 4095))
    if spec.lower() in ("none", "", "-"):
        return set()
    out: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        out.update(bounded_range(lo, hi or lo, "VLAN"))
    return out


# ---------------------------------------------------------------------------- show version
def version(answer: str) -> Platform:
    """``show version`` -> model and software version: ``Model: AX3660S-48T4XW`` and ``S/W: OS-L3M
    Ver. 12.1.H`` (a stack prints one block per switch, ``Switch 1 (Master)`` first or not: the
    master's block counts). The release letter counts as a number (A=1: 12.1.H -> (12, 1, 8)), so
    12.1.G < 12.1.H as the vendor orders them."""
    blocks = re.split(r"^Switch \d+ \((?=\w+\)\s*$)", answer, flags=re.M)
    block = next((b for b in blocks if b.startswith("Master)")), answer)
    model = re.search(r"^\s*Model:\s*(\S+)", block, re.M)
    software = (re.search(r"^\s*S/W:.*?\bVer\.\s*(\d\S*)", block, re.M)  # every capture found
                or re.search(r"^\s*\w[\w/ ]*:.*?\bVer\.\s*(\d\S*)", block, re.M))  # a model that words it otherwise
    if software is None:
        raise ValueError(f"{VERSION!r} printed no 'S/W: ... Ver. <version>' line")
    found = platform(model[1] if model else "ALAXALA AX", software[1])
    numbers = tuple(int(t) if t.isdigit() else ord(t.upper()) - 64 for t in re.findall(r"\d+|[A-Za-z]", found.text))
    return replace(found, version=numbers[:8] or found.version)


# ---------------------------------------------------------------------------- show running-config
@dataclass
class _Vtep:
    members: set[int] = field(default_factory=set)
    destinations: list[str] = field(default_factory=list)
    source: str = ""  # "loopback 0"


@dataclass
class _Config:
    """What silonet needs from ``show running-config``."""

    vlans: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {"name", "vni"}
    vteps: dict[int, _Vtep] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)  # "1/0/11" -> "gigabitethernet"
    allowed: dict[str, set[int]] = field(default_factory=dict)  # "gigabitethernet 1/0/11" -> VLANs it trunks
    access: dict[str, int] = field(default_factory=dict)  # "gigabitethernet 1/0/3" -> its access VLAN
    addresses: dict[str, str] = field(default_factory=dict)  # "loopback 0" -> its IPv4 address


def _sections(text: str) -> Iterable[tuple[list[str], list[list[str]]]]:
    """Top-level lines (split) with their indented body lines (split)."""
    head: list[str] | None = None
    body: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.startswith("#") or _prompt_line.search(line):
            continue  # blank, "#Last modified ..." comment, the prompt after the output
        if line == "!":
            if head is not None:
                yield head, body
            head, body = None, []
            continue
        if line[0].isspace():
            if head is not None:
                body.append(line.split())
            continue
        if head is not None:
            yield head, body
        head, body = line.split(), []
    if head is not None:
        yield head, body


def _port(cfg: _Config, kind: str, number: str, body: list[list[str]]) -> None:
    cfg.ports[number] = kind
    allowed: set[int] = set()
    trunk = False
    for words in body:
        if words[:2] == ["switchport", "mode"] and len(words) > 2:
            trunk = words[2] == "trunk"
        elif words[:3] == ["switchport", "access", "vlan"] and len(words) > 3:
            cfg.access[f"{kind} {number}"] = int(words[3])
        elif words[:4] == ["switchport", "trunk", "allowed", "vlan"] and len(words) > 4:
            if words[4] == "add":
                allowed |= vlan_list(words[5] if len(words) > 5 else "")
            elif words[4] == "remove":
                allowed -= vlan_list(words[5] if len(words) > 5 else "")
            else:
                allowed = vlan_list(words[4])
    if trunk:  # an allowed list counts on a trunk port only
        cfg.allowed[f"{kind} {number}"] = allowed


def parse_config(text: str) -> _Config:
    cfg = _Config()
    for head, body in _sections(text):
        if head[0] == "vlan" and len(head) >= 2 and head[1][:1].isdigit():
            info: dict[str, Any] = {"name": None, "vni": None}
            for words in body:
                if words[0] == "name" and len(words) > 1:
                    info["name"] = " ".join(words[1:]).strip('"')
                elif words[0] == "vxlan-vni" and len(words) > 1:
                    info["vni"] = int(words[1])
            for vid in vlan_list(head[1]):
                cfg.vlans[vid] = dict(info)
        elif head[0] == "interface" and len(head) >= 3:
            kind, number = head[1], head[2]
            for words in body:
                if words[:2] == ["ip", "address"] and len(words) > 2:
                    cfg.addresses.setdefault(f"{kind} {number}", words[2])
            if kind == "vxlan":
                vtep = cfg.vteps.setdefault(int(number), _Vtep())
                for words in body:
                    if words[:2] == ["member", "vni"] and len(words) > 2:
                        vtep.members |= vlan_list(words[-1])
                    elif words[0] == "destination-ip":
                        vtep.destinations += [w for w in words[1:] if w not in vtep.destinations]
                    elif words[0] == "source-interface":
                        vtep.source = " ".join(words[1:])
            elif kind not in NOT_PORTS and not kind.startswith("vlan"):
                _port(cfg, kind, number, body)
    return cfg


# ---------------------------------------------------------------------------- show vxlan vni
def parse_vni(text: str) -> dict[int, dict[int, dict[str, Any]]]:
    """``show vxlan vni`` -> VTEP id -> VNI -> {"status", "learning", "vlans": {vlan: [port numbers]}}."""
    vteps: dict[int, dict[int, dict[str, Any]]] = {}
    vtep: dict[int, dict[str, Any]] | None = None
    vni: dict[str, Any] | None = None
    seen_date = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Date"):
            seen_date = True
        elif m := re.match(r"VTEP ID:\s*(\d+)", line):
            vtep, vni = vteps.setdefault(int(m[1]), {}), None
        elif (m := re.match(r"VNI:\s*(\d+)(?:\s+Status:\s*(\S+))?", line)) and vtep is not None:
            vni = vtep.setdefault(int(m[1]), {"status": m[2] or "", "learning": "", "vlans": {}})
        elif (m := re.match(r"Learning:\s*(\S+)", line)) and vni is not None:
            vni["learning"] = m[1]
        elif (m := re.match(r"VLAN:\s*(\d+)(?:\s+Port:\s*(.*))?", line)) and vni is not None:
            ports = vni["vlans"].setdefault(int(m[1]), [])
            for pm in PORT_NUMBER_RE.finditer(m[2] or ""):
                if pm[2] is None:
                    ports.append(pm[1])
                else:  # 1/0/11-14
                    base, _, first = pm[1].rpartition("/")
                    ports += [f"{base}/{n}" if base else str(n) for n in bounded_range(first, pm[2], "port", 1024)]
    if not seen_date and not vteps:
        raise ValueError(f"{SHOW_VNI!r} printed no Date line and no VTEP: {text.strip()[:120]!r}")
    return vteps


# ---------------------------------------------------------------------------- the reading
def read(outputs: Mapping[str, str], gw: Target, vtep_id: int, marker: str) -> Parsed:
    """What silonet owns on the AX (the VLANs named ``marker``* and their VNIs, members of VTEP
    ``vtep_id``) and what others do (every other VLAN and VNI, the VTEP's remote list when any of it
    may serve VNIs not silonet's)."""
    cfg = parse_config(outputs[SHOW_CONFIG])
    show = parse_vni(outputs[SHOW_VNI])
    if vtep_id not in cfg.vteps:
        raise ValueError(f"interface vxlan {vtep_id} is not configured: set up silonet's VTEP first "
                         f"(vxlan enable; interface vxlan {vtep_id} / source-interface loopback 0), "
                         f"or choose another vtep in templates/_ax.j2")
    known = {interface(p): p for p in gw.ports}

    def name(number: str) -> str:  # a port number of show vxlan vni
        return _port_name(cfg.ports[number], number, known) if number in cfg.ports else number.replace("/", "_")

    vni_of = {vid: v["vni"] for vid, v in cfg.vlans.items() if v["vni"] is not None}
    for members in show.values():  # a mapping show knows of but the config text did not hold
        for vni, info in members.items():
            for vid in info["vlans"]:
                vni_of.setdefault(vid, vni)
    vlan_names = {vid: v["name"] or f"VLAN{vid:04d}" for vid, v in cfg.vlans.items()}
    vlan_names.setdefault(1, "VLAN0001")  # the default VLAN exists even when not listed
    owned_vlans = {vid for vid, n in vlan_names.items() if n.startswith(marker)}
    members_of = {vt: set(vtep.members) for vt, vtep in cfg.vteps.items()}  # VTEP id -> member VNIs
    for vt, members in show.items():
        members_of.setdefault(vt, set()).update(members)
    mine = members_of.get(vtep_id, set())
    ours = {vni_of[vid] for vid in owned_vlans if vid in vni_of} & mine  # silonet's members of its VTEP

    faults: list[str] = []
    flood = frozenset(cfg.vteps[vtep_id].destinations)
    trunked: dict[int, set[str]] = {}
    for ifname, vids in cfg.allowed.items():
        kind, _, number = ifname.partition(" ")
        for vid in vids:
            trunked.setdefault(vid, set()).add(_port_name(kind, number, known))
    status = {vni: info for members in show.values() for vni, info in members.items()}

    switches: dict[int, LogicalSwitch] = {}
    bindings: dict[tuple[str, int], int] = {}
    for vid in sorted(owned_vlans):
        vni = vni_of.get(vid)
        if vni is None:  # interrupted between "name" and "vxlan-vni": rewritten if the VLAN is wanted again
            faults.append(f"VLAN {vid} ({vlan_names[vid]}) maps no VNI: incomplete")
            continue
        if vni not in mine:  # interrupted before "member vni add" (or after "remove"): completed or removed
            faults.append(f"VLAN {vid} ({vlan_names[vid]}) maps VNI {vni}, not a member of interface vxlan "
                          f"{vtep_id}: incomplete")
            bindings[(NO_PORT, vid)] = vni
            continue
        switches.setdefault(vni, LogicalSwitch(vni, vlan_names[vid][len(marker):], flood))
        ports = set(trunked.get(vid, ())) | {name(n) for n in status.get(vni, {}).get("vlans", {}).get(vid, [])}
        for port in ports or [NO_PORT]:  # a mapping no port trunks is still ours to remove
            bindings[(port, vid)] = vni
    for vni in sorted(switches):
        if (st := status.get(vni, {}).get("status")) and st != "enable":
            faults.append(f"VNI {vni} status {st}")

    foreign_vlans = {vid: vlan_names.get(vid) or f"VLAN{vid:04d}" for vid in set(vlan_names) | set(vni_of)
                     if vid not in owned_vlans}
    carried = {vid: set(ports) for vid, ports in trunked.items()}  # foreign VLANs: access ports count too
    for ifname, vid in cfg.access.items():
        kind, _, number = ifname.partition(" ")
        carried.setdefault(vid, set()).add(_port_name(kind, number, known))
    foreign_bindings = {(port, vid): n for vid, n in foreign_vlans.items()
                        for port in set(gw.ports) | carried.get(vid, set())}
    foreign_vnis = {vni_of[vid]: n for vid, n in foreign_vlans.items() if vid in vni_of}
    for vt, members in sorted(members_of.items()):
        for vni in members:
            if vt != vtep_id or vni not in ours:  # a member no VLAN of silonet's maps is someone else's
                foreign_vnis.setdefault(vni, f"VTEP {vt}")
    # One remote list serves every member: while one is not silonet's (or silonet has none), every
    # remote VTEP on it may serve someone else's VNIs, and silonet keeps them all.
    shared = flood if mine - ours or not ours else frozenset()
    ports = frozenset(_port_name(kind, number, known) for number, kind in cfg.ports.items())
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(ports, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        foreign_flood=shared)
    vtep_ip = cfg.addresses.get(cfg.vteps[vtep_id].source)
    return Parsed(state, facts, {}, {"switch": faults} if faults else {}, vtep_ip=vtep_ip)
