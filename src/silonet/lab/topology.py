"""What a lab contains, as plain data: silos, their VLAN domains (groups), ToRs and hosts.

The same shape loads from YAML (``load_topology``), so a lab is data, not code. Everything
the kernel or OVS would reject later (name lengths, duplicate ports, addresses outside the
test range) is checked here first, so ``Lab.up`` fails before it creates anything.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from silonet.lab.errors import LabError

HOST_NET = ipaddress.IPv4Network("203.0.113.0/24")
KINDS = ("vsphere", "kvm", "baremetal", "paas", "other")
# Gateway names become the physical-switch bridge (a 15-character Linux interface name). ovs-vtep
# names its bridges "<gw>_vtep_lsN": past 15 characters their (unused) tap devices fail with a
# harmless warning, forwarding still works (checked up to ls12 with a 6-character gateway name).
# Host names become the host's port on its ToR, inside the gateway namespace.
GATEWAY_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
# A pair name is what a dual-homed ToR names as its gateway, so it follows the gateway rule and
# differs from every gateway name.
PAIR_RE = GATEWAY_RE
HOST_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
PORT_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Rules in words: the CLI prints messages as Rich markup, where square brackets vanish.
NAME_RULE = "1..64 letters, digits, '.', '_' or '-'"
GATEWAY_RULE = "1..15 lowercase letters, digits or '-', starting with a letter"
HOST_RULE = "1..12 lowercase letters or digits, starting with a letter"
PORT_RULE = "1..8 lowercase letters or digits, starting with a letter"
PAIR_RULE = GATEWAY_RULE


@dataclass(frozen=True)
class PortRef:
    gateway: str
    port: str

    def __str__(self) -> str:
        return f"{self.gateway}:{self.port}"


@dataclass(frozen=True)
class Host:
    """A VM or server: one namespace with ``eth0`` on an access port of its ToR (vlan 0 = untagged)."""

    name: str
    vlan: int = 0
    ip: str | None = None


@dataclass(frozen=True)
class Tor:
    """A rack's ToR switch: hosts on access ports, one trunk to a gateway front-panel port; or, when
    ``gateway`` names a gateway pair, dual-homed: one trunk to ``port`` on each member."""

    gateway: str  # a gateway's name, or a pair's
    port: str
    hosts: tuple[Host, ...] = ()
    name: str = ""

    @property
    def uplink(self) -> PortRef:
        return PortRef(self.gateway, self.port)


@dataclass(frozen=True)
class Group:
    """One VLAN domain: its ToRs' uplinks are the members; a switch-back aggregates them per gateway."""

    name: str
    tors: tuple[Tor, ...]
    switchback: tuple[PortRef, ...] = ()


@dataclass(frozen=True)
class Silo:
    name: str
    kind: str
    groups: tuple[Group, ...]
    description: str = ""


@dataclass(frozen=True)
class GatewaySpec:
    """An emulated hardware VXLAN gateway; its order in the topology picks its addresses."""

    name: str
    silo: str | None = None
    capacity: int = 4096
    pair: str | None = None  # gateways naming the same pair share one anycast VTEP address


