"""A ToR dual-homed to a gateway pair: built in its own namespace with its own OVS daemons.

A single-homed ToR is a bridge in its gateway's ovs-vswitchd, so it dies with the gateway, as
the rack would lose its only uplink anyway. A dual-homed ToR must outlive either member, so it
runs its own ``ovsdb-server`` (conf.db only, unix socket only: nobody manages it from outside)
and ``ovs-vswitchd`` in ``<prefix>-<short name>``. One trunk veth per member: the ToR end
(``upa``, ``upb``) <-> the member's front-panel port in the member's namespace. Like an MLAG
pair's port channel as the ToR sees it, only the active member's trunk is up at the ToR end;
a failover sets the other one up and flushes the ToR's MAC table (a real switch flushes the
MACs of a port that goes down), so the first frames after it flood to the new uplink.
"""

from __future__ import annotations

from silonet.lab import daemons
from silonet.lab.errors import LabError
from silonet.lab.layout import HOST_MTU, DualTorLayout, LabLayout
from silonet.lab.netns import add_netns, add_veth, ip, ns_argv, run
from silonet.lab.state import StateFile, active_member


def base(tor: DualTorLayout, state: StateFile) -> None:
    """Namespace, conf.db, ovsdb-server and ovs-vswitchd; bridges come once the trunks exist."""
    state.record("netns", tor.netns)
    add_netns(tor.netns)
    daemons.create_dbs(tor)
    state.record("daemons", f"{tor.short}/ovsdb-server")
    daemons.start(tor, "ovsdb-server")
    vsctl(tor, "--no-wait", "init")
    state.record("daemons", f"{tor.short}/ovs-vswitchd")
    daemons.start(tor, "ovs-vswitchd")


def trunks(layout: LabLayout, tor: DualTorLayout, state: StateFile) -> None:
    """One veth per member; the member's end (its front-panel port) up, the ToR's end up only
    towards the active member."""
    active = active_member(state.data, tor.pair, tor.members)
    for m in tor.members:
        gw = layout.gateway(m)
        add_veth(tor.uplink_if(m), tor.netns, tor.port, gw.netns, HOST_MTU)
        ip("link", "set", tor.port, "up", ns=gw.netns)
        if m == active:
            ip("link", "set", tor.uplink_if(m), "up", ns=tor.netns)


def bridge(tor: DualTorLayout) -> None:
    """The ToR bridge (userspace datapath): trunks to both members, hosts on access ports."""
    cmds = ["--", "add-br", tor.bridge, "--", "set", "Bridge", tor.bridge, "datapath_type=netdev",
            "--", "set", "Interface", tor.bridge, f"mtu_request={HOST_MTU}"]
    ports = [(tor.uplink_if(m), 0) for m in tor.members] + [(h.tor_port, h.vlan) for h in tor.hosts]
    for name, vlan in ports:
        cmds += ["--", "add-port", tor.bridge, name, *((f"tag={vlan}",) if vlan else ()),
                 "--", "set", "Interface", name, f"mtu_request={HOST_MTU}"]
    vsctl(tor, "--timeout=60", *cmds)


def use_uplink(tor: DualTorLayout, member: str) -> None:
    """Carry the ToR's traffic over the trunk to ``member`` only, and forget the MACs learned so far."""
    if member not in tor.members:
        raise LabError(f"ToR {tor.name!r}: {member!r} is not a member of pair {tor.pair!r}")
    for m in tor.members:
        if m != member:
            ip("link", "set", tor.uplink_if(m), "down", ns=tor.netns)
    ip("link", "set", tor.uplink_if(member), "up", ns=tor.netns)
    run(ns_argv(tor.netns, ["ovs-appctl", "--timeout=10", "fdb/flush", tor.bridge], daemons.ovs_env(tor)),
        timeout=15)


def vsctl(tor: DualTorLayout, *args: str) -> str:
    argv = ns_argv(tor.netns, ["ovs-vsctl", f"--db=unix:{tor.db_sock}", *args], daemons.ovs_env(tor))
    return run(argv, timeout=90).stdout
