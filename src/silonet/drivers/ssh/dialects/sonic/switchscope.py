"""Planning shared by the switch-scoped Linux-shell dialects (``sonic``, ``cumulus``).

On a switch that maps VLAN->VNI per switch, a logical switch exists only as *a VLAN mapped
to its VNI*, and a binding (port, VLAN) is that port's membership in the VLAN. Both platforms
also allow one VLAN per VNI (SONiC: "VNI Id already mapped"; Cumulus: one VNI per VLAN of the
single VLAN-aware bridge), so on these dialects the plan keeps VLAN <-> VNI one to one.

silonet's operations are per VNI and per (port, VLAN); the device's objects are per VLAN.
``Plan`` works out, once per batch, what each VLAN must go through (created, mapped, remapped,
deleted) and which operation of the batch renders that step, so the templates stay small and
every step comes exactly once, in an order the device accepts:

* a VLAN that gets a (new) VNI is mapped by ``EnsureLogicalSwitch`` of that VNI when the batch
  has one, else by the first ``Bind`` that uses the VLAN (tagged, or untagged in the VNI's
  VLAN); old mappings of that VLAN and of that VNI are deleted first (SONiC refuses a second
  mapping of either);
* a VLAN that no binding uses any more is deleted by ``RemoveLogicalSwitch`` of its VNI when the
  VNI goes, else by the last operation that takes a member out of it.

Untagged (VLAN 0) bindings: a switch-wide VLAN must carry the frames, and silonet does not
allocate VLAN IDs, so a port's untagged frames go to the VLAN that already carries the VNI
tagged on this switch (the port becomes an untagged member of it). A VNI bound only untagged
on a switch is refused; when the VNI moves to another VLAN, its untagged ports move with it
(rendered where the new VLAN is mapped). A port that turns from a tagged into the untagged member of one VLAN
(or back) in one batch is changed by its ``Bind``; the ``Unbind`` of the old mode then leaves
the membership alone. ``check`` lists every such refusal; ``preflight`` raises it before a
single line reaches the device.

This module would sit better next to ``dialect.py`` (the framework); it lives here because the
dialect helpers were asked not to touch the framework.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jinja2

from silonet.drivers.ssh.dialect import Dialect, Target
from silonet.errors import DeviceError
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.state import GatewayState

RESERVED_VLANS = {1: "VLAN 1 is the switch's default VLAN"}


def vlan_vnis(state: GatewayState) -> dict[int, int]:
    """VLAN -> VNI as the tagged bindings of ``state`` put it on a switch-scoped device."""
    out: dict[int, int] = {}
    for (_port, vlan), vni in sorted(state.bindings.items()):
        if vlan:
            out.setdefault(vlan, vni)
    return out


def vni_vlans(state: GatewayState) -> dict[int, int]:
    """VNI -> the (lowest) VLAN that carries it tagged."""
    out: dict[int, int] = {}
    for vlan, vni in sorted(vlan_vnis(state).items()):
        out.setdefault(vni, vlan)
    return out


def check(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> list[str]:
    """Why this batch cannot be rendered for a switch-scoped device (empty: it can)."""
    problems: list[str] = []
    by_vlan: dict[int, set[int]] = {}
    by_vni: dict[int, set[int]] = {}
    for (_port, vlan), vni in desired.bindings.items():
        if vlan:
            by_vlan.setdefault(vlan, set()).add(vni)
            by_vni.setdefault(vni, set()).add(vlan)
    for vlan in sorted(by_vlan):
        if vlan in RESERVED_VLANS:
            problems.append(f"{RESERVED_VLANS[vlan]}; silonet does not map it to a VNI (use another VLAN ID)")
        if len(by_vlan[vlan]) > 1:
            problems.append(f"VLAN {vlan} would map to VNIs {', '.join(map(str, sorted(by_vlan[vlan])))} on one "
                            "switch, which maps VLAN->VNI per switch")
    for vni in sorted(by_vni):
        if len(by_vni[vni]) > 1:
            problems.append(f"VNI {vni} would need VLANs {', '.join(map(str, sorted(by_vni[vni])))} on one switch, "
                            "which maps one VLAN to one VNI; use one VLAN ID for the network on this gateway")
    before, after = vni_vlans(actual), vni_vlans(desired)
    for (port, vlan), vni in sorted(desired.bindings.items()):
        if vlan:
            continue
        carrier = after.get(vni)
        if carrier is None:
            problems.append(f"port {port} untagged (VLAN 0) for VNI {vni}: a switch-wide VLAN must carry untagged "
                            "frames and no tagged binding of that VNI on this gateway names one")
            continue
        if desired.bindings.get((port, carrier)) is not None:
            problems.append(f"port {port} cannot be both a tagged and the untagged member of VLAN {carrier}")
    for op in ops:
        port_vni = actual.bindings.get((op.port, 0)) if isinstance(op, Unbind | Bind) and op.vlan == 0 else None
        if port_vni is not None and before.get(port_vni) is None:
            problems.append(f"port {op.port} is untagged for VNI {port_vni} but no tagged binding names its VLAN")
    return problems


def preflight(gw: Target, ops: list[Operation], actual: GatewayState, desired: GatewayState) -> str:
    """For ``begin.j2``: raise the refusals of ``check`` before anything is sent; renders nothing."""
    if problems := check(ops, actual, desired):
        raise DeviceError(gateway=gw.name, reason="; ".join(problems))
    return ""


@dataclass
class VlanWork:
    """VLAN-level steps one operation renders: ``unmap``, ``create``, ``map`` before its own lines;
    ``unmap_after`` and ``delete`` after them (a VLAN goes once its members left)."""

    unmap: list[tuple[int, int]] = field(default_factory=list)  # (VLAN, VNI) mappings to delete
    create: list[int] = field(default_factory=list)  # VLANs to create
    map: list[tuple[int, int]] = field(default_factory=list)  # (VLAN, VNI) mappings to add
    her: list[int] = field(default_factory=list)  # VNIs of ``map`` whose whole flood list this op writes
    # untagged ports following their VNI: (port, old VLAN, new VLAN, whether this op takes the port out of the old
    # VLAN; not when the port's tagged Bind in the old VLAN came first and already did)
    move: list[tuple[str, int, int, bool]] = field(default_factory=list)
    unmap_after: list[tuple[int, int]] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)  # VLANs to delete
    leave: list[str] = field(default_factory=list)  # ports left without any binding

    def __bool__(self) -> bool:
        return any((self.unmap, self.create, self.map, self.move, self.unmap_after, self.delete, self.leave))


class Plan:
    """What a batch does to each switch-wide VLAN, and which of its operations renders it."""

    def __init__(self, ops: list[Operation], actual: GatewayState, desired: GatewayState) -> None:
        self.ops, self.actual, self.desired = ops, actual, desired
        self.vlan_before, self.vlan_after = vni_vlans(actual), vni_vlans(desired)  # VNI -> VLAN
        before, after = vlan_vnis(actual), vlan_vnis(desired)  # VLAN -> VNI
        self.renames = {vni for vni, ls in desired.logical_switches.items()
                        if vni in actual.logical_switches and actual.logical_switches[vni].network != ls.network}
        self._work: dict[int, VlanWork] = {}
        self._index = {op: i for i, op in enumerate(ops)}
        first_bind: dict[int, int] = {}
        ensure_at: dict[int, int] = {}
        remove_at: dict[int, int] = {}
        flooded = {op.vni for op in ops if isinstance(op, SetFloodList)}
        leaves_vlan: dict[int, int] = {}  # VLAN -> index of the last op that takes a member out of it
        bind_at = {(op.port, op.vlan): i for i, op in enumerate(ops) if isinstance(op, Bind)}
        last_of_port: dict[str, int] = {}
        for i, op in enumerate(ops):
            if isinstance(op, EnsureLogicalSwitch):
                ensure_at[op.vni] = i
            elif isinstance(op, RemoveLogicalSwitch):
                remove_at[op.vni] = i
            elif isinstance(op, Bind):
                if (uses := op.vlan or self.vlan_after.get(op.vni)) is not None:
                    first_bind.setdefault(uses, i)  # an untagged port joins the VNI's VLAN
                if not op.vlan and (old := self.untagged_before(op.port)) is not None and old != uses:
                    leaves_vlan[old] = i
            elif isinstance(op, Unbind):
                last_of_port[op.port] = i
                vlan = op.vlan or self.untagged_before(op.port)
                if vlan is not None:
                    leaves_vlan[vlan] = i
        steps: list[tuple[int, str, tuple]] = []
        for vlan, vni in sorted(after.items()):
            if before.get(vlan) == vni:
                continue
            at = ensure_at.get(vni, first_bind.get(vlan))
            if at is None:  # cannot happen for a diff; keep the batch valid anyway
                continue
            if vlan in before:
                steps.append((at, "unmap", (vlan, before[vlan])))
            if (moved := self.vlan_before.get(vni)) is not None and moved != vlan:
                steps.append((at, "unmap", (moved, vni)))
            if vlan not in before:
                steps.append((at, "create", (vlan, vni)))
            steps.append((at, "map", (vlan, vni)))
            if vni not in flooded:
                steps.append((at, "her", (vlan, vni)))
        for vlan, vni in sorted(before.items()):
            if vlan in after:
                continue
            at = remove_at.get(vni, leaves_vlan.get(vlan))
            if at is None:
                continue
            steps.append((at, "unmap_after", (vlan, vni)))
            steps.append((at, "delete", (vlan, vni)))
        for (port, vlan), vni in sorted(actual.bindings.items()):  # untagged ports follow their VNI to a new VLAN
            old, new = self.vlan_before.get(vni), self.vlan_after.get(vni)
            if vlan == 0 and desired.bindings.get((port, 0)) == vni and None not in (old, new) and old != new:
                at = ensure_at.get(vni, first_bind.get(new))  # where ``new`` gets mapped
                if at is not None:
                    steps.append((at, "move", (port, old, new, bind_at.get((port, old), at) >= at)))
        for port, at in last_of_port.items():
            if port not in {p for p, _v in desired.bindings} and port in {p for p, _v in actual.bindings}:
                self._at(at).leave.append(port)
        unmapped: set[tuple[int, int]] = set()
        for at, kind, step in sorted(steps, key=lambda s: s[0]):
            work = self._at(at)
            if kind == "move":
                work.move.append(step)
                continue
            vlan, vni = step
            if kind in ("unmap", "unmap_after"):
                if (vlan, vni) not in unmapped:
                    unmapped.add((vlan, vni))
                    getattr(work, kind).append((vlan, vni))
            elif kind == "create":
                work.create.append(vlan)
            elif kind == "map":
                work.map.append((vlan, vni))
            elif kind == "her":
                work.her.append(vni)
            else:
                work.delete.append(vlan)

    def _at(self, index: int) -> VlanWork:
        return self._work.setdefault(index, VlanWork())

    def work(self, op: Operation) -> VlanWork:
        """The VLAN-level steps ``op`` renders (empty for most operations)."""
        return self._work.get(self._index[op], VlanWork())

    def untagged_before(self, port: str) -> int | None:
        """The VLAN that carries ``port``'s untagged frames now, if it has an untagged binding."""
        vni = self.actual.bindings.get((port, 0))
        return None if vni is None else self.vlan_before.get(vni)

    def untagged_after(self, port: str) -> int | None:
        """The VLAN that will carry ``port``'s untagged frames, if it keeps or gets an untagged binding."""
        vni = self.desired.bindings.get((port, 0))
        return None if vni is None else self.vlan_after.get(vni)

    @property
    def members(self) -> bool:
        return any(isinstance(op, Bind | Unbind) for op in self.ops)

    @property
    def changes(self) -> bool:
        """Whether the batch changes VLANs, mappings or members."""
        return self.members or bool(self._work)

    @property
    def touches(self) -> bool:
        """Whether the batch changes anything but flood lists (``changes`` or a network name)."""
        return self.changes or bool(self.renames & set(self.vlan_after))

    @property
    def maps(self) -> bool:
        """Whether any step adds or deletes a VLAN->VNI mapping."""
        return any(w.unmap or w.map or w.unmap_after for w in self._work.values())

    @property
    def adds(self) -> bool:
        """Whether any step adds a VLAN->VNI mapping (which needs a VTEP)."""
        return any(w.map for w in self._work.values())

    def names(self, state: GatewayState) -> dict[int, str]:
        """VNI -> network name of the logical switches ``state`` holds on this switch (those with a VLAN)."""
        vlans = vni_vlans(state)
        return {vni: ls.network for vni, ls in sorted(state.logical_switches.items()) if vni in vlans}


