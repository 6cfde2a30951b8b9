"""What a hardware_vtep database means to silonet, whoever read it.

The ``ovsdb`` driver reads the tables through the OVS IDL, the ``vtepctl`` dialect through
``vtep-ctl --format=json`` over SSH; both hand the rows here in one plain shape, so the
reading of ownership, bindings, flood lists, MACs and faults exists once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

OWNER_KEY = "silonet_managed"  # other_config key on the Logical_Switch rows silonet made


@dataclass(frozen=True)
class PortRows:
    name: str
    faults: list[str]
    vlan_bindings: dict[int, str]  # VLAN -> logical switch id


@dataclass(frozen=True)
class VtepRows:
    """The rows of one physical switch's view, with row ids as plain strings."""

    switch_faults: list[str]
    ports: list[PortRows]
    logical_switches: dict[str, tuple[str, int | None, dict[str, str]]]  # id -> name, tunnel key, other_config
    mcast_remote: list[tuple[str, str, Collection[str]]] = field(default_factory=list)  # MAC, switch id, locator IPs
    ucast_remote: list[tuple[str, str, str]] = field(default_factory=list)  # MAC, switch id, locator IP
    ucast_local: list[tuple[str, str]] = field(default_factory=list)  # MAC, switch id


def interpret(rows: VtepRows) -> tuple[GatewayState, DeviceFacts, dict[int, frozenset[str]], dict[str, list[str]]]:
    """silonet's own state, the facts about everyone else's, the MACs learned here, the faults."""
    owned: dict[str, int] = {}
    names: dict[int, str] = {}
    foreign_vnis: dict[int, str] = {}
    foreign_names: set[str] = set()
    for uuid, (name, key, other_config) in rows.logical_switches.items():
        if other_config.get(OWNER_KEY) == "true":
            if key is not None:
                owned[uuid], names[key] = key, name
        else:
            foreign_names.add(name)
            if key is not None:
                foreign_vnis[key] = name
    flood = {owned[ls]: frozenset(ips) for mac, ls, ips in rows.mcast_remote if mac == "unknown-dst" and ls in owned}
    bindings: dict[tuple[str, int], int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    faults: dict[str, list[str]] = {}
    if rows.switch_faults:
        faults["switch"] = sorted(rows.switch_faults)
    for port in rows.ports:
        if port.faults:
            faults[f"port {port.name}"] = sorted(port.faults)
        for vlan, ls in port.vlan_bindings.items():
            if ls in owned:
                bindings[(port.name, vlan)] = owned[ls]
            else:
                foreign_bindings[(port.name, vlan)] = rows.logical_switches[ls][0]
    remote = {(owned[ls], mac): ip for mac, ls, ip in rows.ucast_remote if ls in owned}
    local: dict[int, set[str]] = {}
    for mac, ls in rows.ucast_local:
        if ls in owned:
            local.setdefault(owned[ls], set()).add(mac)
    state = GatewayState(
        {vni: LogicalSwitch(vni, names[vni], flood.get(vni, frozenset())) for vni in sorted(names)},
        dict(sorted(bindings.items())), dict(sorted(remote.items())))
    facts = DeviceFacts(frozenset(p.name for p in rows.ports), foreign_bindings, foreign_vnis,
                        frozenset(foreign_names))
    return state, facts, {v: frozenset(m) for v, m in local.items()}, faults
