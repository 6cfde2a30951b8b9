"""Names and addresses of everything a lab creates, derived from (prefix, index, topology, driver).

Pure and deterministic: ``up``, ``down``, ``status`` and a restarted daemon in another
process all compute the same names from the state file, so nothing has to be guessed.
Lab index k owns 198.18.(2k).0/24 (underlay) and 198.18.(2k+1).0/24 (management).

A gateway pair shares one anycast VTEP address, its first member's underlay address, and one
"pair MAC" on both members' ``br-ul`` (as MLAG/vPC pairs share a virtual VTEP MAC): remote
VTEPs' neighbour caches stay right across a failover, only the underlay bridge's FDB moves.
A ToR dual-homed to a pair runs in its own namespace with its own OVS daemons.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from silonet.lab.errors import LabError
from silonet.lab.topology import LabTopology, Tor

PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,3}$")
MAX_INDEX = 127
OVSDB_PORT = 6640
HOST_MTU = 9000
# VXLAN adds 50 bytes: the underlay carries 9000-byte tenant frames whole (userspace OVS never fragments).
UNDERLAY_MTU = 9100
MGMT_MTU = 1500
UL_BRIDGE = "br0"  # the underlay "routed network": a Linux bridge in <prefix>-ul
GW_UL_IF, GW_MGMT_IF, GW_UL_BRIDGE = "ul0", "mgmt0", "br-ul"
HOST_IF = "eth0"
# How the inventory tells silonet to manage the gateways: "ovsdb" (OVSDB over TCP), "ssh" (the vtepctl
# dialect over OpenSSH) or "mixed" (alternating by gateway order). With ssh or mixed every gateway runs
# sshd, so each can be reached both ways.
DRIVERS = ("ovsdb", "ssh", "mixed")
SSH_DIR = "ssh"  # <lab dir>/ssh: host keys, authorized_keys, known_hosts (the client key: LabLayout.key_dir)
SSH_USER, SSH_PORT = "root", 22
SSH_DIALECT = "vtepctl"


@dataclass(frozen=True)
class HostLayout:
    name: str
    silo: str
    group: str
    vlan: int
    ip: str
    mac: str
    netns: str
    gateway: str  # its ToR's gateway, or pair when the ToR is dual-homed
    tor_bridge: str
    tor_port: str  # the host veth's end on the ToR
    tor_netns: str = ""  # where that end is: the gateway's namespace, or a dual-homed ToR's own


@dataclass(frozen=True)
class TorLayout:
    name: str
    group: str
    bridge: str  # OVS bridge in the gateway's vswitchd
    uplink_if: str  # trunk veth end on the ToR bridge
    port: str  # front-panel port: the trunk's other end
    port_bridge: str  # where the front-panel port sits: the physical switch, or a switch-back bridge
    hosts: tuple[HostLayout, ...]


@dataclass(frozen=True)
class SwitchbackLayout:
    group: str
    bridge: str  # plain L2 bridge holding the group's member ports
    loop_if: str  # loop cable end on that bridge
    port: str  # loop cable end in the physical switch: the only vtep port of the group here


@dataclass(frozen=True)
class GatewayLayout:
    name: str
    index: int
    silo: str | None
    capacity: int
    netns: str
    dir: Path
    vtep_ip: str
    mgmt_ip: str
    mgmt_root_if: str  # root-namespace end of the management veth
    ul_peer_if: str  # underlay-namespace end of the underlay veth
    tors: tuple[TorLayout, ...]
    switchbacks: tuple[SwitchbackLayout, ...]
    driver: str = "ovsdb"  # how the inventory manages it: "ovsdb" or "ssh"
    sshd: bool = False  # whether it runs sshd (every gateway of an ssh or mixed lab)
    pair: str | None = None
    pair_mac: str | None = None  # br-ul's MAC, shared with the partner (None: OVS picks one)
    dual_ports: tuple[str, ...] = ()  # front-panel ports facing dual-homed ToRs (in the physical switch)

    what = "gateway"  # in daemon messages

    @property
    def ps_bridge(self) -> str:
        return self.name

    @property
    def ssh_address(self) -> str:
        return f"{SSH_USER}@{self.mgmt_ip}:{SSH_PORT}"

    @property
    def ssh_dir(self) -> Path:
        return self.dir.parent / SSH_DIR  # gw.dir is always <lab dir>/<gateway>

    @property
    def host_key(self) -> Path:
        return self.ssh_dir / f"ssh_host_{self.name}_ed25519"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def ovsdb(self) -> str:
        return f"tcp:{self.mgmt_ip}:{OVSDB_PORT}"

    @property
    def db_sock(self) -> Path:
        return self.dir / "db.sock"

    @property
    def vtep_ports(self) -> list[str]:
        """Ports inside the physical switch, each declared with ``vtep-ctl add-port``."""
        return ([t.port for t in self.tors if t.port_bridge == self.ps_bridge] + list(self.dual_ports)
                + [s.port for s in self.switchbacks])

    @property
    def front_ports(self) -> list[str]:
        """Every front-panel port (ToR-facing or switch-back), in this namespace: a fault sets them down."""
        return [t.port for t in self.tors] + list(self.dual_ports) + [s.port for s in self.switchbacks]

    @property
    def inventory_ports(self) -> list[dict[str, Any]]:
        return [{"name": p, "switchback": False} for p in (*(t.port for t in self.tors), *self.dual_ports)] + [
            {"name": s.port, "switchback": True} for s in self.switchbacks]

    def interface_names(self) -> list[str]:
        """Every kernel interface in the gateway namespace (bridges' own ports included)."""
        names = [GW_UL_IF, GW_MGMT_IF, GW_UL_BRIDGE, self.ps_bridge, "vtep_bfd"]
        for t in self.tors:
            names += [t.bridge, t.uplink_if, t.port, *(h.tor_port for h in t.hosts)]
        for s in self.switchbacks:
            names += [s.bridge, s.loop_if, s.port]
        return names + list(self.dual_ports)


@dataclass(frozen=True)
class DualTorLayout:
    """A ToR dual-homed to a gateway pair: its own namespace, ovsdb-server (conf.db, unix socket
    only) and ovs-vswitchd, so a member's death does not take it down; one trunk per member."""

    name: str  # as in the topology
    short: str  # namespace suffix, bridge, directory and daemon owner: fits a Linux interface name
    group: str
    pair: str
    port: str  # each member's front-panel port facing it
    members: tuple[str, ...]  # the pair's, in topology order
    netns: str
    dir: Path
    hosts: tuple[HostLayout, ...]

    what = "ToR"  # in daemon messages

    @property
    def bridge(self) -> str:
        return self.short

    @property
    def db_sock(self) -> Path:
        return self.dir / "db.sock"

    def uplink_if(self, member: str) -> str:
        """The ToR's end of the trunk to ``member``: upa, upb."""
        return "up" + "ab"[self.members.index(member)]

    def interface_names(self) -> list[str]:
        return ["lo", "ovs-netdev", self.bridge, *(self.uplink_if(m) for m in self.members),
                *(h.tor_port for h in self.hosts)]


@dataclass(frozen=True)
class PairLayout:
    name: str
    members: tuple[str, ...]  # topology order: the first one starts active
    vtep_ip: str  # the anycast VTEP address: the first member's underlay address
    mac: str  # both members' br-ul MAC
    tors: tuple[str, ...]  # its dual-homed ToRs (short names)

    def partner(self, member: str) -> str:
        return next(m for m in self.members if m != member)


@dataclass(frozen=True)
class LabLayout:
    prefix: str
    index: int
    dir: Path
    topology: LabTopology
    gateways: tuple[GatewayLayout, ...]
    driver: str = "ovsdb"
    # where the manager's client key lives: a folder of the secrets directory, since credentials
    # references point only there (None: <lab dir>/ssh, as labs built before that had it)
    key_dir: Path | None = None
    pairs: tuple[PairLayout, ...] = ()
    dual_tors: tuple[DualTorLayout, ...] = ()

    @property
    def ssh(self) -> bool:
        """Whether the gateways run sshd (driver ssh or mixed)."""
        return self.driver != "ovsdb"

    @property
    def ssh_dir(self) -> Path:
        return self.dir / SSH_DIR

    @property
    def client_key(self) -> Path:
        return (self.key_dir or self.ssh_dir) / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh_dir / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def ul_netns(self) -> str:
        return f"{self.prefix}-ul"

    @property
    def mgmt_bridge(self) -> str:
        return f"{self.prefix}mgmt"

    @property
    def mgmt_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{2 * self.index + 1}.0/24")

    @property
    def underlay_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{2 * self.index}.0/24")

    @property
    def mgmt_bridge_ip(self) -> str:
        return f"198.18.{2 * self.index + 1}.254"

    def gateway(self, name: str) -> GatewayLayout:
        for g in self.gateways:
            if g.name == name:
                return g
        raise LabError(f"no gateway {name!r} in lab '{self.prefix}' (gateways: {', '.join(self.gateway_names)})")

    @property
    def gateway_names(self) -> list[str]:
        return [g.name for g in self.gateways]

    def pair(self, name: str) -> PairLayout:
        return next(p for p in self.pairs if p.name == name)

    def switch(self, name: str) -> GatewayLayout | DualTorLayout:
        """A daemon owner named in the state file: a gateway, or a dual-homed ToR by its short name."""
        for t in self.dual_tors:
            if t.short == name:
                return t
        return self.gateway(name)

    def hosts(self) -> list[HostLayout]:
        return [h for g in self.gateways for t in g.tors for h in t.hosts] + [
            h for t in self.dual_tors for h in t.hosts]

    def host(self, name: str) -> HostLayout:
        for h in self.hosts():
            if h.name == name:
                return h
        raise LabError(f"no host {name!r} in lab '{self.prefix}'")

    def netns(self) -> list[str]:
        """Every namespace of the lab, in creation order."""
        return [self.ul_netns, *(g.netns for g in self.gateways), *(t.netns for t in self.dual_tors),
                *(h.netns for h in self.hosts())]

    def root_links(self) -> list[str]:
        return [self.mgmt_bridge, *(g.mgmt_root_if for g in self.gateways)]


def check_driver(driver: str) -> None:
    if driver not in DRIVERS:
        raise LabError(f"lab driver {driver!r} must be one of {', '.join(DRIVERS)} "
                       "(ssh and mixed run sshd in every gateway)")


def gateway_driver(driver: str, i: int) -> str:
    """The management driver of the i-th gateway: mixed alternates, the first one ovsdb."""
    if driver == "mixed":
        return "ovsdb" if i % 2 == 0 else "ssh"
    return driver


def check_prefix_index(prefix: str, index: int) -> None:
    if not PREFIX_RE.match(prefix):
        raise LabError(f"lab prefix {prefix!r} must be 1..4 lowercase letters or digits, starting with a letter "
                       "(it prefixes namespace and interface names)")
    if not 0 <= index <= MAX_INDEX:
        raise LabError(f"lab index {index} must be 0..{MAX_INDEX} (index k uses 198.18.2k.0/24 and 198.18.2k+1.0/24)")


def host_mac(ip: str) -> str:
    """A locally administered MAC derived from the host address: readable in OVS tables."""
    a, b, c, d = (int(x) for x in ip.split("."))
    return f"02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}"


def pair_mac(anycast: str) -> str:
    """A pair's shared br-ul MAC: locally administered, derived from its anycast address (02:aa:
    never collides with a host's 02:00:)."""
    a, b, c, d = (int(x) for x in anycast.split("."))
    return f"02:aa:{a:02x}:{b:02x}:{c:02x}:{d:02x}"


SHORT_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}$")