@dataclass(frozen=True)
class LabTopology:
    name: str
    gateways: tuple[GatewaySpec, ...]
    silos: tuple[Silo, ...]
    description: str = ""

    def hosts(self) -> list[tuple[Silo, Group, Tor, Host]]:
        return [(s, g, t, h) for s in self.silos for g in s.groups for t in g.tors for h in t.hosts]

    def pairs(self) -> dict[str, tuple[str, ...]]:
        """Pair name -> its members' names, in topology order (the first one starts active)."""
        out: dict[str, tuple[str, ...]] = {}
        for g in self.gateways:
            if g.pair is not None:
                out[g.pair] = (*out.get(g.pair, ()), g.name)
        return out

    def uplinks(self, tor: Tor) -> tuple[PortRef, ...]:
        """Where a ToR's trunks end: one front-panel port, or the same port on each pair member."""
        members = self.pairs().get(tor.gateway)
        return tuple(PortRef(m, tor.port) for m in members) if members else (tor.uplink,)

    def resolved(self) -> LabTopology:
        """Checked, with every host given an address (the lowest free one in 203.0.113.0/24)."""
        self.validate()
        used = {ipaddress.IPv4Address(h.ip) for *_, h in self.hosts() if h.ip}
        free = (a for a in HOST_NET.hosts() if a not in used)

        def fill(h: Host) -> Host:
            return h if h.ip else replace(h, ip=str(next(free)))

        silos = tuple(
            replace(s, groups=tuple(
                replace(g, tors=tuple(replace(t, hosts=tuple(fill(h) for h in t.hosts)) for t in g.tors))
                for g in s.groups))
            for s in self.silos
        )
        return replace(self, silos=silos)

    def validate(self) -> None:
        _check(NAME_RE.match(self.name), f"topology name {self.name!r} must be {NAME_RULE}")
        _check(self.gateways, "a topology needs at least one gateway")
        _check(len(self.gateways) <= 253, "at most 253 gateways (one /24 each for underlay and management)")
        gateways = {g.name for g in self.gateways}
        silos = {s.name for s in self.silos}
        _unique([g.name for g in self.gateways], "gateway")
        _unique([s.name for s in self.silos], "silo")
        _unique([g.name for s in self.silos for g in s.groups], "interface group")
        _unique([h.name for *_, h in self.hosts()], "host")
        for g in self.gateways:
            _check(GATEWAY_RE.match(g.name), f"gateway name {g.name!r} must be {GATEWAY_RULE} "
                   "(it names the physical-switch bridge, a Linux interface)")
            _check(g.silo is None or g.silo in silos, f"gateway {g.name!r}: silo {g.silo!r} is not in the topology")
            _check(isinstance(g.capacity, int) and g.capacity > 0, f"gateway {g.name!r}: capacity must be > 0")
        pairs = self.pairs()
        self._validate_pairs(pairs, gateways)
        ports: list[str] = []
        for s in self.silos:
            _check(NAME_RE.match(s.name), f"silo name {s.name!r} must be {NAME_RULE}")
            _check(s.kind in KINDS, f"silo {s.name!r}: kind {s.kind!r} is not one of {', '.join(KINDS)}")
            for grp in s.groups:
                _check(NAME_RE.match(grp.name), f"group name {grp.name!r} must be {NAME_RULE}")
                _check(grp.tors, f"group {grp.name!r} has no ToR")
                sb_gateways = [r.gateway for r in grp.switchback]
                _unique(sb_gateways, f"switch-back gateway of group {grp.name!r}")
                for t in grp.tors:
                    _check(t.gateway in gateways or t.gateway in pairs,
                           f"group {grp.name!r}: ToR {t.name or t.port!r}: gateway {t.gateway!r} is not in the "
                           "topology, nor a pair of it")
                    _check(not (grp.switchback and t.gateway in pairs),
                           f"group {grp.name!r}: ToR {t.name or t.port!r} is dual-homed to pair {t.gateway!r} "
                           "and cannot share a group with a switch-back (its trunks go straight into the "
                           "members' physical switches)")
                for ref in (*[r for t in grp.tors for r in self.uplinks(t)], *grp.switchback):
                    _check(ref.gateway in gateways,
                           f"group {grp.name!r}: gateway {ref.gateway!r} is not in the topology")
                    _check(PORT_RE.match(ref.port), f"{ref}: port name must be {PORT_RULE}")
                    ports.append(str(ref))
                for ref in grp.switchback:
                    _check(any(t.gateway == ref.gateway for t in grp.tors),
                           f"group {grp.name!r}: switch-back {ref} has no ToR of the group to aggregate")
                for t in grp.tors:
                    for h in t.hosts:
                        _check(HOST_RE.match(h.name), f"host name {h.name!r} must be {HOST_RULE}")
                        _check(isinstance(h.vlan, int) and 0 <= h.vlan <= 4094,
                               f"host {h.name!r}: vlan {h.vlan!r} must be 0..4094 (0 = untagged)")
                        if h.ip is not None:
                            _check_ip(h)
        _unique(ports, "gateway port")
        _unique([h.ip for *_, h in self.hosts() if h.ip], "host address")

    def _validate_pairs(self, pairs: dict[str, tuple[str, ...]], gateways: set[str]) -> None:
        """Two members each (as MLAG or vPC), one silo, a name no gateway has (a ToR names either)."""
        silo_of = {g.name: g.silo for g in self.gateways}
        for pair, members in pairs.items():
            _check(isinstance(pair, str) and PAIR_RE.match(pair), f"pair name {pair!r} (gateway {members[0]!r}) "
                   f"must be {PAIR_RULE}")
            _check(pair not in gateways, f"pair {pair!r} is also a gateway's name: a ToR naming it would be "
                   "ambiguous; rename the pair")
            _check(len(members) == 2, f"pair {pair!r} has {len(members)} gateway(s) ({', '.join(members)}): a pair "
                   "has exactly two members, as MLAG or vPC")
            silos = [silo_of[m] for m in members]
            if None in silos:
                raise LabError(f"pair {pair!r}: gateway {members[silos.index(None)]!r} names no silo; "
                               "a pair's members are in one silo")
            _check(len(set(silos)) == 1, f"pair {pair!r}: gateways {members[0]!r} (silo {silos[0]!r}) and "
                   f"{members[1]!r} (silo {silos[1]!r}) must be in one silo")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "gateways": [{"name": g.name, "silo": g.silo, "capacity": g.capacity,
                          **({"pair": g.pair} if g.pair is not None else {})} for g in self.gateways],
            "silos": [
                {"name": s.name, "kind": s.kind, "description": s.description, "groups": [
                    {"name": g.name,
                     "switchback": [{"gateway": r.gateway, "port": r.port} for r in g.switchback],
                     "tors": [{"name": t.name, "gateway": t.gateway, "port": t.port,
                               "hosts": [{"name": h.name, "vlan": h.vlan, "ip": h.ip} for h in t.hosts]}
                              for t in g.tors]}
                    for g in s.groups]}
                for s in self.silos
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "topology") -> LabTopology:
        """Build and check a topology from parsed YAML/JSON; every error names ``source`` and the place."""
        try:
            topo = _from_dict(data)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            what = f"missing field {err}" if isinstance(err, KeyError) else str(err)
            raise LabError(f"{source}: malformed lab topology: {what}") from None
        try:
            topo.validate()
        except LabError as err:
            raise LabError(f"{source}: {err}") from None
        return topo


