"""``eos``: Arista EOS, through its interactive CLI (shell style) inside one configure session.

Verified only against documentation and public code, never against a switch (``verified``
says so). What was relied on, per fact:

- Session framing ``configure session <name>`` ... ``commit`` / ``abort``: Arista EOS User
  Manual, "Configure Session" (arista.com/en/um-eos/eos-configure-session); prompt shape
  ``host(config-s-<first 6 chars of name>)#`` from a public walkthrough
  (saidvandeklundert.net, "arista_configure_sessions").
- ``interface Vxlan1``, ``vxlan vlan <V> vni <N>``, ``no vxlan vlan <V> vni``, ``vxlan vlan
  <V> flood vtep add|remove <ip>``: Arista's own eAPI clients (arista-eosplus/pyeapi
  test/unit/test_api_interfaces.py; goeapi system tests reading back ``vxlan vlan 10 flood
  vtep 198.18.0.11`` from running-config), netlab's EOS VXLAN template (ipspace/netlab
  netsim/ansible/templates/vxlan/eos.j2), EOS User Manual "VXLAN Configuration".
- ``vlan <V>`` / ``name <text>`` / ``no vlan <V>``, trunk ``switchport trunk allowed vlan
  add|remove``: EOS User Manual "Virtual LANs (VLANs)" and public EOS runbooks.
- Read back, as JSON: ``show interfaces Vxlan1 | json`` (keys ``interfaces.Vxlan1.vlanToVniMap``
  and ``vlanToVtepList``: pyeapi test/fixtures/vxlan.json, aristanetworks/anta unit data);
  ``show vlan | json`` (``vlans.<id>.name``: pyeapi test/fixtures/vlan_show.json);
  ``show interfaces switchport | json`` (``switchports.<port>.switchportInfo.mode`` and
  ``trunkAllowedVlans`` = ``ALL`` | ``NONE`` | ranges: only third-party eAPI models and scripts).
  The inner shape of ``vlanToVtepList`` entries (``{"remoteVtepAddr": [...]}``) comes from a
  third-party model only, so the parser also accepts a bare list.
- Failure strings ``% Invalid input`` (seen in EOS transcripts), ``% Incomplete command``,
  ``% Ambiguous command``, ``% Error``: the usual EOS CLI answers, not checked one by one.
- Not verified at all: the 32-character limit on VLAN names (the templates refuse longer
  ``silonet-<network>`` names), and that ``commit``/``abort`` are accepted from inside an
  interface or VLAN submode of the session (they are typed there).

Model. EOS maps VLAN->VNI per switch (``scope="switch"``): one VLAN ID is one VNI on the
whole switch. A logical switch is a *VLAN object*: ``vlan V`` named ``silonet-<network>`` (the
ownership marker), ``vxlan vlan V vni N`` and ``vxlan vlan V flood vtep`` on Vxlan1. A binding
(port, V) is trunk membership: the port trunks V (``switchport trunk allowed vlan``; a trunk
allowing ``ALL`` trunks every VLAN). The parser reports mappings whose VLAN is named
``silonet-*`` as owned, and every other VLAN that exists (or is mapped) as foreign, on every
port silonet manages: on a per-switch platform silonet must not rename, map or delete a VLAN
ID someone else uses. An owned VLAN object that no managed port trunks is reported as a
binding on the pseudo-port ``Vxlan1`` so the plan removes (or reuses) it instead of leaking.
Operations are per VNI and per (port, VLAN), but the device object is the VLAN, so
``prepare`` derives it from ``actual``/``desired``: a VNI's VLAN is the one its bindings use;
the first bind of a VLAN new to its VNI makes the VLAN object when no EnsureLogicalSwitch
does; ``begin.j2`` unmaps every VLAN the batch hands to another VNI right after opening the
session (so swaps never find a VNI mapped twice); the last unbind of a VLAN no longer wanted
removes its object when the VNI stays, ``remove_logical_switch.j2`` when the VNI goes.

What one switch cannot hold is refused by ``check``, binding by binding (each fails its
attachment alone): untagged VLAN 0, one VNI on two VLANs or one VLAN for two VNIs, a VLAN
name over 32 characters. ``terminal length 0`` is session set-up (the pty would page long
output); show answers are cut from the first ``{`` because shell-style reads keep the trailing
prompt; inventory port names spell ``/`` as ``_`` (the model forbids ``/``: ``Ethernet3_1`` is
``Ethernet3/1``).
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
    all_of,
    checks,
    names_within,
    per_operation,
    tagged_only,
    untagged_refused,
    vlan_name_within,
)
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "terminal length 0"
SHOW_VXLAN = "show interfaces Vxlan1 | json"
SHOW_VLAN = "show vlan | json"
SHOW_SWITCHPORT = "show interfaces switchport | json"
MARK = "silonet-"
VXLAN_IF = "Vxlan1"  # also the pseudo-port of owned VLAN objects no managed port trunks
ALL_VLANS = frozenset(range(1, 4095))


def _json(text: str) -> dict[str, Any]:
    """The JSON object in a shell answer (from its first ``{``; the prompt after it is ignored)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in {text.strip()[:80]!r}")
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    return obj


def vlan_set(spec: str) -> frozenset[int]:
    """``ALL``, ``NONE`` or ``1-99,101,200-210`` -> the VLAN IDs."""
    spec = spec.strip()
    if spec.upper() == "ALL":
        return ALL_VLANS
    if spec.upper() in ("NONE", ""):
        return frozenset()
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def _vteps(entry: Any) -> frozenset[str]:
    if isinstance(entry, dict):
        entry = list(entry.get("remoteVtepAddr") or []) + list(entry.get("remoteVtepAddr6") or [])
    return frozenset(str(ip) for ip in entry or [])


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    vxlan = _json(outputs[SHOW_VXLAN]).get("interfaces", {}).get(VXLAN_IF)
    faults: dict[str, list[str]] = {}
    if vxlan is None:
        faults["switch"] = [f"interface {VXLAN_IF} is not configured"]
        vxlan = {}
    vni_of = {int(v): int(m["vni"]) for v, m in (vxlan.get("vlanToVniMap") or {}).items()
              if isinstance(m, dict) and str(m.get("vni", "")).isdigit()}
    flood_of = {int(v): _vteps(x) for v, x in (vxlan.get("vlanToVtepList") or {}).items()}
    names = {int(v): str(d.get("name", "")) for v, d in _json(outputs[SHOW_VLAN]).get("vlans", {}).items()}

    trunks: dict[str, frozenset[int]] = {}
    not_trunk: dict[str, str] = {}
    for dev, sp in _json(outputs[SHOW_SWITCHPORT]).get("switchports", {}).items():
        info = sp.get("switchportInfo", {})
        if info.get("mode") == "trunk":
            trunks[_port(dev)] = vlan_set(str(info.get("trunkAllowedVlans", "ALL")))
        else:
            not_trunk[_port(dev)] = str(info.get("mode", "unknown"))
    managed = sorted(set(gw.ports) if gw.ports else set(trunks))
    for port in managed:
        if port in not_trunk:
            faults[f"port {port}"] = [f"not a trunk port (mode {not_trunk[port]}): silonet binds VLANs on trunks only"]

    owned = {v: vni for v, vni in vni_of.items() if names.get(v, "").startswith(MARK)}
    switches = {vni: LogicalSwitch(vni, names[v][len(MARK):], flood_of.get(v, frozenset())) for v, vni in owned.items()}
    bindings: dict[tuple[str, int], int] = {}
    for v, vni in owned.items():
        ports = [p for p in managed if v in trunks.get(p, ())]
        for port in ports or [VXLAN_IF]:
            bindings[(port, v)] = vni
    foreign = {v: names.get(v) or f"VLAN{v:04d}" for v in set(names) | set(vni_of)
               if v not in owned and not names.get(v, "").startswith(MARK)}
    foreign_bindings = {(p, v): name for v, name in foreign.items() for p in managed}
    foreign_vnis = {vni: foreign[v] for v, vni in vni_of.items() if v in foreign}
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(frozenset(trunks), dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())))
    return Parsed(state, facts, {}, faults)


