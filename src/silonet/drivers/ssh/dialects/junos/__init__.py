"""``junos``: Juniper Junos (QFX/EX with ELS and VXLAN, static remote VTEPs), through its
interactive CLI (shell style) in a private candidate configuration.

Read back from output captured on real switches (tests/drivers/ssh/corpus/junos); written by
documentation and public code, never run against a switch here. What was relied on, per fact:

- Read back: ``show configuration <vlans|interfaces|switch-options> | display set | display
  inheritance no-comments``. ``display set`` prints every statement as one line from the root,
  the same in every release, a deactivated one as a ``deactivate`` line (``read``).
  Captured: vQFX 18.4R1.8, the ADCX course lab's leaf configurations in that form
  (zzj7513/tech-study-notes, Junos-trainings/ADCX/...: one with EVPN-VXLAN, one before it).
  Community tools read these scoped commands the same way (salt, NetBox sync and migration
  scripts in the code corpus); ``display set | display inheritance no-comments`` is seen run on a
  real router (a public IS-IS write-up), and ``display inheritance`` prints what configuration
  groups and interface ranges give a hierarchy (Junos CLI guide, "show | display
  inheritance"). It replaces ``| display json``, of which no capture of these hierarchies was
  found and whose integers changed form in 16.1R4/17.1R1.
- ``show version | display xml`` (asked once per session): ``<software-information>`` with
  ``<product-model>`` and ``<junos-version>``, inside ``<multi-routing-engine-item>`` on a
  virtual chassis; before ``<junos-version>`` existed the version is only in the JUNOS packages'
  ``<comment>``. Captured: EX4200 13.3R2.2 and EX2200-C 11.4R1.6 (Juniper/py-junos-eznc
  tests/unit/facts/rpc-reply). XML, not JSON: every release prints it. No statement silonet
  types changed between the ELS releases that have VXLAN, so ``prepare`` does not branch on it.
- A port silonet binds on must be a trunk: ELS makes a port with ``vlan members`` and no
  ``interface-mode`` an access port (untagged, one VLAN). The ADCX leaf has exactly that
  (``xe-0/0/0 ... vlan members v10``) and the lab's next step sets ``interface-mode trunk`` on it
  (ADCX-leafs-lab2-Part8-VTEP-Trunk-port-config). silonet's first membership on a port sets
  ``interface-mode trunk``; a port someone else set up otherwise (access, routed, a LAG member,
  other units, deactivated) is left out of ``Parsed.facts.ports`` with a fault naming why, so
  its bindings are refused and nothing is typed about it.
- The tunnel source: ``switch-options vtep-source-interface`` and that interface's IPv4 address
  in the interfaces read (the one marked ``primary`` when there are several); without it VXLAN
  cannot work, a fault. Captured: the ADCX leaf (``lo0.0``, 192.168.100.11/32) and the one
  before EVPN (none).
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
  vjunos-switch.j2), which render exactly this hierarchy for static flooding; the captured
  vQFX holds ``vlans v10 vlan-id 10`` / ``vxlan vni 5010`` in that form.
- Failure strings ``error:`` (commit and syntax errors), ``syntax error``, ``unknown command``.
  ``delete`` of a statement that is not there only warns (``warning: statement not found``),
  which is what makes the remove/unbind templates idempotent.
- Not verified: the exact banner/echo of ``configure private`` and ``commit`` on a real box.

Per-switch scope (``scope="switch"``): a VLAN ID is one VLAN (and VNI) on the whole switch.
silonet's VLANs are named ``silonet-<network>`` (the ownership marker) and carry one VLAN ID
and one VNI; a binding (port, V) is ``unit 0`` membership in that VLAN by name (a membership by
VLAN ID, range or ``vlans <name> interface`` reaches it too, and is told as a fault: silonet
cannot take it off). Every other VLAN with a VLAN ID is foreign on every managed port, and its
VNI is a foreign VNI. silonet adds peers to ``switch-options remote-vtep-list`` but never
removes them (that list is shared with whatever else the switch runs). Inventory port names
spell ``/`` as ``_`` (``xe-0_0_1`` is ``xe-0/0/1``); ``set cli screen-length 0`` is session
set-up. What one switch cannot hold (untagged VLAN 0, one VNI on two VLANs or one VLAN for two
VNIs) is refused by ``check``, binding by binding; ``prepare`` works out what each operation's
template prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import (
    Batch,
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
from silonet.drivers.ssh.dialects.junos import read
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.drivers.untrusted import echo
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "set cli screen-length 0"
# ``display inheritance no-comments``: what configuration groups and interface ranges give a
# hierarchy is printed on it, as the switch applies it (a group-built switch reads as it runs)
SHOW_VLANS = "show configuration vlans | display set | display inheritance no-comments"
SHOW_INTERFACES = "show configuration interfaces | display set | display inheritance no-comments"
SHOW_SWITCH_OPTIONS = "show configuration switch-options | display set | display inheritance no-comments"
SHOW_VERSION = "show version | display xml"
MARK = read.MARK


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def _vlan_of(spec: str, owned: Mapping[str, tuple[int, int]]) -> set[int]:
    """The VLAN IDs of silonet's VLANs a membership word reaches other than by its name: a VLAN
    ID, a range or ``all``."""
    ids = {vid for vid, _vni in owned.values()}
    return ids if spec == "all" else read.vlan_ids(spec) & ids


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    """silonet's VLANs (``silonet-<network>`` with a VLAN ID and a VNI) and their unit 0 memberships
    by name; every other VLAN ID and VNI is someone else's; a port silonet must not bind on
    (``read.unusable``) is left out of ``ports`` with a fault saying why; the tunnel source."""
    vlans, vlans_off = read.read_vlans(outputs[SHOW_VLANS])
    interfaces, intf_off = read.read_interfaces(outputs[SHOW_INTERFACES])
    vtep_ip, switch_faults = read.vtep_source(outputs[SHOW_SWITCH_OPTIONS], interfaces)
    by_port = {_port(name): i for name, i in interfaces.items()}
    managed = sorted(set(gw.ports) if gw.ports else {p for p, i in by_port.items() if i.switching})

    owned: dict[str, tuple[int, int]] = {}  # VLAN name -> (VLAN ID, VNI)
    switches: dict[int, LogicalSwitch] = {}
    foreign: dict[int, str] = {}
    foreign_vnis: dict[int, str] = {}
    foreign_flood: set[str] = set()
    faults: dict[str, list[str]] = {}
    if switch_faults:
        faults["switch"] = list(switch_faults)
    for name, vlan in vlans.items():
        if name.startswith(MARK):
            if vlan.vlan_id is not None and vlan.vlan_id.isdigit() and vlan.vni is not None and vlan.vni.isdigit():
                owned[name] = (int(vlan.vlan_id), int(vlan.vni))
                switches[int(vlan.vni)] = LogicalSwitch(int(vlan.vni), name[len(MARK):], frozenset(vlan.flood))
            continue
        for vid in vlan.ids:
            foreign[vid] = name
        if vlan.vni is not None and vlan.vni.isdigit():
            foreign_vnis[int(vlan.vni)] = name
        foreign_flood.update(vlan.flood)
    for path in vlans_off:
        if not path or path[0].startswith(MARK):
            faults.setdefault("switch", []).append(
                f"'vlans {echo(' '.join(path), 120)}' is deactivated: silonet does not activate statements")

    bindings: dict[tuple[str, int], int] = {}
    refused: dict[str, str] = {}  # port -> why silonet must not bind there
    for port in managed:
        intf = by_port.get(port)
        device = _interface(port)
        said: list[str] = []
        if (why := read.unusable(intf, set(owned))) is not None:
            said.append(why)
            refused[port] = why
        off = [p for p in intf_off if p[:1] == [device] and (len(p) == 1 or p[1:3] == ["unit", "0"])]
        if off:
            said.append(f"'interfaces {echo(' '.join(off[0]), 120)}' is deactivated: silonet does not activate "
                        "statements")
            refused.setdefault(port, said[-1])
        for member in intf.members.get("0", []) if intf is not None else []:
            if member in owned:
                vlan_id, vni = owned[member]
                bindings[(port, vlan_id)] = vni
            elif reached := _vlan_of(member, owned):
                said.append(f"a member of VLAN {echo(member, 32)} by number, which reaches silonet's VLAN "
                            f"{', '.join(map(str, sorted(reached)))}: silonet adds and removes its VLANs by name only")
        for name, vlan in vlans.items():
            if name in owned and f"{device}.0" in vlan.interfaces:
                said.append(f"in VLAN {echo(name, 64)} by 'vlans {echo(name, 64)} interface {echo(device, 32)}.0': "
                            "silonet adds and removes its memberships on the interface only")
        for unit in sorted((intf.switching if intf is not None and port not in refused else set()) - {"0"}):
            said.append(f"unit {echo(unit, 16)} switches too; silonet manages unit 0 only")
        if said:
            faults[f"port {port}"] = said
    foreign_bindings = {(p, v): name for v, name in foreign.items() for p in managed}
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    ports = frozenset(set(managed) - set(refused)) if refused else None
    facts = DeviceFacts(ports, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        foreign_flood=frozenset(foreign_flood), unusable=dict(sorted(refused.items())))
    return Parsed(state, facts, {}, faults, vtep_ip=vtep_ip)


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
        self.trunked = {port for port, _vlan in actual.bindings}  # ports silonet holds (made trunks) already
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
        port is not a member yet; ``trunk``: silonet's first membership on the port, which makes it
        a trunk (ELS makes a port with members and no interface-mode an access port, untagged and
        one VLAN only; a port someone else set up otherwise is refused when read, never changed)."""
        join = (op.port, op.vni) not in self.member
        trunk = join and op.port not in self.trunked
        self.trunked.add(op.port)
        return {"network": self.desired.logical_switches[op.vni].network, "interface": _interface(op.port),
                "vlan_id": op.vni in self.actual.logical_switches and op.vlan not in self.had.get(op.vni, ())
                and op.vni not in self.ensured and self.first_bind[op.vlan] == i,
                "leave": self.left(op.port, op.vlan), "join": join, "trunk": trunk}

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