def tor_short(name: str) -> str:
    """A dual-homed ToR's short name: itself when it fits a Linux interface name (1..15 lowercase
    letters, digits or '-', starting with a letter), else its first letters and a digest of the
    whole name, so the same name always gives the same namespace."""
    if SHORT_RE.match(name):
        return name
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    clean = clean if clean[:1].isalpha() else "t" + clean
    return f"{clean[:10].rstrip('-')}-{hashlib.sha1(name.encode()).hexdigest()[:4]}"


def build_layout(prefix: str, index: int, base_dir: Path, topology: LabTopology, driver: str = "ovsdb",
                 key_dir: Path | None = None) -> LabLayout:
    """Lay out a resolved topology; fails if two interfaces of one namespace, or two namespaces,
    would share a name."""
    check_prefix_index(prefix, index)
    check_driver(driver)
    if driver != "ovsdb" and any(g.name == SSH_DIR for g in topology.gateways):
        raise LabError(f"gateway name {SSH_DIR!r} is taken by the lab's ssh directory with driver {driver}; "
                       "rename the gateway")
    lab_dir = base_dir / prefix
    sb_by_gw: dict[str, list[SwitchbackLayout]] = {g.name: [] for g in topology.gateways}
    sb_of: dict[tuple[str, str], SwitchbackLayout] = {}
    for s in topology.silos:
        for grp in s.groups:
            for ref in grp.switchback:
                n = len(sb_by_gw[ref.gateway]) + 1
                sb = SwitchbackLayout(grp.name, f"sb{n}", f"sb{n}out", ref.port)
                sb_by_gw[ref.gateway].append(sb)
                sb_of[(grp.name, ref.gateway)] = sb
    tors_by_gw: dict[str, list[TorLayout]] = {g.name: [] for g in topology.gateways}
    members = topology.pairs()
    dual: list[DualTorLayout] = []
    for s in topology.silos:
        for grp in s.groups:
            for t in grp.tors:
                if t.gateway in members:
                    dual.append(_dual_tor(prefix, lab_dir, s.name, grp.name, t, members[t.gateway], len(dual) + 1))
                    continue
                n = len(tors_by_gw[t.gateway]) + 1
                bridge = f"tor{n}"
                sb = sb_of.get((grp.name, t.gateway))
                hosts = tuple(
                    HostLayout(name=h.name, silo=s.name, group=grp.name, vlan=h.vlan, ip=str(h.ip),
                               mac=host_mac(str(h.ip)), netns=f"{prefix}-{h.name}", gateway=t.gateway,
                               tor_bridge=bridge, tor_port=h.name, tor_netns=f"{prefix}-{t.gateway}")
                    for h in t.hosts)
                tors_by_gw[t.gateway].append(TorLayout(
                    name=t.name or f"{grp.name}-tor{n}", group=grp.name, bridge=bridge, uplink_if=f"t{n}up",
                    port=t.port, port_bridge=sb.bridge if sb else t.gateway, hosts=hosts))
    names = [g.name for g in topology.gateways]
    first = {pair: names.index(ms[0]) for pair, ms in members.items()}
    pairs = tuple(PairLayout(name, ms, f"198.18.{2 * index}.{first[name] + 1}",
                             pair_mac(f"198.18.{2 * index}.{first[name] + 1}"),
                             tuple(t.short for t in dual if t.pair == name))
                  for name, ms in members.items())
    pair_of = {p.name: p for p in pairs}

    def vtep(g_pair: str | None, i: int) -> str:
        return pair_of[g_pair].vtep_ip if g_pair else f"198.18.{2 * index}.{i + 1}"

    gateways = tuple(
        GatewayLayout(
            name=g.name, index=i, silo=g.silo, capacity=g.capacity, netns=f"{prefix}-{g.name}",
            dir=lab_dir / g.name, vtep_ip=vtep(g.pair, i), mgmt_ip=f"198.18.{2 * index + 1}.{i + 1}",
            mgmt_root_if=f"{prefix}m{i}", ul_peer_if=f"u{i}",
            tors=tuple(tors_by_gw[g.name]), switchbacks=tuple(sb_by_gw[g.name]),
            # a pair has one driver: its first member's (a mixed lab alternates by gateway order)
            driver=gateway_driver(driver, first[g.pair] if g.pair else i), sshd=driver != "ovsdb",
            pair=g.pair, pair_mac=pair_of[g.pair].mac if g.pair else None,
            dual_ports=tuple(t.port for t in dual if g.name in t.members))
        for i, g in enumerate(topology.gateways)
    )
    _check_names(lab_dir, gateways, dual)
    layout = LabLayout(prefix, index, lab_dir, topology, gateways, driver, key_dir, pairs, tuple(dual))
    netns = layout.netns()
    dup = sorted({n for n in netns if netns.count(n) > 1})
    if dup:
        raise LabError(f"namespace name(s) {', '.join(dup)} used twice (a gateway, dual-homed ToR or host "
                       f"is named like another, or like the underlay '{prefix}-ul')")
    return layout


