"""The build steps of ``Lab.up``, in order; each records what it creates before creating it.

One ``ovs-vsctl`` and one ``vtep-ctl`` transaction per gateway keep a five-gateway lab to a
few seconds: OVS calls cost ~15 ms each, ``ip`` calls ~2 ms.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

from silonet.lab import daemons, ssh, tor
from silonet.lab.errors import LabError
from silonet.lab.layout import (
    GW_MGMT_IF,
    GW_UL_BRIDGE,
    GW_UL_IF,
    HOST_IF,
    HOST_MTU,
    MGMT_MTU,
    UL_BRIDGE,
    UNDERLAY_MTU,
    DualTorLayout,
    GatewayLayout,
    HostLayout,
    LabLayout,
)
from silonet.lab.netns import (
    add_netns,
    add_veth,
    disable_ipv6,
    ip,
    link_exists,
    netns_exists,
    ns_argv,
    root_addresses,
    run,
    which,
)
from silonet.lab.state import StateFile, active_member

Step = tuple[str, Callable[[], None]]
BINARIES = {
    "ip": "iproute2", "ethtool": "ethtool", "ping": "iputils-ping", "ovsdb-tool": "openvswitch-switch",
    "ovsdb-server": "openvswitch-switch", "ovs-vsctl": "openvswitch-switch", "ovs-vswitchd": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch", "ovs-appctl": "openvswitch-common", "vtep-ctl": "openvswitch-vtep",
    "sysctl": "procps",
}
FILES = {daemons.OVS_VTEP: "openvswitch-vtep", daemons.VSWITCH_SCHEMA: "openvswitch-switch",
         daemons.VTEP_SCHEMA: "openvswitch-vtep"}
SSH_BINARIES = {"ssh-keygen": "openssh-client"}
SSH_FILES = {daemons.SSHD_BIN: "openssh-server"}


def check_host(driver: str = "ovsdb") -> None:
    """Root, ``ip netns`` and the OVS binaries (and OpenSSH for ssh/mixed): say exactly what is missing."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates network namespaces, veths and OVS daemons); run it as root")
    binaries, files = dict(BINARIES), dict(FILES)
    if driver != "ovsdb":
        binaries.update(SSH_BINARIES)
        files.update(SSH_FILES)
    missing = [f"{b} (apt-get install {pkg})" for b, pkg in binaries.items() if which(b) is None]
    missing += [f"{f} (apt-get install {pkg})" for f, pkg in files.items() if not Path(f).exists()]
    if missing:
        raise LabError(f"the lab needs these programs/files, missing here: {'; '.join(missing)}")
    proc = run(["ip", "netns", "list"], check=False)
    if proc.returncode != 0:
        raise LabError(f"`ip netns` does not work here: {proc.stderr.strip() or 'exit ' + str(proc.returncode)}")


def check_free(layout: LabLayout) -> None:
    """Refuse to touch anything that exists already: names and address ranges of this lab."""
    hint = f"a lab with prefix '{layout.prefix}' left behind? run `silonet lab down`, or pick another --prefix"
    for ns in layout.netns():
        if netns_exists(ns):
            raise LabError(f"namespace {ns} already exists ({hint})")
    for link in layout.root_links():
        if link_exists(link):
            raise LabError(f"interface {link} already exists in the root namespace ({hint})")
    for ifname, addr in root_addresses():
        for net in (layout.mgmt_net, layout.underlay_net):
            if ipaddress.IPv4Interface(addr).network.overlaps(net):
                raise LabError(f"{net} (lab index {layout.index}) is in use in the root namespace by {ifname} "
                               f"({addr}); pick another --index")


