"""What a gateway should hold, as of its last settled reconcile pass, kept so that the next
pass can look only where something changed.

A settled pass leaves the device holding exactly ``effective`` (the desired state less what
the device's facts forbid, each forbidden binding with its reason in ``failures``). Until
the next pass, the desired state changes only at the VNIs the intent changed, and the device
only where its reader says (``Changes``). So the next pass patches those VNIs here (a part
compile), and diffs ``effective`` against the device on those VNIs and keys alone: the same
operations a full diff would find, at the cost of the change instead of the gateway's size.
A full pass rebuilds it (first pass, unknown changes, changed facts, any failure).

What the platform cannot hold (``DeviceFacts.refuse``) may depend on the whole desired state
(one VLAN asked for two VNIs), so with such facts a patch restricts the whole desired state
again, as a full pass would, and names every binding whose outcome changed. A refusal that
drops or restores a logical switch outside the patched VNIs is reached by whole passes only:
the facts that refuse come from the SSH driver, which cannot tell changes (every pass is whole).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from silonet.plan.ownership import DeviceFacts, restrict
from silonet.plan.state import GatewayState, LogicalSwitch, scoped_macs

Key = tuple[str, int]  # (port, VLAN)


@dataclass
class Standing:
    """``effective`` as mutable dicts, with the index a patch needs: the binding keys of each
    VNI in the desired state (a superset of the effective ones: the failures too)."""

    facts: DeviceFacts
    generation: int
    version: tuple[int, int] | None  # the device read the pass ended with (None: unknown)
    switches: dict[int, LogicalSwitch] = field(default_factory=dict)
    bindings: dict[Key, int] = field(default_factory=dict)
    macs: dict[tuple[int, str], str] = field(default_factory=dict)
    failures: dict[Key, str] = field(default_factory=dict)
    keys_of: dict[int, set[Key]] = field(default_factory=dict)  # VNI -> desired binding keys
    macs_of: dict[int, set[tuple[int, str]]] = field(default_factory=dict)  # VNI -> effective MAC keys
    intent: Any = None  # the caller's note of which intent this is (the reconciler: generation, cache load)
    desired: GatewayState | None = None  # kept when the facts refuse: a patch restricts all of it again

    @classmethod
    def build(cls, desired: GatewayState, effective: GatewayState, failures: dict[Key, str], facts: DeviceFacts,
              generation: int, version: tuple[int, int] | None) -> Standing:
        out = cls(facts, generation, version, dict(effective.logical_switches), dict(effective.bindings),
                  dict(effective.remote_macs), dict(failures))
        out._index(desired)
        if facts.refuse is not None:
            out.desired = GatewayState(dict(desired.logical_switches), dict(desired.bindings),
                                       dict(desired.remote_macs))
        return out

    def _index(self, desired: GatewayState) -> None:
        for key, vni in desired.bindings.items():
            self.keys_of.setdefault(vni, set()).add(key)
        for key in desired.remote_macs:
            if key in self.macs:
                self.macs_of.setdefault(key[0], set()).add(key)

    def effective(self) -> GatewayState:
        return GatewayState(dict(self.switches), dict(self.bindings), dict(self.macs))

    def patch(self, vnis: Iterable[int], part: GatewayState) -> set[Key]:
        """Replace what ``vnis`` mean by ``part`` (the desired state of those VNIs, from
        ``Compiler.gateway_part``), restricted by the standing facts. Returns every binding key
        that belonged to those VNIs before or after: where a diff must look."""
        vnis = set(vnis)
        if self.desired is not None:
            return self._restrict_again(vnis, part)
        touched: set[Key] = set()
        for vni in vnis:
            for key in self.keys_of.pop(vni, ()):
                touched.add(key)
                self.bindings.pop(key, None)
                self.failures.pop(key, None)
            for key in self.macs_of.pop(vni, ()):
                self.macs.pop(key, None)
            self.switches.pop(vni, None)
        effective, failures = restrict(part, self.facts)
        self.switches.update(effective.logical_switches)
        self.bindings.update(effective.bindings)
        self.macs.update(effective.remote_macs)
        self.failures.update(failures)
        for key, vni in part.bindings.items():
            self.keys_of.setdefault(vni, set()).add(key)
            touched.add(key)
        for key in effective.remote_macs:
            self.macs_of.setdefault(key[0], set()).add(key)
        return touched

    def _restrict_again(self, vnis: set[int], part: GatewayState) -> set[Key]:
        """``patch`` when the facts refuse: the whole desired state with ``vnis`` replaced by
        ``part``, restricted as a full pass does. Returns the keys of ``vnis`` and every key whose
        effective binding or failure changed."""
        assert self.desired is not None
        old = self.desired
        switches = {v: ls for v, ls in old.logical_switches.items() if v not in vnis}
        bindings = {k: v for k, v in old.bindings.items() if v not in vnis}
        macs = {k: ip for k, ip in old.remote_macs.items() if k[0] not in vnis}
        switches.update(part.logical_switches)
        bindings.update(part.bindings)
        macs.update(part.remote_macs)
        desired = GatewayState(switches, bindings, macs)
        effective, failures = restrict(desired, self.facts)
        touched = self.keys_for(vnis) | set(part.bindings)
        touched |= {k for k in self.bindings.keys() | effective.bindings.keys()
                    if self.bindings.get(k) != effective.bindings.get(k)}
        touched |= {k for k in self.failures.keys() | failures.keys() if self.failures.get(k) != failures.get(k)}
        fresh = Standing.build(desired, effective, failures, self.facts, self.generation, self.version)
        self.switches, self.bindings, self.macs = fresh.switches, fresh.bindings, fresh.macs
        self.failures = fresh.failures
        self.keys_of, self.macs_of, self.desired = fresh.keys_of, fresh.macs_of, fresh.desired
        return touched

    def scope(self, vnis: set[int], keys: set[Key]) -> GatewayState:
        """The effective state on ``vnis`` (switches, MACs) and ``keys`` (bindings); unordered:
        ``diff`` orders what it finds."""
        switches, bindings, macs = self.switches, self.bindings, self.macs
        return GatewayState({v: switches[v] for v in vnis if v in switches},
                            {k: bindings[k] for k in keys if k in bindings},
                            {k: macs[k] for v in vnis for k in self.macs_of.get(v, ())})

    def keys_for(self, vnis: Iterable[int]) -> set[Key]:
        """The desired binding keys of ``vnis``."""
        out: set[Key] = set()
        for vni in vnis:
            out |= self.keys_of.get(vni, set())
        return out


def scope(state: GatewayState, vnis: set[int], keys: set[Key]) -> GatewayState:
    """``state`` on ``vnis`` and ``keys``: a device's side of a scoped diff (its remote MACs by VNI
    where the reader kept them so: ``MacTable``)."""
    switches, bindings = state.logical_switches, state.bindings
    return GatewayState({v: switches[v] for v in vnis if v in switches},
                        {k: bindings[k] for k in keys if k in bindings},
                        scoped_macs(state.remote_macs, vnis))
