"""``junos``: Juniper Junos (QFX/EX with VXLAN, static remote VTEPs), through its interactive
CLI (shell style) in a private candidate configuration.

Verified only against documentation and public code, never against a switch. What was
relied on, per fact:

- ``configure private`` ... ``commit and-quit``; on failure ``rollback 0`` and ``exit
  configuration-mode``: Junos CLI User Guide (forms of ``configure``: a private candidate is
  discarded on leaving configuration mode; ``rollback 0`` discards the candidate's edits),
  public JNCIA study notes. ``commit and-quit`` / ``exit configuration-mode`` are used instead
  of ``commit`` / ``exit`` because a bare ``exit`` in operational mode (where a refusal before
  ``configure private`` leaves the session) logs the CLI out, and the driver does not reopen
  a closed shell. Their exact spelling was not found in the searchable documentation.
- ``set vlans <name> vlan-id <V>``, ``set vlans <name> vxlan vni <N>``, ``set vlans <name>
  vxlan ingress-node-replication``, ``set vlans <name> vxlan static-remote-vtep-list <ip>``
  with every such ip also in ``set switch-options remote-vtep-list <ip>``: netlab's Junos
  VXLAN templates (ipspace/netlab netsim/ansible/templates/vxlan/junos-common.j2,
  vjunos-switch.j2), which render exactly this hierarchy for static flooding.
- ``set interfaces <port> unit 0 family ethernet-switching vlan members <vlan name>``: the
  ELS ethernet-switching hierarchy (Junos docs; a public ``display json`` dump of it).
- Read back: ``show configuration vlans | display json`` and ``show configuration interfaces |
  display json``: Juniper, "Map Junos OS Configuration Statements to JSON" (top-level
  ``configuration`` object; named objects as arrays of objects with ``name``; leaf-lists as
  arrays; ``@`` metadata; integers unquoted only since 16.1R4/17.1R1, so both forms parse).
  A single-element list printed as a bare value (seen in converted dumps) also parses.
- Failure strings ``error:`` (commit and syntax errors), ``syntax error``, ``unknown command``.
  ``delete`` of a statement that is not there only warns (``warning: statement not found``),
  which is what makes the remove/unbind templates idempotent.
- Not verified: the exact banner/echo of ``configure private`` and ``commit`` on a real box.

Per-switch scope (``scope="switch"``): a VLAN ID is one VLAN (and VNI) on the whole switch.
silonet's VLANs are named ``silonet-<network>`` (the ownership marker) and carry one VLAN ID
and one VNI; a binding (port, V) is ``unit 0`` membership in that VLAN by name. Every other
VLAN with a VLAN ID is foreign on every managed port, and its VNI is a foreign VNI. silonet
adds peers to ``switch-options remote-vtep-list`` but never removes them (that list is shared
with whatever else the switch runs). Inventory port names spell ``/`` as ``_``
(``xe-0_0_1`` is ``xe-0/0/1``); ``set cli screen-length 0`` is session set-up. What one switch
cannot hold (untagged VLAN 0, one VNI on two VLANs or one VLAN for two VNIs) is refused by
``check``, binding by binding; ``prepare`` works out what each operation's template prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import (
    Dialect,
    Parsed,
    Prepared,
    Target,
    checks,
    flood_delta,
    per_operation,
    tagged_only,
    untagged_refused,
)
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "set cli screen-length 0"
SHOW_VLANS = "show configuration vlans | display json"
SHOW_INTERFACES = "show configuration interfaces | display json"
MARK = "silonet-"


def _json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        return {}  # an empty hierarchy prints nothing
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    return obj


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    vlans = _list(_json(outputs[SHOW_VLANS]).get("configuration", {}).get("vlans", {}).get("vlan"))
    interfaces = _list(_json(outputs[SHOW_INTERFACES]).get("configuration", {}).get("interfaces", {})
                       .get("interface"))
    switching = {}
    for intf in interfaces:
        for unit in _list(intf.get("unit")):
            family = (unit.get("family") or {}).get("ethernet-switching")
            if family is not None:
                switching.setdefault(_port(str(intf["name"])), {})[str(unit.get("name"))] = family
    managed = sorted(set(gw.ports) if gw.ports else set(switching))

    owned: dict[str, tuple[int, int]] = {}  # VLAN name -> (VLAN ID, VNI)
    switches: dict[int, LogicalSwitch] = {}
    foreign: dict[int, str] = {}
    foreign_vnis: dict[int, str] = {}
    faults: dict[str, list[str]] = {}
    for vlan in vlans:
        name = str(vlan.get("name", ""))
        vlan_id = str(vlan.get("vlan-id", ""))
        vni = str((vlan.get("vxlan") or {}).get("vni", ""))
        if name.startswith(MARK):
            if vlan_id.isdigit() and vni.isdigit():
                owned[name] = (int(vlan_id), int(vni))
                flood = frozenset(str(ip) for ip in _list(vlan["vxlan"].get("static-remote-vtep-list")))
                switches[int(vni)] = LogicalSwitch(int(vni), name[len(MARK):], flood)
            continue
        if vlan_id.isdigit():
            foreign[int(vlan_id)] = name
        if vni.isdigit():
            foreign_vnis[int(vni)] = name
    bindings: dict[tuple[str, int], int] = {}
    for port in managed:
        members = [str(m) for m in _list(((switching.get(port) or {}).get("0") or {}).get("vlan", {}).get("members"))]
        for member in members:
            if member in owned:
                vlan_id, vni = owned[member]
                bindings[(port, vlan_id)] = vni
        for unit in sorted(set(switching.get(port) or {}) - {"0"}):
            faults.setdefault(f"port {port}", []).append(f"unit {unit} switches too; silonet manages unit 0 only")
    foreign_bindings = {(p, v): name for v, name in foreign.items() for p in managed}
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(None, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())))
    return Parsed(state, facts, {}, faults)


# ---------------------------------------------------------------------------- batches
def _interface(port: str) -> str:
    return port.replace("_", "/")


class _Batch:
    """What the operations of one batch print; VLANs are referenced by name (``silonet-<network>``)."""

    def __init__(self, ops: list[Operation], actual: GatewayState, desired: GatewayState) -> None:
        self.actual, self.desired = actual, desired
        self.ensured = {op.vni for op in ops if isinstance(op, EnsureLogicalSwitch)}
        self.flooded = {op.vni for op in ops if isinstance(op, SetFloodList)}
        self.first_bind: dict[int, int] = {}
        for i, op in enumerate(ops):
            if isinstance(op, Bind):
                self.first_bind.setdefault(op.vlan, i)
        self.had: dict[int, set[int]] = {}  # VNI -> VLAN IDs now
        self.ports_had: dict[int, list[str]] = {}  # VNI -> its ports now, in order, once each
        for (port, vlan), vni in sorted(actual.bindings.items()):
            self.had.setdefault(vni, set()).add(vlan)
            if port not in self.ports_had.setdefault(vni, []):
                self.ports_had[vni].append(port)
        self.member = {(port, vni) for (port, _vlan), vni in actual.bindings.items()}  # a port in a VLAN now
        self.stays = {(port, vni) for (port, _vlan), vni in desired.bindings.items()}  # ... and after
        self.vlan_id: dict[int, int] = {}  # VNI -> the VLAN ID of its first desired binding
        for (_port, vlan), vni in sorted(desired.bindings.items()):
            self.vlan_id.setdefault(vni, vlan)

    def left(self, port: str, vlan: int) -> str | None:
        """The network whose VLAN ``port`` leaves when (port, ``vlan``) changes: the one it is bound
        to now, unless the port stays in that VLAN under another VLAN ID (the VNI moved)."""
        before = self.actual.bindings.get((port, vlan))
        if before is None or (port, before) in self.stays:
            return None
        return self.actual.logical_switches[before].network

    def bind(self, op: Bind, i: int) -> dict[str, Any]:
        """``vlan_id``: the first Bind of a VNI that moves to another VLAN ID sets it (when no
        EnsureLogicalSwitch remakes the VLAN); ``leave``: the VLAN a rebind leaves; ``join``: the
        port is not a member yet."""
        return {"network": self.desired.logical_switches[op.vni].network, "interface": _interface(op.port),
                "vlan_id": op.vni in self.actual.logical_switches and op.vlan not in self.had.get(op.vni, ())
                and op.vni not in self.ensured and self.first_bind[op.vlan] == i,
                "leave": self.left(op.port, op.vlan), "join": (op.port, op.vni) not in self.member}

    def ensure(self, op: EnsureLogicalSwitch) -> dict[str, Any]:
        """A VLAN made, or remade under a new name (Junos references VLANs by name): ``old`` (the
        network it had), ``vlan`` (its VLAN ID), ``peers`` (the old flood list, carried over when no
        SetFloodList follows) and ``moved`` (the ports that stay in it, whose membership follows)."""
        old = self.actual.logical_switches.get(op.vni)
        moved = [_interface(port) for port in self.ports_had.get(op.vni, ()) if (port, op.vni) in self.stays] \
            if old is not None else []
        return {"old": None if old is None else old.network, "vlan": self.vlan_id.get(op.vni),
                "peers": sorted(old.flood) if old is not None and op.vni not in self.flooded else [],
                "moved": moved}

    def flood(self, op: SetFloodList) -> dict[str, Any]:
        """The delta on a VLAN that keeps its name, the whole list on one made anew."""
        ls, old = self.desired.logical_switches[op.vni], self.actual.logical_switches.get(op.vni)
        have = old.flood if old is not None and old.network == ls.network else frozenset()
        return {"network": ls.network, **flood_delta(have, op)}


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """What each operation's template prints (``_Batch``): besides, ``network`` (the VLAN's name
    is ``silonet-<network>``) and ``interface`` (the port's device name)."""
    b = _Batch(ops, actual, desired)
    each = per_operation(ops, {
        Bind: b.bind, EnsureLogicalSwitch: lambda op, _i: b.ensure(op), SetFloodList: lambda op, _i: b.flood(op),
        Unbind: lambda op, _i: {"interface": _interface(op.port), "leave": b.left(op.port, op.vlan)}})
    return Prepared({}, each)


DIALECT = Dialect(
    name="junos",
    platform="Juniper Junos (ELS vlans with VXLAN, static remote VTEPs, configure private)",
    verified="documentation",
    scope="switch",
    style="shell",
    show=(SHOW_VLANS, SHOW_INTERFACES),
    setup=(PAGER_OFF,),
    parse=parse,
    failures=("error:", "syntax error", "unknown command"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+[>#] ?$",
    remote_macs=False,
    limits=tagged_only,
    check=checks(untagged_refused("junos"), one_to_one("junos")),
    prepare=prepare,
    notes="VLAN->VNI per switch; ownership is the VLAN name silonet-<network>; a binding is unit 0 membership; "
          "documentation only",
)
