"""Reading a Junos switch back: the ``| display set`` statements of the three hierarchies silonet
reads (``vlans``, ``interfaces``, ``switch-options``) and ``show version | display xml``.

``display set`` prints every statement as one line from the root (``set vlans v10 vlan-id 10``),
whatever the release, and a deactivated one as a ``deactivate <path>`` line after it; a value with
spaces is double-quoted. So a statement is a list of words, and a capture of the whole
configuration (``show configuration | display set``) holds the very lines a scoped command prints.
Everything read is untrusted: values are only compared here, and checked where the driver reads
them (``untrusted.check_read``); faults name what they quote through ``echo``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import platform
from silonet.drivers.untrusted import echo

WORD = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
RANGE = re.compile(r"^(\d{1,4})-(\d{1,4})$")
MARK = "silonet-"


def words(line: str) -> list[str]:
    """One ``display set`` line as words: double-quoted values unquoted, the rest split on spaces."""
    return [re.sub(r"\\(.)", r"\1", m[1]) if m[1] is not None else m[2] for m in WORD.finditer(line)]


def statements(text: str, root: str) -> tuple[list[list[str]], list[list[str]]]:
    """The ``set <root> ...`` statements of an answer (the words after ``root``) that are in effect,
    and the paths under ``root`` that are deactivated. Other lines (the echo, a banner, a prompt, a
    line a terminal wrapped) are not statements."""
    sets, off = [], []
    for line in text.splitlines():
        w = words(line.strip())
        if len(w) >= 2 and w[1] == root:
            if w[0] == "set":
                sets.append(w[2:])
            elif w[0] == "deactivate":
                off.append(w[2:])
    return [s for s in sets if not any(s[:len(p)] == p for p in off)], off


def vlan_ids(spec: str) -> set[int]:
    """The VLAN IDs a ``vlan-id``/``vlan-id-list``/``members`` word names by number (``100``,
    ``100-200``); none for a name, ``none`` or ``all``."""
    if spec.isdigit() and len(spec) <= 4:
        return {int(spec)}
    m = RANGE.match(spec)
    return set(range(int(m[1]), int(m[2]) + 1)) if m and int(m[1]) <= int(m[2]) else set()


# ---------------------------------------------------------------------------- vlans
@dataclass
class Vlan:
    name: str
    vlan_id: str | None = None  # as printed (``none`` on some platforms)
    id_list: set[int] = field(default_factory=set)  # vlan-id-list
    vni: str | None = None
    flood: list[str] = field(default_factory=list)  # vxlan static-remote-vtep-list
    interfaces: list[str] = field(default_factory=list)  # ``vlans <name> interface <ifl>`` memberships

    @property
    def ids(self) -> set[int]:
        return (vlan_ids(self.vlan_id) if self.vlan_id else set()) | self.id_list


def read_vlans(text: str) -> tuple[dict[str, Vlan], list[list[str]]]:
    sets, off = statements(text, "vlans")
    out: dict[str, Vlan] = {}
    for s in sets:
        if not s:
            continue
        v = out.setdefault(s[0], Vlan(s[0]))
        rest = s[1:]
        if rest[:1] == ["vlan-id"] and len(rest) > 1:
            v.vlan_id = rest[1]
        elif rest[:1] == ["vlan-id-list"] and len(rest) > 1:
            v.id_list |= vlan_ids(rest[1])
        elif rest[:2] == ["vxlan", "vni"] and len(rest) > 2:
            v.vni = rest[2]
        elif rest[:2] == ["vxlan", "static-remote-vtep-list"] and len(rest) > 2:
            v.flood.append(rest[2])
        elif rest[:1] == ["interface"] and len(rest) > 1:
            v.interfaces.append(rest[1])
    return out, off


# ---------------------------------------------------------------------------- interfaces
@dataclass
class Interface:
    """One physical interface as configured: per unit, its ethernet-switching mode and members,
    its other families and IPv4 addresses (address -> marked primary)."""

    name: str
    switching: set[str] = field(default_factory=set)
    modes: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    families: dict[str, set[str]] = field(default_factory=dict)
    addresses: dict[str, dict[str, bool]] = field(default_factory=dict)
    units: set[str] = field(default_factory=set)
    lag: str | None = None  # ``ether-options 802.3ad aeN``: a member of a LAG
    tagging: str | None = None  # vlan-tagging / flexible-vlan-tagging / encapsulation on the interface


def read_interfaces(text: str) -> tuple[dict[str, Interface], list[list[str]]]:
    """Interfaces by device name. ``interface-range`` definitions are skipped: the show commands ask
    ``display inheritance``, which prints a range's statements on its member interfaces."""
    sets, off = statements(text, "interfaces")
    out: dict[str, Interface] = {}
    for s in sets:
        if not s or s[0] == "interface-range":
            continue
        i = out.setdefault(s[0], Interface(s[0]))
        rest = s[1:]
        if rest[:1] in (["ether-options"], ["gigether-options"]) and rest[1:2] == ["802.3ad"] and len(rest) > 2:
            i.lag = rest[2]
        elif rest[:1] in (["vlan-tagging"], ["flexible-vlan-tagging"], ["encapsulation"]):
            i.tagging = " ".join(rest[:2])
        elif rest[:1] == ["unit"] and len(rest) > 1:
            unit, tail = rest[1], rest[2:]
            i.units.add(unit)
            if tail[:1] != ["family"] or len(tail) < 2:
                continue
            family, tail = tail[1], tail[2:]
            if family == "ethernet-switching":
                i.switching.add(unit)
                if tail[:1] in (["interface-mode"], ["port-mode"]) and len(tail) > 1:
                    i.modes[unit] = tail[1]
                elif tail[:2] == ["vlan", "members"] and len(tail) > 2:
                    i.members.setdefault(unit, []).append(tail[2])
                continue
            i.families.setdefault(unit, set()).add(family)
            if family == "inet" and tail[:1] == ["address"] and len(tail) > 1:
                held = i.addresses.setdefault(unit, {})
                held[tail[1]] = held.get(tail[1], False) or "primary" in tail[2:]
    return out, off


