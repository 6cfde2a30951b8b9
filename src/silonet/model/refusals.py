"""Refusals that need the whole inventory to say what is wrong and what would help.

Over capacity: a bare "needs 8 but only 4 are free" leaves the operator to work out which groups
fill the gateway; the refusal names each interface group with its share (ports x VLANs), and
suggests a switch-back port only for a group where one saves entries: more than one port bound
on that gateway and no switch-back port there. One device, one gateway: the refusal names the
gateway already managed there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from silonet.errors import Conflict, OverCapacity
from silonet.model.entities import Gateway, InterfaceGroup

if TYPE_CHECKING:
    from silonet.model.inventory import Inventory

SHOWN = 5  # groups named in one message; the rest are counted


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _entries(count: int) -> str:
    return "1 VLAN->VNI entry" if count == 1 else f"{count} VLAN->VNI entries"


def _shares(inv: Inventory, gateway: str) -> tuple[int, str]:
    """Entries in use on ``gateway`` and who uses them: ``interface groups 'g' (6 = 2 ports x 3 VLANs), ...``."""
    rows = []
    for name in inv.groups_on(gateway):
        ports, vlans = inv.groups[name].entries_per_vlan(gateway), len(inv.vlans_of(name))
        if ports * vlans:
            rows.append((-ports * vlans, name, ports, vlans))
    rows.sort()
    parts = [f"'{name}' ({ports * vlans} = {_n(ports, 'port')} x {_n(vlans, 'VLAN')})"
             for _neg, name, ports, vlans in rows[:SHOWN]]
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    kind = "interface group" if len(rows) == 1 else "interface groups"
    return -sum(r[0] for r in rows), f"{kind} {', '.join(parts)}{more}" if rows else ""


def _switchbacks(inv: Inventory, gateway: str, group: InterfaceGroup | None, new_vlans: int) -> str:
    """The switch-back ports that would save entries, most saving first ('' when none would)."""
    groups = {name: inv.groups[name] for name in inv.groups_on(gateway)}
    if group is not None:
        groups[group.name] = group  # the group as the request would make it
    hints = []
    for name, g in groups.items():
        ports = g.entries_per_vlan(gateway)
        vlans = len(inv.vlans_of(name)) + (new_vlans if group is not None and name == group.name else 0)
        if ports > 1 and vlans and g.switchback_on(gateway) is None:
            hints.append(((ports - 1) * vlans, name, ports))
    if not hints:
        return ""
    hints.sort(key=lambda h: (-h[0], h[1]))
    said = [f"group '{name}' down to 1 entry per VLAN instead of {ports} ({saved} fewer)"
            for saved, name, ports in hints[:SHOWN]]
    return f"; a switch-back port on '{gateway}' would bring {', '.join(said)}"


def over_capacity(inv: Inventory, gateway: str, needed: int, free: int, group: InterfaceGroup | None = None,
                  new_vlans: int = 0, new_capacity: int | None = None) -> OverCapacity:
    """The refusal of a request that needs ``needed`` entries where ``free`` are left, or (with
    ``new_capacity``) of a capacity below what the gateway holds. ``group``: the group the request
    grows (as it would be), ``new_vlans``: VLANs it attaches to that group."""
    capacity = inv.gateways[gateway].capacity
    used, users = _shares(inv, gateway)
    hint = _switchbacks(inv, gateway, group, new_vlans)
    entries = _entries(used)
    if new_capacity is not None:
        detail = (f"its networks use {entries} there, more than the new capacity {new_capacity} (now {capacity}): "
                  f"{users}" + (hint or f"; keep the capacity at {used} or more, or detach VLANs first"))
    else:
        detail = (f"the request needs {_entries(needed)} but only {max(free, 0)} of {capacity} are free; "
                  + (f"{used} in use by {users}" if used else "none are in use") + hint)
    return OverCapacity(field="capacity", gateway=gateway, detail=detail, needed=needed, used=used,
                        capacity=capacity if new_capacity is None else new_capacity)


def check_management(inv: Inventory, gw: Gateway, field: str = "management.address") -> None:
    """On a write: two gateways managed at one device would undo each other's rows forever, so a new or
    changed address that reaches another gateway's device (``rules.management_endpoint``) is refused."""
    other = inv.sharing_device(gw)
    if other is not None:
        m = inv.gateways[other].management
        raise Conflict(field=field, rule=f"{m.driver} address {gw.management.address!r} reaches the device of "
                                         f"gateway '{other}' ({m.address}): one device is managed by one gateway")