# ---------------------------------------------------------------------------- batches
def _interface(port: str) -> str | None:
    """The device's name of an inventory port; None for the pseudo-port ``Vxlan1`` (no trunk)."""
    return None if port == VXLAN_IF else port.replace("_", "/")


def _vlans(state: GatewayState) -> dict[int, set[int]]:
    """VNI -> the VLANs ``state``'s bindings give it."""
    out: dict[int, set[int]] = {}
    for (_port, vlan), vni in state.bindings.items():
        out.setdefault(vni, set()).add(vlan)
    return out


class _Batch:
    """What the operations of one batch print of the VLAN objects (see the module docstring)."""

    def __init__(self, ops: list[Operation], actual: GatewayState, desired: GatewayState) -> None:
        self.actual, self.desired = actual, desired
        self.used = {vlan for (_port, vlan) in desired.bindings}  # VLANs the desired state keeps
        self.had, self.wants = _vlans(actual), _vlans(desired)  # VNI -> VLANs
        self.prev = {vlan: vni for (_port, vlan), vni in actual.bindings.items()}  # VLAN -> VNI now
        self.ensured = {op.vni for op in ops if isinstance(op, EnsureLogicalSwitch)}
        self.flooded = {op.vni for op in ops if isinstance(op, SetFloodList)}
        self.first_bind: dict[int, int] = {}
        self.last_unbind: dict[int, int] = {}
        for i, op in enumerate(ops):
            if isinstance(op, Bind):
                self.first_bind.setdefault(op.vlan, i)
            elif isinstance(op, Unbind):
                self.last_unbind[op.vlan] = i

    def remap(self) -> list[tuple[int, int]]:
        """(VLAN, VNI) mappings ``begin.j2`` deletes: the VLANs the batch hands to another VNI."""
        wanted = {vlan: vni for (_port, vlan), vni in self.desired.bindings.items()}
        out: dict[int, int] = {}
        for (_port, vlan), vni in sorted(self.actual.bindings.items()):
            if wanted.get(vlan, vni) != vni:
                out.setdefault(vlan, vni)
        return list(out.items())

    def unmap(self, vni: int) -> list[int]:
        """The VLANs ``vni`` leaves that no desired binding keeps (their mapping goes)."""
        return sorted(vlan for vlan in self.had.get(vni, ()) if vlan not in self.used)

    def bind(self, op: Bind, i: int) -> dict[str, Any]:
        """The first Bind of a VLAN new to its VNI writes the VLAN object: its name and mapping when
        no EnsureLogicalSwitch of the batch does (``network``, ``unmap``, ``maps``), its flood list
        when no SetFloodList does (``clear``: the VLAN carried another VNI; ``peers``)."""
        out: dict[str, Any] = {"interface": _interface(op.port), "network": None, "vxlan": False, "unmap": [],
                               "maps": False, "clear": False, "peers": []}
        if op.vlan in self.had.get(op.vni, ()) or self.first_bind[op.vlan] != i:
            return out
        ls = self.desired.logical_switches[op.vni]
        ensure, flood = op.vni in self.ensured, op.vni in self.flooded
        return {**out, "network": None if ensure else ls.network, "vxlan": not (ensure and flood),
                "unmap": [] if ensure else self.unmap(op.vni), "maps": not ensure,
                "clear": not flood and op.vlan in self.prev, "peers": [] if flood else sorted(ls.flood)}

    def unbind(self, op: Unbind, i: int) -> dict[str, Any]:
        """The last Unbind of a VLAN no longer wanted removes its object when its VNI stays."""
        vni = self.actual.bindings[(op.port, op.vlan)]
        drop = op.vlan not in self.used and self.last_unbind[op.vlan] == i and vni in self.desired.logical_switches
        return {"interface": _interface(op.port), "drop_vni": vni if drop else None}

    def ensure(self, op: EnsureLogicalSwitch) -> dict[str, Any]:
        """The VNI's VLANs, each with the mappings it replaces (None: mapped already, only renamed)."""
        have = self.had.get(op.vni, set())
        return {"vlans": [(vlan, None if vlan in have else self.unmap(op.vni))
                          for vlan in sorted(self.wants.get(op.vni, ()))]}

    def flood(self, op: SetFloodList) -> dict[str, Any]:
        """Per-VLAN head-end replication on Vxlan1: the delta on an existing VLAN object, the whole
        list on one (re)made in this batch (cleared first if the VLAN carried another VNI)."""
        have = self.had.get(op.vni, set())
        ls = self.actual.logical_switches.get(op.vni)
        old = ls.flood if ls is not None else frozenset()
        steps: list[tuple[str, int, str | None]] = []
        for vlan in sorted(self.wants.get(op.vni, ())):
            if vlan in have:
                steps += [("remove", vlan, ip) for ip in sorted(old - op.flood)]
                steps += [("add", vlan, ip) for ip in sorted(op.flood - old)]
            else:
                steps += [("clear", vlan, None)] if vlan in self.prev else []
                steps += [("add", vlan, ip) for ip in sorted(op.flood)]
        return {"steps": steps}

    def remove(self, op: RemoveLogicalSwitch) -> dict[str, Any]:
        """The VNI's VLAN objects, except a VLAN the desired state hands to another VNI."""
        return {"vlans": self.unmap(op.vni)}


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """What each operation of the batch prints (``_Batch``); ``remap`` for ``begin.j2``."""
    b = _Batch(ops, actual, desired)
    each = per_operation(ops, {
        Bind: b.bind, Unbind: b.unbind, EnsureLogicalSwitch: lambda op, _i: b.ensure(op),
        SetFloodList: lambda op, _i: b.flood(op), RemoveLogicalSwitch: lambda op, _i: b.remove(op)})
    return Prepared({"remap": b.remap()}, each)


DIALECT = Dialect(
    name="eos",
    platform="Arista EOS (VXLAN with static head-end replication, configure session)",
    verified="documentation",
    scope="switch",
    style="shell",
    show=(SHOW_VXLAN, SHOW_VLAN, SHOW_SWITCHPORT),
    setup=(PAGER_OFF,),
    parse=parse,
    failures=("% Invalid input", "% Incomplete command", "% Ambiguous command", "% Error"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+(\([^()\s]*\))?[>#] ?$",
    remote_macs=False,
    limits=all_of(tagged_only, vlan_name_within(32)),
    check=checks(untagged_refused("eos"), names_within(32), one_to_one("eos")),
    prepare=prepare,
    notes="VLAN->VNI per switch; a binding is trunk membership of the mapped VLAN; ownership is the VLAN "
          "name silonet-<network>; documentation only",
)