def _from_dict(d: dict[str, Any]) -> LabTopology:
    _fields(d, {"name", "description", "gateways", "silos"}, "topology")

    def ref(r: dict[str, Any]) -> PortRef:
        _fields(r, {"gateway", "port"}, "switchback")
        return PortRef(str(r["gateway"]), str(r["port"]))

    def host(h: dict[str, Any]) -> Host:
        _fields(h, {"name", "vlan", "ip"}, "host")
        return Host(str(h["name"]), int(h.get("vlan") or 0), None if h.get("ip") is None else str(h["ip"]))

    def tor(t: dict[str, Any]) -> Tor:
        _fields(t, {"name", "gateway", "port", "hosts"}, "tor")
        return Tor(str(t["gateway"]), str(t["port"]), tuple(host(h) for h in t.get("hosts") or ()),
                   str(t.get("name") or ""))

    def group(g: dict[str, Any]) -> Group:
        _fields(g, {"name", "switchback", "tors"}, "group")
        return Group(str(g["name"]), tuple(tor(t) for t in g.get("tors") or ()),
                     tuple(ref(r) for r in g.get("switchback") or ()))

    def silo(s: dict[str, Any]) -> Silo:
        _fields(s, {"name", "kind", "description", "groups"}, "silo")
        return Silo(str(s["name"]), str(s.get("kind") or "other"), tuple(group(g) for g in s.get("groups") or ()),
                    str(s.get("description") or ""))

    def gateway(g: dict[str, Any]) -> GatewaySpec:
        _fields(g, {"name", "silo", "capacity", "pair"}, "gateway")
        return GatewaySpec(str(g["name"]), None if g.get("silo") is None else str(g["silo"]),
                           int(g.get("capacity") or 4096), None if g.get("pair") is None else str(g["pair"]))

    return LabTopology(str(d.get("name") or "lab"), tuple(gateway(g) for g in d.get("gateways") or ()),
                       tuple(silo(s) for s in d.get("silos") or ()), str(d.get("description") or ""))


def _fields(d: Any, allowed: set[str], what: str) -> None:
    if not isinstance(d, dict):
        raise TypeError(f"a {what} must be a mapping, got {d!r}")
    extra = set(d) - allowed
    if extra:
        raise ValueError(f"unknown field(s) {', '.join(sorted(map(str, extra)))} in a {what} "
                         f"(allowed: {', '.join(sorted(allowed))})")


