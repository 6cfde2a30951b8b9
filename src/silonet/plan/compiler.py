"""Intent -> desired state per gateway. Pure and deterministic.

At fleet scale (1,000 gateways x 2,000 VLANs: 2M bindings and 2M logical switches) the
cost is Python work per binding, so whatever gateways share is built once and shared: a
group's sorted (port, VLAN) -> VNI pairs (the binding keys are then the same tuples on
every gateway of the group), the group's VNIs with their carrier sets, and one flood list
per (carrier set, gateway) instead of one per VNI. Who carries a network comes from the
inventory's index, so a single gateway's compile reads only what that gateway holds and
the cost of a change follows the change, not the fleet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from operator import itemgetter

from silonet.model.inventory import Inventory
from silonet.plan.intern import shared_set
from silonet.plan.state import GatewayState, LogicalSwitch

Learned = Mapping[str, Mapping[int, Set[str]]]
"""MACs each gateway learned locally, by gateway name and VNI (read from the devices)."""

Pair = tuple[tuple[str, int], int]  # ((port, VLAN), VNI)
Carried = tuple[int, str, frozenset[str]]  # (VNI, network, gateways that carry the VNI)


def vni_carriers(inv: Inventory) -> dict[int, set[str]]:
    """Gateways that carry each VNI: computed once, shared by every gateway's compile."""
    carriers: dict[int, set[str]] = defaultdict(set)
    for name, net in inv.networks.items():
        if name in inv.quarantined:
            continue
        held = inv.carriers_of(name)
        if held:  # attached somewhere (every group has a gateway)
            carriers[net.vni] = set(held)
    return carriers


class _Group:
    """What every gateway of one interface group shares, built on first use."""

    __slots__ = ("_pairs", "carried", "carrier_sets", "vlans")

    def __init__(self, vlans: list[tuple[int, int]], carried: list[Carried]) -> None:
        self.vlans = vlans  # (VLAN, VNI), by VLAN
        self.carried = carried  # by VNI, each VNI once
        self.carrier_sets = list(dict.fromkeys(c for _, _, c in carried))  # few: one per set of groups
        self._pairs: dict[tuple[str, ...], list[Pair]] = {}

    def pairs(self, ports: tuple[str, ...]) -> list[Pair]:
        """Bindings on ``ports`` (sorted), already in (port, VLAN) order."""
        out = self._pairs.get(ports)
        if out is None:
            out = self._pairs[ports] = [((port, vlan), vni) for port in ports for vlan, vni in self.vlans]
        return out


