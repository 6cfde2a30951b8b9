"""Reading what NVUE prints: the configuration tree (``nv config show``, JSON or the YAML of
``nv config show -o yaml`` / ``/etc/nvue.d/startup.yaml``), the interfaces, silonet's ledger and
the release (``nv show system -o json``). Everything here is untrusted device output: values are
read by shape, never trusted to be of the type the schema says (docs/architecture.md, "Trust
boundaries")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import Parsed, Target, platform
from silonet.drivers.ssh.switchscope import settle_read
from silonet.drivers.untrusted import bounded_range, ipv4
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

CONFIG = "nv config show -o json"
INTERFACES = "nv show interface -o json"
VERSION = "nv show system -o json"
LEDGER_FILE = '"$HOME/.silonet/vnis.json"'
LEDGER = f"cat {LEDGER_FILE} 2>/dev/null || echo '{{}}'"
BRIDGE = "br_default"
RANGE_RE = re.compile(r"^(.*?)(\d+)-(\d+)$")
PREFIX_RE = re.compile(r"^(.*?)\d+$")
RELEASE_RE = re.compile(r"Cumulus Linux\s+(\d+(?:\.\d+)+)")
ON, OFF = frozenset({"on", "enabled", "true"}), frozenset({"off", "disabled", "false"})


# ---------------------------------------------------------------------------- text -> data
class _Loader(yaml.SafeLoader):
    """YAML as NVUE writes it: ``on``/``off`` stay the words NVUE means (YAML 1.1 would make them
    booleans) and an alias is refused (untrusted input is never expanded by reference)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise ValueError("NVUE output holds a YAML alias")
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load(text: str) -> Any:
    """JSON (``-o json``), else the YAML NVUE prints by default; ValueError when it is neither."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader, less booleans and aliases
    except yaml.YAMLError as err:
        raise ValueError(f"neither JSON nor YAML: {str(err).splitlines()[0]}") from None


def config_tree(text: str) -> dict:
    """``nv config show`` -> the ``set`` tree: ``[{"header": ...}, {"set": {...}}]`` as the CLI and
    startup.yaml print it, or the bare tree (the REST API's root object)."""
    data = load(text)
    if data is None:
        return {}
    if isinstance(data, list):
        tree = next((item["set"] for item in data if isinstance(item, dict) and "set" in item), {})
    elif isinstance(data, dict):
        tree = data.get("set", data)
    else:
        raise ValueError("nv config show printed neither a list nor an object")
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ValueError("the configuration tree is not an object")
    return tree


def node(tree: Any, *path: str) -> Any:
    """The value at ``path`` of a tree whose every level may be missing, null or of the wrong shape."""
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def expand(key: object) -> Iterator[str]:
    """NVUE keys name lists and ranges, the prefix written once: ``10,20-22``, ``swp1-4,12-13``,
    ``swp2,6``, ``vlan10,20,30,40`` (as ``nv config show`` prints them): one name at a time."""
    prefix = ""
    for part in str(key).split(","):
        part = part.strip()
        if not part:
            continue
        m = RANGE_RE.match(part)
        head = m[1] if m else (PREFIX_RE.match(part) or [None, ""])[1]
        if head:
            prefix = head
        elif part[0].isdigit():
            part = prefix + part
            m = RANGE_RE.match(part)
        if m and int(m[2]) <= int(m[3]):
            yield from (f"{m[1]}{i}" for i in bounded_range(m[2], m[3], "interface or VLAN"))
        else:
            yield part


def numbered(obj: Any) -> dict[int, Any]:
    """An NVUE map keyed by numbers (VLANs, VNIs), lists and ranges expanded."""
    out: dict[int, Any] = {}
    for key, value in obj.items() if isinstance(obj, dict) else ():
        for name in expand(key):
            if name.isdigit():
                out[int(name)] = value
    return out


def learning(value: object) -> bool | None:
    """``mac-learning`` as any release writes it: ``on|off`` up to Cumulus Linux 5.14,
    ``enabled|disabled`` from 5.15; None when it is neither."""
    word = str(value).strip().lower() if isinstance(value, str | bool) else ""
    return True if word in ON else False if word in OFF else None


# ---------------------------------------------------------------------------- version
def version(text: str) -> Platform:
    """``nv show system -o json``: ``product-release`` (Cumulus Linux 5.10 and later print it) or
    ``build`` ("Cumulus Linux 5.4.0"); the table ``nv show system`` prints is read too."""
    try:
        data = load(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        model = data.get("product-name") if isinstance(data.get("product-name"), str) else "Cumulus Linux"
        release = data.get("product-release")
        if isinstance(release, str) and release.strip():
            return platform(model, release.strip())
        build = data.get("build")
        if isinstance(build, str) and (m := RELEASE_RE.search(build)):
            return platform(model, m[1])
    if m := RELEASE_RE.search(text):
        return platform("Cumulus Linux", m[1])
    raise ValueError("no Cumulus Linux release in the answer")


# ---------------------------------------------------------------------------- configuration
def _vnis(vlan: Any, vid: int, offset: int) -> list[int]:
    """A bridge VLAN's VNIs; ``auto`` is the VLAN plus the bridge's ``vlan-vni-offset``."""
    held = node(vlan, "vni")
    keys = held if isinstance(held, dict) else ({str(held): {}} if isinstance(held, str | int) else {})
    out: set[int] = set()
    for key in keys:
        for name in expand(key):
            if name.isdigit():
                out.add(int(name))
            elif name == "auto":
                out.add(vid + offset)
    return sorted(out)


def _members(tree: dict) -> dict[str, dict]:
    """Each port's membership of ``br_default`` (``{}``: a member with no VLAN list), the keys
    that name it merged (``swp1-9`` may say its type and ``swp2,6`` its VLANs)."""
    out: dict[str, dict] = {}
    for key, iface in (tree.get("interface") or {}).items() if isinstance(tree.get("interface"), dict) else ():
        domain = node(iface, "bridge", "domain")
        if not isinstance(domain, dict) or BRIDGE not in domain:
            continue
        member = domain[BRIDGE] if isinstance(domain[BRIDGE], dict) else {}
        for port in expand(key):
            have = out.setdefault(port, {})
            for field, value in member.items():
                if field == "vlan" and isinstance(have.get("vlan"), dict) and isinstance(value, dict):
                    have["vlan"] = {**have["vlan"], **value}
                else:
                    have[field] = value
    return out


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    """silonet's state (the VLAN mappings whose VNI is in its ledger), everyone else's, the faults
    and the VTEP the configuration uses (the module docstring of ``cumulus`` says why each)."""
    tree = config_tree(outputs[CONFIG])
    ledger_raw = json.loads(outputs.get(LEDGER, "").strip() or "{}")
    ledger = {int(k): str(v) for k, v in ledger_raw.items() if str(k).isdigit()} if isinstance(ledger_raw, dict) \
        else {}
    ifaces_raw = load(outputs.get(INTERFACES, ""))
    ports = frozenset(str(p) for p in ifaces_raw) if isinstance(ifaces_raw, dict) else frozenset()
    faults: dict[str, list[str]] = {}

    bridge = node(tree, "bridge", "domain", BRIDGE) or {}
    offset = node(bridge, "vlan-vni-offset")
    offset = int(offset) if str(offset).isdigit() else 0
    vxlan = node(tree, "nve", "vxlan") or {}
    default_learning = node(vxlan, "mac-learning")
    vlan_vni: dict[int, int] = {}  # silonet's VLANs
    names: dict[int, str] = {}
    flood: dict[int, frozenset[str]] = {}
    foreign_vnis: dict[int, str] = {}
    foreign_vlan: dict[int, str] = {}
    for vid, vlan in sorted(numbered(node(bridge, "vlan")).items()):
        vnis = _vnis(vlan, vid, offset)
        label = f"{BRIDGE} vlan {vid}" + (f" vni {vnis[0]}" if vnis else "")
        if len(vnis) == 1 and vnis[0] in ledger:
            vni = vnis[0]
            vlan_vni[vid], names[vni] = vni, ledger[vni]
            spec = numbered(node(vlan, "vni")).get(vni)
            her = node(spec, "flooding", "head-end-replication")
            flood[vni] = frozenset(str(ip) for ip in her if ip != "evpn") if isinstance(her, dict) else frozenset()
            said = node(spec, "mac-learning")
            said = default_learning if said is None else said
            if said is not None and learning(said) is not True:
                why = "off" if learning(said) is False else f"{str(said)[:32]!r}, not a value NVUE knows"
                faults.setdefault("switch", []).append(
                    f"VNI {vni} ({label}): MAC learning is {why}; a static VXLAN tunnel then never learns "
                    "where remote MACs are")
        else:
            foreign_vlan[vid] = label
            for vni in vnis:
                foreign_vnis[vni] = label
    for name, domain in sorted(node(tree, "bridge", "domain").items(), key=lambda kv: str(kv[0])) \
            if isinstance(node(tree, "bridge", "domain"), dict) else ():
        if name != BRIDGE:  # another bridge: its VLAN IDs are its own, its VNIs are the VTEP's
            other = node(domain, "vlan-vni-offset")
            for vid, vlan in numbered(node(domain, "vlan")).items():
                for vni in _vnis(vlan, vid, int(other) if str(other).isdigit() else 0):
                    foreign_vnis.setdefault(vni, f"bridge {name} vlan {vid} vni {vni}")
    for name, vrf in sorted(tree.get("vrf").items(), key=lambda kv: str(kv[0])) \
            if isinstance(tree.get("vrf"), dict) else ():
        for vni in numbered(node(vrf, "evpn", "vni")):
            foreign_vnis.setdefault(vni, f"vrf {name}")

    bindings: dict[tuple[str, int], int] = {}
    untagged: dict[str, int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    unusable: dict[str, str] = {}  # gateway ports someone else set up as access ports: never made trunks
    for port, member in sorted(_members(tree).items()):
        listed = member.get("vlan")
        if listed is not None and not isinstance(listed, dict):
            listed = {str(listed): {}}
        if member.get("access") is not None:
            vid = int(member["access"]) if str(member["access"]).isdigit() else 0
            foreign_bindings[(port, 0)] = f"access port in {foreign_vlan.get(vid, f'{BRIDGE} vlan {vid}')}"
            if vid in vlan_vni:
                faults.setdefault(f"port {port}", []).append(f"access port in silonet's VLAN {vid}")
            elif port in gw.ports:  # a trunk binding would turn someone else's access port into a trunk
                why = f"access port in {foreign_vlan.get(vid, f'{BRIDGE} vlan {vid}')}, not silonet's"
                faults.setdefault(f"port {port}", []).append(f"{why}: it carries no VLAN of silonet's")
                unusable[port] = why
            continue
        if listed is None or "all" in {n for k in listed for n in expand(k)}:
            if port in gw.ports:
                faults.setdefault(f"port {port}", []).append(f"trunks every {BRIDGE} VLAN (no VLAN list)")
                for vid in sorted(set(vlan_vni) | set(foreign_vlan)):
                    foreign_bindings[(port, vid)] = f"{BRIDGE} vlan all"
            continue
        native = member.get("untagged")
        native = int(native) if str(native).isdigit() else None
        for vid in sorted(numbered(listed)):
            if vid in vlan_vni:
                if vid == native:
                    untagged[port] = vid
                else:
                    bindings[(port, vid)] = vlan_vni[vid]
            else:
                label = foreign_vlan.get(vid, f"{BRIDGE} vlan {vid}")
                foreign_bindings[(port, 0 if vid == native else vid)] = label
    settle_read(gw, ports, untagged, vlan_vni, foreign_vlan, bindings, foreign_bindings, faults,
                lambda vid: f"{BRIDGE} vlan {vid}")

    # The VTEP-wide flood list (``nv set nve vxlan flooding head-end-replication``) serves every VNI.
    her = node(vxlan, "flooding", "head-end-replication")
    foreign_flood = frozenset(str(ip) for ip in her if ip != "evpn") if isinstance(her, dict) else frozenset()
    if names and (shown_ips := sorted(filter(None, map(ipv4, foreign_flood)))):
        faults.setdefault("switch", []).append(
            f"nve vxlan flooding head-end-replication {', '.join(shown_ips)} is a VTEP-wide flood list: "
            "silonet's VNIs flood there too")
    # An MLAG pair encapsulates with its shared (anycast) address (Cumulus Linux user guide,
    # "VXLAN Active-active Mode"); a single switch with its source address.
    source = node(vxlan, "mlag", "shared-address") or node(vxlan, "source", "address")
    state = GatewayState({vni: LogicalSwitch(vni, names[vni], flood[vni]) for vni in sorted(names)},
                         dict(sorted(bindings.items())))
    facts = DeviceFacts(ports or None, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        frozenset(), foreign_flood, unusable=unusable)
    return Parsed(state, facts, {}, faults, str(source) if source else None)