def unusable(i: Interface | None, silonet_members: set[str]) -> str | None:
    """Why silonet must not bind VLANs on this interface, or None. A trunk (``interface-mode
    trunk`` on unit 0) or an interface with nothing configured is usable (silonet makes the latter
    a trunk with its first membership); anything else someone set up for another use is left as
    it is."""
    if i is None:
        return None
    if i.lag is not None:
        return f"a member of {echo(i.lag, 32)}: silonet binds VLANs on the aggregate, not on its members"
    if i.families.get("0"):
        fams = ", ".join(sorted(echo(f, 32) for f in i.families["0"]))
        return f"routed on unit 0 (family {fams}): silonet binds VLANs on layer-2 trunks only"
    if "0" in i.switching:
        mode = i.modes.get("0")
        if mode == "trunk":
            return None
        held = [m for m in i.members.get("0", []) if m not in silonet_members]
        what = f"interface-mode {echo(mode, 32)}" if mode else "no interface-mode: access"
        vlans = f", VLAN {', '.join(echo(m, 64) for m in held)}" if held else ""
        return (f"not a trunk port ({what}{vlans}): silonet binds VLANs on trunks only and does not change "
                "the mode of a port someone else set up (interface-mode trunk lets silonet use it)")
    others = sorted(i.units - {"0"})
    if others or i.tagging:
        what = f"units {', '.join(echo(u, 16) for u in others)}" if others else echo(i.tagging, 64)
        return f"set up with {what} and no unit 0 trunk: silonet binds VLANs on unit 0 trunks only"
    return None


# ---------------------------------------------------------------------------- switch-options
def vtep_source(text: str, interfaces: dict[str, Interface]) -> tuple[str | None, list[str]]:
    """The tunnel source address: the IPv4 address of ``switch-options vtep-source-interface``
    (the one marked ``primary`` when it has several), or why it cannot be told."""
    sets, _off = statements(text, "switch-options")
    named = [s[1] for s in sets if s[:1] == ["vtep-source-interface"] and len(s) > 1]
    if not named:
        return None, ["no switch-options vtep-source-interface: VXLAN cannot work on this switch (set it, e.g. "
                      "to lo0.0)"]
    ifl = named[-1]
    ifd, _, unit = ifl.partition(".")
    held = {a.split("/")[0]: p for a, p in (interfaces.get(ifd, Interface(ifd)).addresses.get(unit or "0", {})
                                           .items()) if not a.startswith("127.")}
    primary = [a for a, p in held.items() if p]
    if len(held) == 1 or len(primary) == 1:
        return (primary or list(held))[0], []
    if not held:
        return None, [f"the VTEP source interface {echo(ifl, 32)} has no IPv4 address in the configuration: VXLAN "
                      "cannot work on this switch"]
    return None, [f"the VTEP source interface {echo(ifl, 32)} has {len(held)} IPv4 addresses and none is marked "
                  "primary: silonet cannot tell which one VXLAN uses"]


# ---------------------------------------------------------------------------- version
TAG = re.compile(r"<(product-model|product-name|junos-version|comment)>([^<]{0,200})</\1>")
BRACKET = re.compile(r"\[([^\]]{1,64})\]")


def version(text: str) -> Platform:
    """``show version | display xml``: ``<software-information>`` (inside
    ``<multi-routing-engine-item>`` on a virtual chassis; the first one counts) with
    ``<product-model>`` and ``<junos-version>``; releases before ``<junos-version>`` existed say the
    version only in the JUNOS package's ``<comment>`` (``JUNOS Base OS boot [11.4R1.6]``)."""
    found: dict[str, str] = {}
    comments: list[str] = []
    for tag, value in TAG.findall(text):
        value = html.unescape(value).strip()
        if tag == "comment":
            comments.append(value)
        else:
            found.setdefault(tag, value)
    release = found.get("junos-version")
    if not release:
        release = next((m[1] for c in comments if c.upper().startswith("JUNOS") and (m := BRACKET.search(c))), None)
    if not release:
        raise ValueError("no <junos-version> and no JUNOS package version in the answer")
    return platform(found.get("product-model") or found.get("product-name", ""), release)
