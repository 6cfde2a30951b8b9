"""silonet changes only what it owns: what the device holds that someone else made limits
what silonet may do, and each such limit becomes a reason on the attachments it blocks. So
does what the platform cannot hold (``DeviceFacts.refuse``, a dialect's ``check``): a binding
refused there fails its attachment alone, the rest of the gateway's state is still applied."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from silonet.plan.diff import diff
from silonet.plan.ops import Operation
from silonet.plan.state import GatewayState

Key = tuple[str, int]  # (port, VLAN)
Refuse = Callable[[GatewayState], Mapping[Key, str]]  # a state -> the bindings it cannot hold, each with why


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What a driver read besides silonet's own state: the ports that exist and what others own."""

    ports: frozenset[str] | None = None  # None: the driver cannot tell
    foreign_bindings: dict[tuple[str, int], str] = field(default_factory=dict)  # (port, VLAN) -> their switch
    foreign_vnis: dict[int, str] = field(default_factory=dict)  # tunnel key -> their logical switch
    foreign_names: frozenset[str] = frozenset()  # logical switch names taken by others
    # remote VTEPs that configuration of others uses (a platform with one remote-VTEP list for every
    # VNI, ``flood_per_vtep``, must keep them when silonet's own VNIs no longer need them)
    foreign_flood: frozenset[str] = frozenset()
    unusable: dict[str, str] = field(default_factory=dict)  # port -> why silonet must not bind there (someone's)
    remote_macs: bool = True  # False: the device (dialect) cannot hold static remote MACs
    flood_lists: bool = True  # False: the device builds its flood lists itself (EVPN)
    bare_vnis: bool = True  # False: a VNI exists only through a binding (VLAN->VNI per switch)
    flood_per_vtep: bool = False  # True: one remote-VTEP list for every VNI of the device (ALAXALA AX)
    # What the platform cannot hold (the SSH driver puts its dialect's ``check`` here; plan stays pure):
    # asked about the bindings that foreign state left, after every other rule.
    refuse: Refuse | None = None


def without(state: GatewayState, refused: Mapping[Key, str]) -> GatewayState:
    """``state`` less the ``refused`` bindings, and less every logical switch that lost its
    last binding to them (it was there for those bindings only). Remote MACs stay: the caller's
    rules for them apply after."""
    if not refused:
        return state
    bindings = {k: vni for k, vni in state.bindings.items() if k not in refused}
    gone = {state.bindings[k] for k in refused if k in state.bindings} - set(bindings.values())
    switches = {v: ls for v, ls in state.logical_switches.items() if v not in gone}
    return GatewayState(switches, bindings, state.remote_macs)


def restrict(desired: GatewayState, facts: DeviceFacts) -> tuple[GatewayState, dict[tuple[str, int], str]]:
    """The part of ``desired`` the device can take without touching foreign state, and why
    each binding left out was left out."""
    blocked_vnis: dict[int, str] = {}
    for vni, ls in desired.logical_switches.items():
        if vni in facts.foreign_vnis:
            blocked_vnis[vni] = f"VNI {vni} is held by foreign logical switch '{facts.foreign_vnis[vni]}'"
        elif ls.network in facts.foreign_names:
            blocked_vnis[vni] = f"logical switch name '{ls.network}' is taken by a foreign logical switch"
    failures: dict[tuple[str, int], str] = {}
    bindings: dict[tuple[str, int], int] = {}
    for (port, vlan), vni in desired.bindings.items():
        if vni in blocked_vnis:
            failures[(port, vlan)] = blocked_vnis[vni]
        elif port in facts.unusable:
            failures[(port, vlan)] = f"port '{port}' cannot take silonet's VLANs: {facts.unusable[port]}"
        elif facts.ports is not None and port not in facts.ports:
            failures[(port, vlan)] = f"port '{port}' does not exist on the device"
        elif (port, vlan) in facts.foreign_bindings:
            failures[(port, vlan)] = (
                f"port '{port}' VLAN {vlan} is bound to foreign logical switch '{facts.foreign_bindings[(port, vlan)]}'"
            )
        else:
            bindings[(port, vlan)] = vni
    switches = {v: ls for v, ls in desired.logical_switches.items() if v not in blocked_vnis}
    if facts.refuse is not None:
        # A switch whose every binding failed above carries nothing here; kept, it could still
        # collide with what the platform holds per switch (NX-OS: two VNIs on one translated VLAN)
        # unseen by the check, which judges bindings.
        lost = set(desired.bindings.values()) - set(bindings.values())
        switches = {v: ls for v, ls in switches.items() if v not in lost}
    if facts.refuse is not None and bindings:
        refused = {k: why for k, why in facts.refuse(GatewayState(switches, bindings)).items() if k in bindings}
        if refused:
            kept = without(GatewayState(switches, bindings), refused)
            switches, bindings = kept.logical_switches, kept.bindings
            failures.update(refused)
    if not facts.bare_vnis:
        switches = {v: ls for v, ls in switches.items() if v in bindings.values()}
    if not facts.flood_lists:
        switches = {v: ls._replace(flood=frozenset()) for v, ls in switches.items()}
    elif facts.flood_per_vtep:  # one list for every VNI: what others' VNIs may use stays on it
        union = frozenset().union(*(ls.flood for ls in switches.values()), facts.foreign_flood)
        switches = {v: ls._replace(flood=union) for v, ls in switches.items()}
    macs = {k: ip for k, ip in desired.remote_macs.items() if k[0] in switches} if facts.remote_macs else {}
    return GatewayState(switches, bindings, macs), failures


def enforcement(desired: GatewayState, owned: GatewayState,
                facts: DeviceFacts) -> tuple[GatewayState, dict[Key, str], list[Operation]]:
    """What a whole enforce pass does on a device holding ``owned`` with ``facts``: the part of
    ``desired`` it may apply, the bindings it leaves out (each with why) and the operations
    (the reconciler applies them; observe mode and ``silonet gateway probe`` only show them)."""
    effective, failures = restrict(desired, facts)
    return effective, failures, diff(effective, owned)


def binding_errors(failures: Mapping[Key, str]) -> dict[str, str]:
    """Bindings left out, as recorded and shown: ``"port/VLAN" -> why``, in order."""
    return {f"{port}/{vlan}": why for (port, vlan), why in sorted(failures.items())}