def _check(ok: Any, message: str) -> None:
    if not ok:
        raise LabError(message)


def _unique(values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for v in values:
        _check(v not in seen, f"duplicate {what} {v!r}")
        seen.add(v)


def _check_ip(h: Host) -> None:
    try:
        addr = ipaddress.IPv4Address(h.ip)
    except ValueError:
        raise LabError(f"host {h.name!r}: {h.ip!r} is not an IPv4 address") from None
    _check(addr in HOST_NET and addr not in (HOST_NET.network_address, HOST_NET.broadcast_address),
           f"host {h.name!r}: {h.ip} must be a host address in {HOST_NET} (the lab's tenant test range)")


def load_topology(path: str | Path) -> LabTopology:
    """Read a lab topology from a YAML (or JSON) file of the ``LabTopology.to_dict`` shape."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as err:
        raise LabError(f"cannot read lab topology {p}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise LabError(f"{p}: not valid YAML: {err}") from None
    return LabTopology.from_dict(data, str(p))


def paper_topology() -> LabTopology:
    """The paper's prototype: a switch-back silo, a silo behind two gateways, two VLAN domains
    in one silo, and untagged bare metal; at least two hosts per VLAN so local L2 can be checked
    (the paas silo, behind a redundant pair, has one host per VLAN). The pair comes last, so the
    first four silos keep their addresses."""

    def hosts(*spec: tuple[str, int, int]) -> tuple[Host, ...]:
        return tuple(Host(n, vlan, f"203.0.113.{last}") for n, vlan, last in spec)

    return LabTopology(
        name="paper",
        description="the seed's prototype: five silos, seven gateways (one redundant pair), eighteen hosts",
        gateways=(
            GatewaySpec("gw-va", "vsphere-a"),
            GatewaySpec("gw-vb1", "vsphere-b"),
            GatewaySpec("gw-vb2", "vsphere-b"),
            GatewaySpec("gw-kvm", "kvm"),
            GatewaySpec("gw-bm", "baremetal"),
            GatewaySpec("gw-pa", "paas", pair="paas"),
            GatewaySpec("gw-pb", "paas", pair="paas"),
        ),
        silos=(
            Silo("vsphere-a", "vsphere", description="two racks aggregated by a switch-back", groups=(
                Group("vsa", switchback=(PortRef("gw-va", "p48"),), tors=(
                    Tor("gw-va", "p1", hosts(("va100a", 100, 11), ("va101a", 101, 13)), "va-rack1"),
                    Tor("gw-va", "p2", hosts(("va100b", 100, 12), ("va101b", 101, 14)), "va-rack2"),
                )),
            )),
            Silo("vsphere-b", "vsphere", description="one VLAN domain across a per-row gateway pair", groups=(
                Group("vsb", tors=(
                    Tor("gw-vb1", "p1", hosts(("vb200a", 200, 21), ("vb201a", 201, 23)), "vb-rack1"),
                    Tor("gw-vb2", "p1", hosts(("vb200b", 200, 22), ("vb201b", 201, 24)), "vb-rack2"),
                )),
            )),
            Silo("kvm", "kvm", description="two VLAN domains behind one gateway", groups=(
                Group("kvm1", tors=(
                    Tor("gw-kvm", "p1", hosts(("k1300a", 300, 31), ("k1300b", 300, 32),
                                              ("k1301a", 301, 33), ("k1301b", 301, 34)), "kvm-tor1"),
                )),
                Group("kvm2", tors=(
                    Tor("gw-kvm", "p2", hosts(("k2300a", 300, 35), ("k2300b", 300, 36)), "kvm-tor2"),
                )),
            )),
            Silo("baremetal", "baremetal", description="untagged servers", groups=(
                Group("bm", tors=(
                    Tor("gw-bm", "p1", hosts(("bm0a", 0, 41), ("bm0b", 0, 42)), "bm-tor1"),
                )),
            )),
            Silo("paas", "paas", description="two tagged VLANs behind one ToR, served by a redundant gateway "
                 "pair sharing one anycast VTEP", groups=(
                Group("paas", tors=(
                    Tor("paas", "p1", hosts(("pa500a", 500, 51), ("pa501a", 501, 52)), "paas-tor"),
                )),
            )),
        ),
    )
