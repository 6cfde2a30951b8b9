"""``nxos``: Cisco NX-OS (Nexus 9000), through its interactive CLI (shell style).

Verified only against documentation and public code, never against a switch. What was
relied on, per fact:

- ``feature nv overlay`` / ``feature vn-segment-vlan-based`` are assumed configured by the
  operator, with ``interface nve1`` (``source-interface``, ``no shutdown``); silonet adds
  ``vlan <T>`` / ``vn-segment <N>`` and, under ``interface nve1``, ``member vni <N>`` /
  ``ingress-replication protocol static`` / ``peer-ip <ip>``: Cisco Nexus 9000 NX-OS VXLAN
  Configuration Guide (static ingress replication), netlab's NX-OS template
  (ipspace/netlab netsim/ansible/templates/vxlan/nxos.j2).
- Port VLAN mapping: ``switchport vlan mapping enable`` (trunk ports only) and ``switchport
  vlan mapping <ingress> <translated>`` with the *translated* VLAN in ``switchport trunk
  allowed vlan``: Cisco Nexus 9000 NX-OS Interfaces Configuration Guide 10.6(x), "Guidelines
  and Limitations for Port VLAN Mapping" (its port-channel example), VXLAN Configuration
  Guide 9.3(x) "Configuring Port VLAN Mapping" ("the ingress VLAN does not need to be
  configured on the switch; the translated VLAN must be"), Cisco's own pyATS test scripts.
- Config is immediate: ``configure terminal`` ... ``end``, then ``copy running-config
  startup-config`` (the same guides' step lists). There is nothing to roll back: a failed
  line leaves the lines before it applied, ``abort.j2`` only leaves configuration mode, and
  the next reconcile pass reads back and repairs (the reconciler is level-triggered).
- Read back: ``show vlan | json`` (``TABLE_vlanbrief.ROW_vlanbrief[]`` with
  ``vlanshowbr-vlanid`` / ``vlanshowbr-vlanname``, values as strings: real output quoted in
  ansible/ansible#29784); ``show nve vni | json`` (``TABLE_nve_vni.ROW_nve_vni`` with ``vni``
  and ``type`` ``"L2 [<vlan>]"``, a single row arriving as an object, not a list: several
  public NX-API scripts); ``show running-config interface`` as text (``| json`` is not
  offered for running-config: ansible/ansible#57484), for the nve1 members and peers and the
  ports' mapping lines.
- Failure strings ``% Invalid command`` (``% Invalid command at '^' marker.`` in the issues
  above), ``% Incomplete command``, ``ERROR:``.
- Not verified: that ``no switchport vlan mapping <v> <t>`` and ``no peer-ip`` are silent when
  the line is absent (idempotent removal is assumed), the 32-character VLAN name limit
  (refused above it), and that a VLAN's ``vn-segment`` may be changed while it is an nve member.

Per-port scope (``scope="port"``). The VLAN ID on a port is only the *ingress* VLAN: each
port maps it to a switch-local *translated* VLAN T, and T carries the VNI. So two interface
groups may use VLAN 300 for different VNIs. T is a pure function of the VNI, so templates and
parser agree without remembering anything:

    T(vni) = XLATE_BASE + vni % XLATE_SPAN      (2000 + vni % 1968: VLANs 2000..3967)

3968..4094 stay free (NX-OS reserves them by default), 1..1999 are the operator's. VNIs
allocated from a contiguous pool never collide (1968 consecutive VNIs get distinct T); of two
desired VNIs with the same T, ``check`` refuses the bindings of the higher one. The operator
must keep 2000..3967 free of other VLANs: the parser reports a foreign VLAN there as a switch
fault (it cannot block the VNIs that would translate onto it: the intent does not know the
device's VLANs). Ownership: VLAN T named ``silonet-<network>``; an nve VNI on any other VLAN is
foreign, and a port mapping onto a foreign VLAN is a foreign binding. Inventory port names
spell ``/`` as ``_`` (``Ethernet1_1`` is ``Ethernet1/1``), and ``terminal length 0`` is
session set-up. ``check`` also refuses untagged VLAN 0, a VLAN name over 32 characters and two
VLANs of one port on one translated VLAN, binding by binding (each fails its attachment
alone); ``prepare`` works out T and what each operation's template prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import (
    Dialect,
    Parsed,
    Prepared,
    Refusals,
    Target,
    all_of,
    checks,
    flood_delta,
    names_within,
    tagged_only,
    untagged_refused,
    vlan_name_within,
)
from silonet.model.inventory import Proposed
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "terminal length 0"
SHOW_VLAN = "show vlan | json"
SHOW_NVE = "show nve vni | json"
SHOW_RUN = "show running-config interface"
MARK = "silonet-"
NVE = "nve1"
XLATE_BASE, XLATE_SPAN = 2000, 1968  # translated VLANs 2000..3967


def translated_vlan(vni: int) -> int:
    return XLATE_BASE + vni % XLATE_SPAN


def _translation(p: Proposed) -> str | None:
    """Two VNIs on one translated VLAN, or one VNI reached from two VLANs of one port: a switch holds
    neither (NX-OS maps one ingress VLAN per translated VLAN on a port)."""
    t = translated_vlan(p.vni)
    for group, vlan, vni in p.held():
        if vni != p.vni and translated_vlan(vni) == t:
            return f"VNIs {vni} and {p.vni} would both translate to VLAN {t} on this switch"
        if vni == p.vni and group == p.group:
            return (f"VLANs {vlan} and {p.vlan} of interface group '{group}' would both map to translated VLAN {t} "
                    "on the same ports")
    return None


def _one_per_translated_vlan(state: GatewayState) -> Refusals:
    """Of two VNIs on one translated VLAN the lower keeps it: the bindings of the other are refused."""
    holder: dict[int, int] = {}
    refused: dict[int, str] = {}
    for vni in sorted(state.logical_switches):
        t = translated_vlan(vni)
        if (other := holder.setdefault(t, vni)) != vni:
            refused[vni] = (f"VNIs {other} and {vni} would both translate to VLAN {t} on this switch; VNI {other} "
                            "keeps it")
    return {key: refused[vni] for key, vni in state.bindings.items() if vni in refused}


def _one_per_port(state: GatewayState) -> Refusals:
    """Of two VLANs of one port on one translated VLAN (one VNI) the lower keeps it."""
    seen: dict[tuple[str, int], int] = {}
    out: Refusals = {}
    for (port, vlan), vni in sorted(state.bindings.items()):
        t = translated_vlan(vni)
        if (other := seen.setdefault((port, t), vlan)) != vlan:
            out[(port, vlan)] = (f"VLANs {other} and {vlan} of port {port} would both map to VLAN {t} (VNI {vni}); "
                                 "NX-OS maps one ingress VLAN per translated VLAN on a port")
    return out


def _json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        return {}  # NX-OS answers nothing at all for an empty table
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    return obj


def _rows(obj: dict[str, Any], table: str, row: str) -> list[dict[str, Any]]:
    """NX-OS JSON tables: a list of rows, or one row as an object, or nothing."""
    rows = (obj.get(table) or {}).get(row) or []
    return [rows] if isinstance(rows, dict) else list(rows)


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def running_interfaces(text: str) -> dict[str, list[str]]:
    """``show running-config interface`` -> interface name -> its (stripped) lines."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        if m := re.match(r"^interface (\S+)\s*$", raw):
            current = out.setdefault(m[1], [])
        elif current is not None and raw[:1].isspace() and raw.strip():
            current.append(raw.strip())
        elif raw.strip() and not raw.startswith("!"):
            current = None
    return out


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    names = {int(r["vlanshowbr-vlanid"]): str(r.get("vlanshowbr-vlanname", ""))
             for r in _rows(_json(outputs[SHOW_VLAN]), "TABLE_vlanbrief", "ROW_vlanbrief")}
    vlan_of: dict[int, int] = {}
    for r in _rows(_json(outputs[SHOW_NVE]), "TABLE_nve_vni", "ROW_nve_vni"):
        if m := re.fullmatch(r"L2 \[(\d+)\]", str(r.get("type", "")).strip()):
            vlan_of[int(r["vni"])] = int(m[1])
    interfaces = running_interfaces(outputs[SHOW_RUN])
    faults: dict[str, list[str]] = {}
    switch_faults: list[str] = []

    peers: dict[int, set[str]] = {}
    member: int | None = None
    for line in interfaces.get(NVE, []):
        if m := re.fullmatch(r"member vni (\d+)", line):
            member = int(m[1])
            peers.setdefault(member, set())
        elif (m := re.fullmatch(r"peer-ip (\S+)", line)) and member is not None:
            peers[member].add(m[1])
    if NVE not in interfaces:
        switch_faults.append(f"interface {NVE} is not configured")

    owned: dict[int, int] = {}  # translated VLAN -> VNI
    switches: dict[int, LogicalSwitch] = {}
    foreign_vnis: dict[int, str] = {}
    for vni, vlan in sorted(vlan_of.items()):
        name = names.get(vlan, "")
        if name.startswith(MARK) and vlan == translated_vlan(vni):
            owned[vlan] = vni
            switches[vni] = LogicalSwitch(vni, name[len(MARK):], frozenset(peers.get(vni, ())))
        else:
            foreign_vnis[vni] = name or f"VLAN{vlan:04d}"
            if name.startswith(MARK):
                switch_faults.append(f"VLAN {vlan} '{name}' carries VNI {vni}, whose silonet VLAN is "
                                     f"{translated_vlan(vni)}: left alone")
    for vlan, name in sorted(names.items()):
        if XLATE_BASE <= vlan < XLATE_BASE + XLATE_SPAN and vlan not in owned and not name.startswith(MARK):
            switch_faults.append(f"VLAN {vlan} '{name}' lies in silonet's translated range "
                                 f"{XLATE_BASE}-{XLATE_BASE + XLATE_SPAN - 1}")
    if switch_faults:
        faults["switch"] = switch_faults

    trunks = {_port(dev) for dev, lines in interfaces.items() if "switchport mode trunk" in lines}
    managed = sorted(set(gw.ports) if gw.ports else trunks)
    bindings: dict[tuple[str, int], int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    for dev, lines in interfaces.items():
        port = _port(dev)
        if port not in managed:
            continue
        if port not in trunks:
            faults[f"port {port}"] = ["not a trunk port: NX-OS port VLAN mapping needs switchport mode trunk"]
        for line in lines:
            if not (m := re.fullmatch(r"switchport vlan mapping (\d+) (\d+)", line)):
                continue
            ingress, xlated = int(m[1]), int(m[2])
            if xlated in owned:
                bindings[(port, ingress)] = owned[xlated]
            else:
                foreign_bindings[(port, ingress)] = names.get(xlated) or f"VLAN{xlated:04d}"
    state = GatewayState(switches, dict(sorted(bindings.items())))
    facts = DeviceFacts(frozenset(trunks), dict(sorted(foreign_bindings.items())), foreign_vnis)
    return Parsed(state, facts, {}, faults)


# ---------------------------------------------------------------------------- batches
def _interface(port: str) -> str:
    return port.replace("_", "/")


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """Per operation, its translated VLAN (``t``) and what its template prints:

    - Bind: ``enable`` (the port's first mapping), ``old`` (the translated VLAN a rebind leaves,
      and ``drop_old``: whether the trunk lets it go), ``unmap`` (ingress VLANs of the port that
      leave ``t``, dropped first: one ingress VLAN per translated VLAN on a port);
    - Unbind: ``drop``, whether the trunk lets ``t`` go (no desired mapping of the port uses it);
    - EnsureLogicalSwitch: ``leaving`` (VNIs that held ``t`` and go in this batch), ``new``;
    - RemoveLogicalSwitch: ``taken`` (a desired VNI took ``t`` over: the VLAN stays);
    - SetFloodList: ``gone`` and ``added`` (the delta against what was read).
    """
    first_bind: dict[str, int] = {}
    for i, op in enumerate(ops):
        if isinstance(op, Bind):
            first_bind.setdefault(op.port, i)
    mapped: dict[str, list[tuple[int, int]]] = {}  # port -> its (ingress VLAN, VNI) now, in order
    for (port, vlan), vni in sorted(actual.bindings.items()):
        mapped.setdefault(port, []).append((vlan, vni))
    uses = {(port, translated_vlan(vni)) for (port, _vlan), vni in desired.bindings.items()}
    taken = {translated_vlan(vni) for vni in desired.logical_switches}
    going: dict[int, list[int]] = {}  # translated VLAN -> VNIs on it that go
    for vni in sorted(actual.logical_switches):
        if vni not in desired.logical_switches:
            going.setdefault(translated_vlan(vni), []).append(vni)
    each: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        if isinstance(op, Bind):
            t = translated_vlan(op.vni)
            before = actual.bindings.get((op.port, op.vlan))
            old = None if before is None else translated_vlan(before)
            each.append({"t": t, "interface": _interface(op.port),
                         "enable": op.port not in mapped and first_bind[op.port] == i,
                         "old": old, "drop_old": old is not None and (op.port, old) not in uses,
                         "unmap": [vlan for vlan, vni in mapped.get(op.port, ()) if vlan != op.vlan
                                   and translated_vlan(vni) == t and desired.bindings.get((op.port, vlan)) != vni]})
        elif isinstance(op, Unbind):
            t = translated_vlan(actual.bindings[(op.port, op.vlan)])
            each.append({"t": t, "interface": _interface(op.port), "drop": (op.port, t) not in uses})
        elif isinstance(op, EnsureLogicalSwitch):
            t = translated_vlan(op.vni)
            each.append({"t": t, "new": op.vni not in actual.logical_switches,
                         "leaving": [other for other in going.get(t, ()) if other != op.vni]})
        elif isinstance(op, RemoveLogicalSwitch):
            t = translated_vlan(op.vni)
            each.append({"t": t, "taken": t in taken})
        elif isinstance(op, SetFloodList):
            old_flood = actual.logical_switches[op.vni].flood if op.vni in actual.logical_switches else frozenset()
            each.append(flood_delta(old_flood, op))
        else:
            each.append({})
    return Prepared({}, each)


DIALECT = Dialect(
    name="nxos",
    platform="Cisco NX-OS (Nexus 9000: vn-segment VLANs, static ingress replication, port VLAN mapping)",
    verified="documentation",
    scope="port",
    style="shell",
    show=(SHOW_VLAN, SHOW_NVE, SHOW_RUN),
    setup=(PAGER_OFF,),
    parse=parse,
    failures=("% Invalid command", "% Incomplete command", "ERROR:"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+(\([^()\s]*\))?[>#] ?$",
    remote_macs=False,
    limits=all_of(tagged_only, vlan_name_within(32), _translation),
    check=checks(untagged_refused("nxos"), names_within(32), _one_per_translated_vlan, _one_per_port),
    prepare=prepare,
    notes=f"per-port VLAN mapping onto translated VLAN {XLATE_BASE} + VNI % {XLATE_SPAN}; ownership is the "
          "translated VLAN's name silonet-<network>; config is immediate; documentation only",
)
