"""diff(desired, actual) -> ordered operations, and their pure application."""

from __future__ import annotations

from silonet.plan.ops import (
    Bind,
    EnsureLogicalSwitch,
    Operation,
    RemoveLogicalSwitch,
    RemoveRemoteMac,
    SetFloodList,
    SetRemoteMac,
    Unbind,
)
from silonet.plan.state import GatewayState, LogicalSwitch


def diff(desired: GatewayState, actual: GatewayState) -> list[Operation]:
    """The smallest ordered batch that turns ``actual`` into ``desired``.

    Order: logical switches exist before anything binds to them, flood lists are set before
    traffic can arrive, rebinds happen in place, and a logical switch goes only after every
    binding to it is gone.
    """
    ops: list[Operation] = []
    # Set operations on dict items (C code: LogicalSwitch is a tuple) find what differs; only
    # that is sorted and looked at, so a pass after one attach does not walk every switch.
    have = actual.logical_switches
    for vni, ls in sorted(desired.logical_switches.items() - have.items()):
        cur = have.get(vni)
        if cur is None or cur.network != ls.network:
            ops.append(EnsureLogicalSwitch(vni, ls.network))
        if cur is None or cur.flood != ls.flood:
            ops.append(SetFloodList(vni, ls.flood))
    for (vni, mac), ip in sorted(desired.remote_macs.items() - actual.remote_macs.items()):
        ops.append(SetRemoteMac(vni, mac, ip))
    for (port, vlan), vni in sorted(desired.bindings.items() - actual.bindings.items()):
        ops.append(Bind(port, vlan, vni))
    want = desired.logical_switches
    for key in sorted(actual.bindings.keys() - desired.bindings.keys()):
        ops.append(Unbind(*key))
    for vni, mac in sorted(actual.remote_macs.keys() - desired.remote_macs.keys()):
        if vni in want:  # removing the logical switch takes its MACs with it
            ops.append(RemoveRemoteMac(vni, mac))
    for vni in sorted(have.keys() - want.keys()):
        ops.append(RemoveLogicalSwitch(vni))
    return sorted(ops, key=lambda op: op.phase)


def apply_ops(state: GatewayState, ops: list[Operation]) -> GatewayState:
    """What a device holds after ``ops``: the model every driver must honour."""
    switches = dict(state.logical_switches)
    bindings = dict(state.bindings)
    macs = dict(state.remote_macs)
    for op in ops:
        match op:
            case EnsureLogicalSwitch(vni=vni, network=network):
                old = switches.get(vni)
                switches[vni] = LogicalSwitch(vni, network, old.flood if old else frozenset())
            case SetFloodList(vni=vni, flood=flood):
                switches[vni] = LogicalSwitch(vni, switches[vni].network, flood)
            case SetRemoteMac(vni=vni, mac=mac, vtep_ip=ip):
                if vni not in switches:
                    raise ValueError(f"remote MAC on VNI {vni} before its logical switch exists")
                macs[(vni, mac)] = ip
            case RemoveRemoteMac(vni=vni, mac=mac):
                macs.pop((vni, mac), None)
            case Bind(port=port, vlan=vlan, vni=vni):
                if vni not in switches:
                    raise ValueError(f"bind to VNI {vni} before its logical switch exists")
                bindings[(port, vlan)] = vni
            case Unbind(port=port, vlan=vlan):
                bindings.pop((port, vlan), None)
            case RemoveLogicalSwitch(vni=vni):
                if vni in bindings.values():
                    raise ValueError(f"remove VNI {vni} while ports are still bound to it")
                switches.pop(vni, None)
                macs = {k: v for k, v in macs.items() if k[0] != vni}
    return GatewayState(switches, dict(sorted(bindings.items())), dict(sorted(macs.items())))