def prepare(batch: Batch) -> Prepared:
    """What each operation's template prints (``_Batch``): besides, ``network`` (the VLAN's name
    is ``silonet-<network>``) and ``interface`` (the port's device name)."""
    ops, actual, desired = batch.ops, batch.actual, batch.desired
    b = _Batch(ops, actual, desired)
    each = per_operation(ops, {
        Bind: b.bind, EnsureLogicalSwitch: lambda op, _i: b.ensure(op), SetFloodList: lambda op, _i: b.flood(op),
        Unbind: lambda op, _i: {"interface": _interface(op.port), "leave": b.left(op.port, op.vlan)}})
    return Prepared({}, each)


DIALECT = Dialect(
    name="junos",
    platform="Juniper Junos (ELS vlans with VXLAN, static remote VTEPs, configure private)",
    verified="captured output: vQFX 18.4R1.8; version command EX4200 13.3R2, EX2200-C 11.4R1 (Juniper ADCX lab "
             "notes, py-junos-eznc); commands from documentation",
    scope="switch",
    style="shell",
    show=(SHOW_VLANS, SHOW_INTERFACES, SHOW_SWITCH_OPTIONS),
    version_show=SHOW_VERSION,
    version=read.version,
    setup=(PAGER_OFF,),
    parse=parse,
    failures=("error:", "syntax error", "unknown command"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+[>#] ?$",
    remote_macs=False,
    limits=tagged_only,
    check=checks(untagged_refused("junos"), one_to_one("junos")),
    prepare=prepare,
    # README "Fencing"
    unfenced=("configure private refuses a commit only when another commit came after the session opened, not "
              "one that came before a stalled replica opened it; configure exclusive with a marker read inside "
              "the lock would fence, but no Junos device here proves it"),
    notes="VLAN->VNI per switch; ownership is the VLAN name silonet-<network>; a binding is unit 0 membership "
          "on a trunk (silonet's first membership makes a port one; a port set up otherwise is refused); the VTEP "
          "source is read",
)
