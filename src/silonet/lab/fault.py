"""``silonet lab fault GATEWAY down|up``: a gateway fails like a device, and boots again.

``down`` stops its daemons by pid file (ovs-vtep first, then ovs-vswitchd, ovsdb-server, sshd)
and sets its links down (underlay, management, front-panel ports), as a switch losing power.
If it was the active member of a pair and its partner is up, the lab does what the fabric
does for a real pair (MLAG, vPC anycast VTEP): the anycast address moves to the partner's
``br-ul`` with a gratuitous ARP, so the underlay bridge's FDB learns the new port (the MAC is
the pair's, shared, so remote VTEPs' neighbour caches stay right), and the dual-homed ToRs
switch their uplink to the partner. ``up`` sets the links up and starts the daemons on the
databases the gateway had (never recreated); ``down`` took the address off ``br-ul`` (a stopped
ovs-vswitchd leaves its tap device behind), so the VTEP address goes back on it only if the
gateway is unpaired or its pair's active member. A member
that comes back stays standby (no preemption: which member is active depends only on the
faults, in order); it takes over only if the active member is itself down.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from typing import Any

from silonet.lab import daemons, tor
from silonet.lab.errors import LabError
from silonet.lab.layout import GW_MGMT_IF, GW_UL_BRIDGE, GW_UL_IF, GatewayLayout, LabLayout, PairLayout
from silonet.lab.netns import ip, ns_argv, run
from silonet.lab.state import StateFile, active_member, faulted

ACTIONS = ("down", "up")
STOP_ORDER = ("ovs-vtep", "ovs-vswitchd", "ovsdb-server", daemons.SSHD)


def inject(layout: LabLayout, state: StateFile, gateway: str, action: str) -> dict[str, Any]:
    """Take ``gateway`` down or bring it back; what was done, the pair's active member after it,
    and how long it took (ms; ``failover`` with its own ms when the pair failed over)."""
    if action not in ACTIONS:
        raise LabError(f"fault action {action!r} must be one of {', '.join(ACTIONS)}")
    data = state.load()  # another process may have changed it: never act on a stale copy
    if data.get("phase") != "up":
        raise LabError(f"lab '{layout.prefix}' is {data.get('phase')}, not up; a fault needs a whole lab")
    gw = layout.gateway(gateway)
    down = faulted(data)
    started = time.monotonic()
    done: list[str] = []
    failover: dict[str, Any] | None = None
    pair = layout.pair(gw.pair) if gw.pair else None
    if action == "down":
        if gw.name in down:
            raise LabError(f"gateway {gw.name!r} is already down (a fault); `silonet lab fault {gw.name} up` "
                           "brings it back")
        state.set(faulted=[*down, gw.name])
        _power_off(gw, done)
        if pair and active_member(data, pair.name, pair.members) == gw.name:
            partner = pair.partner(gw.name)
            if partner in down:
                done.append(f"no failover: partner {partner} is down too; pair {pair.name} carries no traffic")
            else:
                failover = _take_over(layout, state, pair, partner, done)
    else:
        if gw.name not in down:
            raise LabError(f"gateway {gw.name!r} is not down; `silonet lab fault {gw.name} down` takes it down")
        carries = pair is None or active_member(data, pair.name, pair.members) == gw.name
        _boot(gw, carries, done)
        state.set(faulted=[g for g in down if g != gw.name])
        if pair and not carries:
            active = active_member(data, pair.name, pair.members)
            if active in down:  # the pair carried nothing: the one member up takes it (not a preemption)
                failover = _take_over(layout, state, pair, gw.name, done)
            else:
                done.append(f"standby of pair {pair.name} (active: {active}); no preemption")
    after = state.load()
    return {"gateway": gw.name, "action": action, "pair": gw.pair,
            "active": active_member(after, pair.name, pair.members) if pair else None,
            "down": faulted(after), "done": done, "failover": failover,
            "ms": round((time.monotonic() - started) * 1000, 1)}


def _power_off(gw: GatewayLayout, done: list[str]) -> None:
    stopped = [d for d in STOP_ORDER if d in daemons.gateway_daemons(gw) and daemons.stop(gw, d)]
    done.append(f"{gw.name}: stopped {', '.join(stopped) or 'nothing (no daemon was running)'}")
    links = [GW_UL_IF, GW_MGMT_IF, *gw.front_ports]
    for link in links:
        ip("link", "set", link, "down", ns=gw.netns)
    # ovs-vswitchd leaves br-ul's (persistent) tap behind, address and all: a dead switch holds none
    ip("addr", "flush", "dev", GW_UL_BRIDGE, ns=gw.netns, check=False)
    done.append(f"{gw.name}: links down: {' '.join(links)}; {GW_UL_BRIDGE} without address")


def _boot(gw: GatewayLayout, carries_vtep: bool, done: list[str]) -> None:
    """Links up, then the daemons on the databases the gateway had, as ``Lab.start_daemon`` does."""
    links = [GW_UL_IF, GW_MGMT_IF, *gw.front_ports]
    for link in links:
        ip("link", "set", link, "up", ns=gw.netns)
    done.append(f"{gw.name}: links up: {' '.join(links)}")
    started: list[str] = []

    def start(daemon: str) -> None:
        if daemons.running_pid(gw, daemon) is None:
            daemons.start(gw, daemon)
            started.append(daemon)

    start("ovsdb-server")  # reopens conf.db and vtep.db as they were
    start("ovs-vswitchd")
    daemons.sync_vswitchd(gw)  # forwarding (and br-ul) only once it is back on its database
    ip("link", "set", GW_UL_BRIDGE, "up", ns=gw.netns)
    if carries_vtep:
        ip("addr", "replace", f"{gw.vtep_ip}/24", "dev", GW_UL_BRIDGE, ns=gw.netns)
    else:  # a standby never answers for the anycast address
        ip("addr", "flush", "dev", GW_UL_BRIDGE, ns=gw.netns)
    start("ovs-vtep")
    daemons.held_marker(gw).unlink(missing_ok=True)
    if gw.sshd:
        start(daemons.SSHD)
    done.append(f"{gw.name}: started {', '.join(started) or 'nothing (all were running)'}"
                + (f"; {gw.vtep_ip} on {GW_UL_BRIDGE}" if carries_vtep else f"; {GW_UL_BRIDGE} without address"))


def _take_over(layout: LabLayout, state: StateFile, pair: PairLayout, member: str, done: list[str]
               ) -> dict[str, Any]:
    """``member`` carries the pair: anycast address, gratuitous ARP, the ToRs' uplinks; recorded."""
    started = time.monotonic()
    gw = layout.gateway(member)
    previous = active_member(state.data, pair.name, pair.members)
    ip("addr", "replace", f"{pair.vtep_ip}/24", "dev", GW_UL_BRIDGE, ns=gw.netns)
    ip("link", "set", GW_UL_BRIDGE, "up", ns=gw.netns)
    send_garp(gw, pair)
    for short in pair.tors:
        tor.use_uplink(next(t for t in layout.dual_tors if t.short == short), member)
    state.set(active={**(state.data.get("active") or {}), pair.name: member})
    ms = round((time.monotonic() - started) * 1000, 1)
    done.append(f"pair {pair.name}: {pair.vtep_ip} moved to {member} (gratuitous ARP from {pair.mac}), "
                f"ToR uplinks {' '.join(pair.tors) or '(none)'} to {member}, in {ms} ms")
    return {"from": previous, "to": member, "ms": ms}


def send_garp(gw: GatewayLayout, pair: PairLayout) -> None:
    """One gratuitous ARP out of the member's underlay port (no arping here: an OpenFlow packet-out)."""
    frame = garp_frame(pair.mac, pair.vtep_ip)
    argv = ["ovs-ofctl", "--timeout=10", "packet-out", GW_UL_BRIDGE,
            f"in_port=LOCAL packet={frame} actions=output:{GW_UL_IF}"]
    run(ns_argv(gw.netns, argv, daemons.ovs_env(gw)), timeout=15)


def garp_frame(mac: str, address: str) -> str:
    """A gratuitous ARP request (sender = target = ``address``, from ``mac``) as hex, padded to 60 bytes."""
    hw = bytes.fromhex(mac.replace(":", ""))
    if len(hw) != 6:
        raise LabError(f"{mac!r} is not a MAC address")
    ipv4 = ipaddress.IPv4Address(address).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + ipv4 + bytes(6) + ipv4
    return (b"\xff" * 6 + hw + b"\x08\x06" + arp).ljust(60, b"\0").hex()
