"""Switch-scoped platforms: what one switch that maps VLAN->VNI per switch can hold (the
``check`` rules) and, for the Linux-shell dialects (``sonic``, ``cumulus``), what a batch does
to each switch-wide VLAN (``Plan``, which their ``prepare`` hands to the templates).

On such a switch a logical switch exists only as *a VLAN mapped to its VNI*, and a binding
(port, VLAN) is that port's membership in the VLAN. One VLAN carries one VNI and one VNI one
VLAN (SONiC: "VNI Id already mapped"; Cumulus: one VNI per VLAN of the single VLAN-aware
bridge; EOS, Junos, ALAXALA alike): ``one_to_one`` refuses the bindings that would break it.

silonet's operations are per VNI and per (port, VLAN); the device's objects are per VLAN.
``Plan`` works out, once per batch, what each VLAN must go through (created, mapped, remapped,
deleted) and which operation of the batch renders that step, so every step comes exactly
once, in an order the device accepts:

* a VLAN that gets a (new) VNI is mapped by ``EnsureLogicalSwitch`` of that VNI when the batch
  has one, else by the first ``Bind`` that uses the VLAN (tagged, or untagged in the VNI's
  VLAN); old mappings of that VLAN and of that VNI are deleted first (SONiC refuses a second
  mapping of either);
* a VLAN that no binding uses any more is deleted by ``RemoveLogicalSwitch`` of its VNI when the
  VNI goes, else by the last operation that takes a member out of it.

Untagged (VLAN 0) bindings: a switch-wide VLAN must carry the frames, and silonet does not
allocate VLAN IDs, so a port's untagged frames go to the VLAN that already carries the VNI
tagged on this switch (the port becomes an untagged member of it). A VNI bound only untagged
on a switch is refused (``carried_untagged``); when the VNI moves to another VLAN, its
untagged ports move with it (rendered where the new VLAN is mapped). A port that turns from a
tagged into the untagged member of one VLAN (or back) in one batch is changed by its ``Bind``;
the ``Unbind`` of the old mode then leaves the membership alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from silonet.drivers.ssh.dialect import Check, Refusals, Target
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


# ------------------------------------------------------------------ checks
def _listed(numbers: set[int]) -> str:
    return ", ".join(map(str, sorted(numbers)))


def one_to_one(dialect: str) -> Check:
    """One VLAN, one VNI on the whole switch. Tagged bindings are taken by VLAN, then VNI, then
    port: one that would map its VLAN to a second VNI, or its VNI to a second VLAN, is refused
    (a VNI keeps its lowest VLAN, a VLAN its lowest VNI)."""

    def check(state: GatewayState) -> Refusals:
        vnis: dict[int, set[int]] = {}
        vlans: dict[int, set[int]] = {}
        for (_port, vlan), vni in state.bindings.items():
            if vlan:
                vnis.setdefault(vlan, set()).add(vni)
                vlans.setdefault(vni, set()).add(vlan)
        out: Refusals = {}
        vni_on: dict[int, int] = {}
        vlan_of: dict[int, int] = {}
        for (port, vlan), vni in sorted(state.bindings.items(), key=lambda b: (b[0][1], b[1], b[0][0])):
            if not vlan:
                continue
            if (held := vni_on.get(vlan, vni)) != vni:
                out[(port, vlan)] = (f"VLAN {vlan} would map to VNIs {_listed(vnis[vlan])} on one switch, which the "
                                     f"{dialect} dialect maps VLAN->VNI per switch; VNI {held} keeps it here")
            elif (on := vlan_of.get(vni, vlan)) != vlan:
                out[(port, vlan)] = (f"VNI {vni} would need VLANs {_listed(vlans[vni])} on one switch, which the "
                                     f"{dialect} dialect maps one VLAN to one VNI; VLAN {on} carries it here (use one "
                                     "VLAN ID for the network on this gateway)")
            else:
                vni_on[vlan], vlan_of[vni] = vni, vlan
        return out

    return check


def reserved_vlans(state: GatewayState) -> Refusals:
    """VLANs the switch keeps for itself (``RESERVED_VLANS``) carry no VNI."""
    return {(port, vlan): f"{RESERVED_VLANS[vlan]}; silonet does not map it to a VNI (use another VLAN ID)"
            for (port, vlan), _vni in state.bindings.items() if vlan in RESERVED_VLANS}


def carried_untagged(state: GatewayState) -> Refusals:
    """An untagged (VLAN 0) binding needs a tagged binding of its VNI on this switch (whose VLAN
    carries the frames), and a port is not both a tagged and the untagged member of that VLAN."""
    carrier = vni_vlans(state)
    out: Refusals = {}
    for (port, vlan), vni in state.bindings.items():
        if vlan:
            continue
        if (on := carrier.get(vni)) is None:
            out[(port, vlan)] = (f"untagged (VLAN 0) for VNI {vni}: a switch-wide VLAN must carry untagged frames and "
                                 "no tagged binding of that VNI on this gateway names one")
        elif (port, on) in state.bindings:
            out[(port, vlan)] = f"port {port} cannot be both a tagged and the untagged member of VLAN {on}"
    return out


# ------------------------------------------------------------------ the plan of a batch
class VlanMap(NamedTuple):
    """A VLAN->VNI mapping an operation adds: with the network's name (the switches that keep
    it), and the flood list when this operation writes it whole (no SetFloodList of the VNI)."""

    vlan: int
    vni: int
    network: str
    flood: tuple[str, ...] = ()


class Move(NamedTuple):
    """An untagged port following its VNI from VLAN ``old`` to ``new``: ``leave``, whether this
    operation takes it out of ``old`` (not when its tagged Bind in ``old`` came first and did);
    ``tagged``, whether it is a tagged member of ``new`` now."""

    port: str
    old: int
    new: int
    leave: bool
    tagged: bool


@dataclass
class VlanWork:
    """VLAN-level steps one operation renders: ``unmap``, ``create``, ``map`` and ``move`` before
    its own lines; ``unmap_after``, ``delete`` and ``leave`` after them (a VLAN goes once its
    members left)."""

    unmap: list[tuple[int, int]] = field(default_factory=list)  # (VLAN, VNI) mappings to delete
    create: list[int] = field(default_factory=list)  # VLANs to create
    map: list[VlanMap] = field(default_factory=list)  # mappings to add
    move: list[Move] = field(default_factory=list)
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
        self._check(ops)
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
            ls = desired.logical_switches[vni]
            steps.append((at, "map", VlanMap(vlan, vni, ls.network, () if vni in flooded else tuple(sorted(ls.flood)))))
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
            if vlan == 0 and desired.bindings.get((port, 0)) == vni and old is not None and new is not None \
                    and old != new:
                at = ensure_at.get(vni, first_bind.get(new))  # where ``new`` gets mapped
                if at is not None:
                    steps.append((at, "move", Move(port, old, new, bind_at.get((port, old), at) >= at,
                                                   (port, new) in actual.bindings)))
        for port, at in last_of_port.items():
            if port not in {p for p, _v in desired.bindings} and port in {p for p, _v in actual.bindings}:
                self._at(at).leave.append(port)
        unmapped: set[tuple[int, int]] = set()
        for at, kind, step in sorted(steps, key=lambda s: s[0]):
            work = self._at(at)
            if kind in ("unmap", "unmap_after"):
                if step not in unmapped:
                    unmapped.add(step)
                    getattr(work, kind).append(step)
            elif kind == "create":
                work.create.append(step[0])
            elif kind == "delete":
                work.delete.append(step[0])
            else:  # map, move
                getattr(work, kind).append(step)

    def _check(self, ops: list[Operation]) -> None:
        """What no parser reads and no check lets through, refused before a line exists: an
        untagged port whose VNI has no tagged binding to name its VLAN."""
        for op in ops:
            if isinstance(op, Unbind | Bind) and op.vlan == 0 and (vni := self.actual.bindings.get((op.port, 0))) \
                    is not None and self.vlan_before.get(vni) is None:
                raise ValueError(f"port {op.port} is untagged for VNI {vni} but no tagged binding names its VLAN")

    def _at(self, index: int) -> VlanWork:
        return self._work.setdefault(index, VlanWork())

    def work(self, index: int) -> VlanWork:
        """The VLAN-level steps the batch's ``index``-th operation renders (empty for most)."""
        return self._work.get(index, VlanWork())

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


# ------------------------------------------------------------------ reading
def settle_read(gw: Target, ports: set[str] | frozenset[str], untagged: dict[str, int], vlan_vni: dict[int, int],
                foreign_vlan: dict[int, str], bindings: dict[tuple[str, int], int],
                foreign_bindings: dict[tuple[str, int], str], faults: dict[str, list[str]],
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