def steps(layout: LabLayout, state: StateFile) -> list[Step]:
    out: list[Step] = [("underlay and management bridges", lambda: _fabric(layout, state))]
    if layout.ssh:
        out.append(("ssh keys and known_hosts", lambda: ssh.make_keys(layout)))
    for gw in layout.gateways:
        out.append((f"{gw.name}: namespace and ovsdb-server", lambda gw=gw: _gateway_base(layout, gw, state)))
    for t in layout.dual_tors:
        out.append((f"{t.name}: namespace, ovsdb-server, ovs-vswitchd", lambda t=t: tor.base(t, state)))
    for gw in layout.gateways:
        out.append((f"{gw.name}: ToRs and hosts", lambda gw=gw: _gateway_links(gw, state)))
    for t in layout.dual_tors:
        out.append((f"{t.name}: trunks to pair {t.pair} and hosts", lambda t=t: _dual_tor_links(layout, t, state)))
    for gw in layout.gateways:
        out.append((f"{gw.name}: ovs-vswitchd, bridges, ovs-vtep", lambda gw=gw: _gateway_ovs(layout, gw, state)))
    for t in layout.dual_tors:
        out.append((f"{t.name}: bridge", lambda t=t: tor.bridge(t)))
    for gw in layout.gateways:
        if gw.sshd:
            out.append((f"{gw.name}: sshd", lambda gw=gw: _gateway_sshd(layout, gw, state)))
    return out


def _fabric(layout: LabLayout, state: StateFile) -> None:
    state.record("netns", layout.ul_netns)
    add_netns(layout.ul_netns)
    ip("link", "add", UL_BRIDGE, "mtu", str(UNDERLAY_MTU), "type", "bridge", ns=layout.ul_netns)
    ip("link", "set", UL_BRIDGE, "up", ns=layout.ul_netns)
    state.record("links", layout.mgmt_bridge)
    ip("link", "add", layout.mgmt_bridge, "type", "bridge")
    disable_ipv6(layout.mgmt_bridge)
    ip("addr", "add", f"{layout.mgmt_bridge_ip}/24", "dev", layout.mgmt_bridge)
    ip("link", "set", layout.mgmt_bridge, "up")


def _gateway_base(layout: LabLayout, gw: GatewayLayout, state: StateFile) -> None:
    state.record("netns", gw.netns)
    add_netns(gw.netns)
    state.record("links", gw.mgmt_root_if)
    add_veth(gw.mgmt_root_if, None, GW_MGMT_IF, gw.netns, MGMT_MTU)
    disable_ipv6(gw.mgmt_root_if)
    ip("link", "set", gw.mgmt_root_if, "master", layout.mgmt_bridge, "up")
    ip("addr", "add", f"{gw.mgmt_ip}/24", "dev", GW_MGMT_IF, ns=gw.netns)
    ip("link", "set", GW_MGMT_IF, "up", ns=gw.netns)
    add_veth(gw.ul_peer_if, layout.ul_netns, GW_UL_IF, gw.netns, UNDERLAY_MTU)
    ip("link", "set", gw.ul_peer_if, "master", UL_BRIDGE, "up", ns=layout.ul_netns)
    ip("link", "set", GW_UL_IF, "up", ns=gw.netns)
    daemons.create_dbs(gw)
    state.record("daemons", f"{gw.name}/ovsdb-server")
    daemons.start(gw, "ovsdb-server")
    _vsctl(gw, "--no-wait", "init")


def _gateway_links(gw: GatewayLayout, state: StateFile) -> None:
    """Trunks (ToR <-> front-panel port), loop cables (switch-back) and hosts; all up, no OVS yet."""
    ends: list[str] = []
    for t in gw.tors:
        add_veth(t.uplink_if, gw.netns, t.port, gw.netns, HOST_MTU)
        ends += [t.uplink_if, t.port]
    for s in gw.switchbacks:
        add_veth(s.loop_if, gw.netns, s.port, gw.netns, HOST_MTU)
        ends += [s.loop_if, s.port]
    for t in gw.tors:
        for h in t.hosts:
            _host(gw, h, state)
            ends.append(h.tor_port)
    for end in ends:
        ip("link", "set", end, "up", ns=gw.netns)


def _dual_tor_links(layout: LabLayout, t: DualTorLayout, state: StateFile) -> None:
    tor.trunks(layout, t, state)
    for h in t.hosts:
        _host(t, h, state)
        ip("link", "set", h.tor_port, "up", ns=t.netns)