_PLANS: dict[int, tuple[list[Operation], GatewayState, GatewayState, Plan]] = {}


def plan(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Plan:
    """One ``Plan`` per rendered batch: every template of the batch asks with the same objects."""
    cached = _PLANS.get(id(ops))
    if cached is not None and cached[0] is ops and cached[1] is actual and cached[2] is desired:
        return cached[3]
    made = Plan(ops, actual, desired)
    _PLANS.clear()
    _PLANS[id(ops)] = (ops, actual, desired, made)
    return made


def settle_read(gw: Target, ports: set[str] | frozenset[str], untagged: dict[str, int], vlan_vni: dict[int, int],
                foreign_vlan: dict[int, str], bindings: dict[tuple[str, int], int],
                foreign_bindings: dict[tuple[str, str | int], str], faults: dict[str, list[str]],
                vlan_label: Callable[[int], str]) -> None:
    """What both per-switch parsers conclude once they read the switch: an untagged member of a
    silonet VLAN is silonet's binding (VLAN 0) only while the VLAN has a tagged member; a
    foreign VLAN ID is taken on every managed port, because VLAN IDs are switch-wide."""
    tagged_vnis = set(bindings.values())
    for port, vid in sorted(untagged.items()):
        if vlan_vni[vid] in tagged_vnis:
            bindings[(port, 0)] = vlan_vni[vid]
        else:
            foreign_bindings[(port, 0)] = f"{vlan_label(vid)} untagged"
            faults.setdefault(f"port {port}", []).append(
                f"untagged member of silonet's {vlan_label(vid)}, which has no tagged member: remove it by hand")
    for vid, label in sorted(foreign_vlan.items()):
        for port in gw.ports:
            if port in ports or not ports:
                foreign_bindings.setdefault((port, vid), label)


def to_json(mapping: Mapping[int, str]) -> str:
    return json.dumps({str(k): v for k, v in sorted(mapping.items())}, sort_keys=True)


TEMPLATE_HELPERS: dict[str, Callable[..., Any]] = {"plan": plan, "preflight": preflight, "to_json": to_json}


@dataclass(frozen=True)
class SwitchScopedDialect(Dialect):
    """A ``Dialect`` whose templates may call ``plan``, ``preflight`` and ``to_json``.

    The framework gives templates data only; VLAN planning is easier to get right (and to
    test) in Python than in Jinja, so these dialects add three globals to their environment."""

    @cached_property
    def env(self) -> jinja2.Environment:
        env = super().env
        env.globals.update(TEMPLATE_HELPERS)
        return env