def _dual_tor(prefix: str, lab_dir: Path, silo: str, group: str, t: Tor, members: tuple[str, ...], n: int
              ) -> DualTorLayout:
    name = t.name or f"{group}-tor{n}"
    short = tor_short(name)
    hosts = tuple(
        HostLayout(name=h.name, silo=silo, group=group, vlan=h.vlan, ip=str(h.ip), mac=host_mac(str(h.ip)),
                   netns=f"{prefix}-{h.name}", gateway=t.gateway, tor_bridge=short, tor_port=h.name,
                   tor_netns=f"{prefix}-{short}")
        for h in t.hosts)
    return DualTorLayout(name=name, short=short, group=group, pair=t.gateway, port=t.port, members=members,
                         netns=f"{prefix}-{short}", dir=lab_dir / short, hosts=hosts)


def _check_names(lab_dir: Path, gateways: tuple[GatewayLayout, ...], dual: list[DualTorLayout]) -> None:
    """Interface names unique per namespace; unix socket paths short enough."""
    for t in dual:
        names = t.interface_names()
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise LabError(f"dual-homed ToR {t.name!r}: interface name(s) {', '.join(dup)} used twice in its "
                           "namespace (a host is named like the ToR or a lab-internal interface)")
        if t.short == SSH_DIR:
            raise LabError(f"dual-homed ToR name {SSH_DIR!r} is taken by the lab's ssh directory; rename the ToR")
        sock = len(str(t.db_sock))
        if sock > 100:
            raise LabError(f"lab directory {lab_dir} is too long for a unix socket path ({sock} > 100 characters)")
    for g in gateways:
        names = g.interface_names()
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise LabError(f"gateway {g.name!r}: interface name(s) {', '.join(dup)} used twice in its namespace "
                           "(a host or port is named like a lab-internal interface)")
        sock = len(str(g.dir / "db.sock"))
        if sock > 100:
            raise LabError(f"lab directory {lab_dir} is too long for a unix socket path ({sock} > 100 characters)")