class Compiler:
    """Compiles gateways of one inventory state. Its caches (a group's bindings and VNIs) are
    shared by every gateway compiled through it, so the ten gateways of a group changed by one
    attach build the group once, not ten times; valid only while the inventory, the carriers
    and the learned MACs it was given do not change (``compile_gateway`` uses one per call)."""

    def __init__(self, inv: Inventory, carriers: Mapping[int, Set[str]] | None, learned: Learned | None) -> None:
        self.inv, self.carriers, self.learned = inv, carriers, learned
        self._groups: dict[str, _Group] = {}
        self._given: dict[int, frozenset[str]] = {}  # VNI -> frozenset of the caller's carriers
        self._interned: dict[frozenset[str], frozenset[str]] = {}  # equal carrier sets: one object

    def _given_carriers(self, vni: int) -> frozenset[str]:
        assert self.carriers is not None
        out = self._given.get(vni)
        if out is None:
            given = frozenset(self.carriers.get(vni, ()))
            out = self._given[vni] = self._interned.setdefault(given, given)
        return out

    def _group(self, name: str) -> _Group:
        group = self._groups.get(name)
        if group is None:
            networks = self.inv.networks
            held = sorted(self.inv.vlans_of(name).items())
            if self.inv.quarantined:
                held = [(vlan, net) for vlan, net in held if net not in self.inv.quarantined]
            vlans = [(vlan, networks[net].vni) for vlan, net in held]
            names = {vni: net for (_, vni), (_, net) in zip(vlans, held, strict=True)}
            if self.carriers is None:
                of = self.inv.carriers_of
                carried = [(vni, net, of(net)) for vni, net in sorted(names.items())]
            else:
                carried = [(vni, net, self._given_carriers(vni)) for vni, net in sorted(names.items())]
            group = self._groups[name] = _Group(vlans, carried)
        return group

    def gateway(self, gateway: str) -> GatewayState:
        inv = self.inv
        names = sorted(inv.groups_on(gateway))
        plans = [(self._group(g), inv.groups[g].bound_ports(gateway)) for g in names]
        if len(plans) == 1:  # the common case: one VLAN domain per gateway, nothing to merge
            group, ports = plans[0]
            bindings = dict(group.pairs(ports))
            carried, sets = group.carried, group.carrier_sets
        else:  # group ports are disjoint, so the (port, VLAN) keys are unique: sort, no clash
            bindings = dict(sorted(p for group, ports in plans for p in group.pairs(ports)))
            carried = sorted({c[0]: c for group, _ in plans for c in group.carried}.values(), key=itemgetter(0))
            sets = list(dict.fromkeys(c for group, _ in plans for c in group.carrier_sets))
        new, ls = tuple.__new__, LogicalSwitch  # new_logical_switch, inlined: one call per VNI, not two
        floods = self._floods(gateway, sets)
        switches = {vni: new(ls, (vni, net, floods[carriers])) for vni, net, carriers in carried}
        macs = self._remote_macs(gateway, carried) if self.learned else {}
        return GatewayState(switches, bindings, macs)

    def gateway_part(self, gateway: str, vnis: Iterable[int]) -> GatewayState:
        """What ``gateway(gateway)`` holds about ``vnis``, and nothing else: their switches, the
        bindings to them and their remote MACs. The pass after an attach compiles one VNI
        instead of every VNI of the gateway (the reconciler patches what it kept)."""
        inv = self.inv
        here = inv.groups_on(gateway)
        bindings: dict[tuple[str, int], int] = {}
        carried: list[Carried] = []
        for vni in sorted(set(vnis)):
            net = inv.network_of_vni(vni)
            if net is None or net in inv.quarantined:
                continue
            keys = [(g, vlan) for g, vlan in inv.attachment_keys(net) if g in here]
            if not keys:
                continue
            for g, vlan in keys:
                for port in inv.groups[g].bound_ports(gateway):
                    bindings[(port, vlan)] = vni
            carriers = inv.carriers_of(net) if self.carriers is None else self._given_carriers(vni)
            carried.append((vni, net, carriers))
        floods = self._floods(gateway, {c for _, _, c in carried})
        switches = {vni: LogicalSwitch(vni, net, floods[c]) for vni, net, c in carried}
        macs = self._remote_macs(gateway, carried) if self.learned else {}
        return GatewayState(switches, dict(sorted(bindings.items())), macs)

    def _floods(self, gateway: str, carrier_sets: Iterable[frozenset[str]]) -> dict[frozenset[str], Set[str]]:
        """The flood list per set of carriers: the tunnel IPs of every carrier but ``gateway`` (one
        per set, not one per VNI: VNIs over the same groups share it). A redundant pair is one
        address, its anycast VTEP, listed once; a member never floods to its own pair's address."""
        gateways = self.inv.gateways
        own = gateways[gateway].vtep_ip
        return {c: shared_set(ip for gw in c if (ip := gateways[gw].vtep_ip) != own) for c in carrier_sets}

    def _remote_macs(self, gateway: str, carried: list[Carried]) -> dict[tuple[int, str], str]:
        """Every MAC a peer learned on a shared VNI; the first peer by name wins a MAC seen twice.
        A MAC either member of a redundant pair learned is behind the pair's anycast VTEP (both have
        it as ``vtep_ip``), and is no remote MAC for either member: it is local to the pair."""
        learned, gateways = self.learned, self.inv.gateways
        assert learned is not None
        own = gateways[gateway].vtep_ip
        peers: dict[frozenset[str], list[tuple[str, Mapping[int, Set[str]]]]] = {}
        macs: dict[tuple[int, str], str] = {}
        for vni, _, carriers in carried:
            seen = peers.get(carriers)
            if seen is None:
                seen = peers[carriers] = [
                    (ip, learned[gw]) for gw in sorted(carriers)
                    if (ip := gateways[gw].vtep_ip) != own and gw in learned
                ]
            for ip, by_vni in seen:
                for mac in by_vni.get(vni, ()):
                    macs.setdefault((vni, mac), ip)
        return dict(sorted(macs.items()))


def compile_gateway(
    inv: Inventory, gateway: str, carriers: dict[int, set[str]] | None = None, learned: Learned | None = None
) -> GatewayState:
    """Desired state of one gateway.

    Bindings go on the group's switch-back port where it has one on this gateway, else on
    every member port there. The flood list of a VNI holds the tunnel IPs of every *other*
    gateway that carries it, and every MAC those gateways learned on the VNI becomes a
    remote MAC here, so known destinations are unicast instead of flooded. ``carriers``
    (from ``vni_carriers``) pins who carries each VNI; without it the inventory says.
    """
    return Compiler(inv, carriers, learned).gateway(gateway)


def compile_intent(inv: Inventory, learned: Learned | None = None) -> dict[str, GatewayState]:
    """Desired state of every gateway, by gateway name (gateways with nothing get empty state).
    At fleet scale wrap it in ``silonet.heap.paused()``: the compile allocates millions of objects
    that form no cycles, and a pure function does not own the process's collector."""
    compiler = Compiler(inv, None, learned)  # the inventory's carriers: what vni_carriers(inv) holds
    return {gw: compiler.gateway(gw) for gw in sorted(inv.gateways)}