def _host(gw: GatewayLayout | DualTorLayout, h: HostLayout, state: StateFile) -> None:
    """A host namespace whose eth0's peer is its ToR port, in ``gw``'s namespace (the ToR's)."""
    state.record("netns", h.netns)
    add_netns(h.netns)
    add_veth(HOST_IF, h.netns, h.tor_port, gw.netns, HOST_MTU)
    ip("link", "set", HOST_IF, "address", h.mac, ns=h.netns)
    ip("addr", "add", f"{h.ip}/24", "dev", HOST_IF, ns=h.netns)
    ip("link", "set", HOST_IF, "up", ns=h.netns)
    # The userspace datapath does not fill in checksums the veth offloaded: TCP would stall.
    run(ns_argv(h.netns, ["ethtool", "-K", HOST_IF, "tx", "off"]))


def _gateway_ovs(layout: LabLayout, gw: GatewayLayout, state: StateFile) -> None:
    state.record("daemons", f"{gw.name}/ovs-vswitchd")
    daemons.start(gw, "ovs-vswitchd")
    _vsctl(gw, "--timeout=60", *bridge_commands(gw))
    if gw.pair is None or active_member(state.data, gw.pair, layout.pair(gw.pair).members) == gw.name:
        ip("addr", "add", f"{gw.vtep_ip}/24", "dev", GW_UL_BRIDGE, ns=gw.netns)  # a standby's br-ul has none
    ip("link", "set", GW_UL_BRIDGE, "up", ns=gw.netns)
    ps = gw.ps_bridge
    vtep = ["--", "add-ps", ps, "--", "set", "Physical_Switch", ps, f"tunnel_ips={gw.vtep_ip}",
            f"management_ips={gw.mgmt_ip}"]
    for port in gw.vtep_ports:
        vtep += ["--", "add-port", ps, port]
    run(ns_argv(gw.netns, ["vtep-ctl", f"--db=unix:{gw.db_sock}", "--timeout=30", *vtep], daemons.ovs_env(gw)))
    state.record("daemons", f"{gw.name}/ovs-vtep")
    daemons.start(gw, "ovs-vtep")


def _gateway_sshd(layout: LabLayout, gw: GatewayLayout, state: StateFile) -> None:
    """OpenSSH on the management IP: ``ssh root@<mgmt ip> vtep-ctl ...`` reaches this gateway's database."""
    ssh.write_sshd_config(gw, layout.authorized_keys)
    state.record("daemons", f"{gw.name}/{daemons.SSHD}")
    daemons.start(gw, daemons.SSHD)


def bridge_commands(gw: GatewayLayout) -> list[str]:
    """One ovs-vsctl transaction for all of a gateway's bridges; every port gets mtu_request."""
    cmds: list[str] = []

    def bridge(name: str, mtu: int) -> None:
        cmds.extend(["--", "add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev",
                     "--", "set", "Interface", name, f"mtu_request={mtu}"])

    def port(br: str, name: str, mtu: int, *extra: str) -> None:
        cmds.extend(["--", "add-port", br, name, *extra, "--", "set", "Interface", name, f"mtu_request={mtu}"])

    bridge(GW_UL_BRIDGE, UNDERLAY_MTU)
    if gw.pair_mac:  # the pair's shared VTEP MAC: a failover moves the anycast address, not the MAC
        cmds.extend(["--", "set", "Bridge", GW_UL_BRIDGE, f"other_config:hwaddr={gw.pair_mac}"])
    port(GW_UL_BRIDGE, GW_UL_IF, UNDERLAY_MTU)
    bridge(gw.ps_bridge, HOST_MTU)
    for p in gw.dual_ports:  # trunks from dual-homed ToRs: the veth was made with the ToR
        port(gw.ps_bridge, p, HOST_MTU)
    for s in gw.switchbacks:
        bridge(s.bridge, HOST_MTU)
        port(s.bridge, s.loop_if, HOST_MTU)
        port(gw.ps_bridge, s.port, HOST_MTU)
    for t in gw.tors:
        port(t.port_bridge, t.port, HOST_MTU)
        bridge(t.bridge, HOST_MTU)
        port(t.bridge, t.uplink_if, HOST_MTU)
        for h in t.hosts:
            port(t.bridge, h.tor_port, HOST_MTU, *((f"tag={h.vlan}",) if h.vlan else ()))
    return cmds


def _vsctl(gw: GatewayLayout, *args: str) -> str:
    argv = ns_argv(gw.netns, ["ovs-vsctl", f"--db=unix:{gw.db_sock}", *args], daemons.ovs_env(gw))
    return run(argv, timeout=90).stdout
