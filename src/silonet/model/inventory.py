"""The whole intent as one aggregate, with its invariants (docs/architecture.md, "Layers").

Every mutating method checks all it needs *before* it changes anything, so a rejected
request leaves the inventory as it was. Indexes keep each check proportional to the
change, not to the fleet.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Set
from typing import Any, TypeVar

from silonet.errors import Conflict, InUse, InvalidInput, NotFound
from silonet.model import rules
from silonet.model.entities import (
    Attachment,
    Gateway,
    InterfaceGroup,
    PortRef,
    Silo,
    VirtualNetwork,
)
from silonet.model.legacy import quarantine_rule
from silonet.model.pairs import check_pair
from silonet.model.policy import AnyDevice, DevicePolicy, Proposed
from silonet.model.refusals import over_capacity


def _endpoint(gw: Gateway) -> tuple[str, str]:
    return rules.management_endpoint(gw.management.driver, gw.management.address)

T = TypeVar("T")


def _users(kind: str, names: Iterable[str], limit: int = 5) -> str:
    names = sorted(names)
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{kind} {shown}{more}"


Call = tuple[str, tuple, dict]  # a change as made: (method, args, kwargs), replayable on an equal inventory


def _counted(method: Callable[..., T]) -> Callable[..., T]:
    """Count successful changes: a holder of a cached inventory can tell whether a failed
    request changed it (a rejection never does). With a ``journal``, each outermost change is noted
    as made: the same calls make the same change on an equal inventory (``replay``)."""

    @functools.wraps(method)
    def counted(self: Inventory, *args: Any, **kwargs: Any) -> T:
        self._depth += 1
        try:
            out = method(self, *args, **kwargs)
        finally:
            self._depth -= 1
        self.changes += 1
        if self.journal is not None and self._depth == 0:
            self.journal.append((method.__name__, args, kwargs))
        return out

    return counted


class Inventory:
    """Silos, gateways, interface groups, virtual networks and attachments."""

    def __init__(self, policy: DevicePolicy | None = None) -> None:
        self.policy: DevicePolicy = policy or AnyDevice()
        self.changes = 0  # successful changes (``_counted``)
        self.journal: list[Call] | None = None  # when set, the changes made (``_counted``, ``replay``)
        self._depth = 0
        self.silos: dict[str, Silo] = {}
        self.gateways: dict[str, Gateway] = {}
        self.groups: dict[str, InterfaceGroup] = {}
        self.networks: dict[str, VirtualNetwork] = {}
        self.attachments: dict[tuple[str, int], Attachment] = {}
        self._ip_users: dict[str, set[str]] = defaultdict(set)  # vtep_ip -> gateways (two: a pair)
        self._pairs: dict[str, set[str]] = defaultdict(set)  # pair -> its members (model/pairs.py)
        self._endpoints: dict[tuple[str, str], set[str]] = defaultdict(set)  # (driver, endpoint) -> gateways
        self._port_owner: dict[PortRef, str] = {}
        self._groups_on: dict[str, set[str]] = defaultdict(set)
        self._vlans: dict[str, dict[int, str]] = defaultdict(dict)
        self._net_atts: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self._vni_owner: dict[int, str] = {}
        # Networks stored under older name rules (``rules.name_violation``): kept, listed and
        # deletable, but compiled onto no device, so one bad name cannot fail a shared gateway.
        self.quarantined: dict[str, str] = {}
        # Gateways deleted from intent whose reconciler still removes silonet's configuration from
        # the device: they carry nothing, take no group or attachment, and keep their name and
        # tunnel IP until they are forgotten (``remove_gateway``).
        self.decommissioning: set[str] = set()
        # Who carries each network, kept current by every change so a compile only reads it:
        # VLANs per (network, group), the gateways per network, and one shared frozenset
        # per set of groups (networks stretched over the same groups share it).
        self._net_groups: dict[str, dict[str, int]] = defaultdict(dict)
        self._carriers: dict[str, frozenset[str]] = {}
        self._unions: dict[frozenset[str], frozenset[str]] = {}

    def replay(self, calls: Iterable[Call]) -> None:
        """Make the changes another copy of this inventory noted in its ``journal``."""
        for name, args, kwargs in calls:
            getattr(self, name)(*args, **kwargs)

    # ----------------------------------------------------------------- lookups
    def silo(self, name: str) -> Silo:
        return self._get(self.silos, "silo", name)

    def gateway(self, name: str) -> Gateway:
        return self._get(self.gateways, "gateway", name)

    def group(self, name: str) -> InterfaceGroup:
        return self._get(self.groups, "interface group", name)

    def network(self, name: str) -> VirtualNetwork:
        return self._get(self.networks, "network", name)

    def attachment(self, network: str, group: str, vlan: int) -> Attachment:
        self._ref(self.groups, "interface group", group, "group")
        att = self.attachments.get((group, vlan))
        if att is None or att.network != network:
            raise NotFound(field="vlan", kind="attachment", name=f"{network}/{group}/{vlan}")
        return att

    @staticmethod
    def _get(table: dict, kind: str, name: str):  # type: ignore[no-untyped-def]
        try:
            return table[name]
        except KeyError:
            raise NotFound(field="name", kind=kind, name=name) from None

    def _ref(self, table: dict, kind: str, name: str, field: str, by: str = "") -> None:
        """A name given in a body: unknown is a 404 that names the body field (and ``by``: who names it)."""
        if name not in table:
            raise NotFound(field=field, kind=kind, name=name, by=by)

    def vlans_of(self, group: str) -> dict[int, str]:
        """VLAN -> network name for a group's attachments."""
        return dict(self._vlans.get(group, {}))

    def attachments_of(self, network: str) -> list[Attachment]:
        return sorted((self.attachments[k] for k in self._net_atts.get(network, ())), key=lambda a: a.key)

    def network_of_vni(self, vni: int) -> str | None:
        return self._vni_owner.get(vni)

    def attachment_keys(self, network: str) -> Set[tuple[str, int]]:
        """(group, VLAN) of the network's attachments, without a copy (do not change it)."""
        return self._net_atts.get(network, frozenset())

    def groups_on(self, gateway: str) -> set[str]:
        return set(self._groups_on.get(gateway, ()))

    def carriers_of(self, network: str) -> frozenset[str]:
        """Gateways that carry ``network`` (as ``gateways_of_network``), without a copy:
        networks stretched over the same groups share one frozenset."""
        return self._carriers.get(network, frozenset())

    # ---------------------------------------------------------------- capacity
    def usage(self, gateway: str) -> int:
        """VLAN->VNI entries the gateway needs for the current intent."""
        return sum(
            self.groups[g].entries_per_vlan(gateway) * len(self._vlans.get(g, ()))
            for g in self._groups_on.get(gateway, ())
        )

    def _check_capacity(self, gateway: str, needed: int, free: int, group: InterfaceGroup | None,
                        new_vlans: int = 0) -> None:
        if needed > free:  # the message names who uses the gateway and what would help (``model.refusals``)
            raise over_capacity(self, gateway, needed, free, group, new_vlans)

    def _check_scope(self, gateway: str, group: str, vlan: int, network: str) -> None:
        """On a switch that maps VLAN->VNI per switch, one VLAN ID carries one VNI."""
        dialect = self.policy.switch_scoped(self.gateways[gateway])
        if dialect is None:
            return
        vni = self.networks[network].vni
        for other in sorted(self._groups_on.get(gateway, ())):
            for v2, held in sorted(self._vlans.get(other, {}).items()):
                vni2 = self.networks[held].vni
                if (v2 == vlan) == (vni2 == vni):
                    continue  # the same pair again, or unrelated
                what = (f"VLAN {vlan} there already carries VNI {vni2}" if v2 == vlan
                        else f"VNI {vni} there is already on VLAN {v2}")
                raise Conflict(
                    field="vlan",
                    rule=f"gateway '{gateway}' ({dialect} dialect) maps VLAN<->VNI one to one per switch, not per "
                    f"port: {what} for interface group '{other}'; use the same VLAN ID everywhere on that switch "
                    f"or a platform with per-port VLAN mapping",
                )

    def _check_limits(self, gateway: str, group: str, vlan: int, network: str) -> None:
        """What one switch of the gateway's platform cannot hold (a VLAN name too long, VLAN 0 where
        only tagged VLANs map, two VNIs on one translated VLAN): refused now, naming the gateway,
        the dialect and the rule, instead of failing every pass of that gateway for everyone."""
        vni = self.networks[network].vni

        def held() -> Iterator[tuple[str, int, int]]:
            for g in sorted(self._groups_on.get(gateway, ())):
                for v, net in sorted(self._vlans.get(g, {}).items()):
                    if (g, v) != (group, vlan):
                        yield g, v, self.networks[net].vni

        refused = self.policy.refuse(self.gateways[gateway], Proposed(gateway, network, vni, vlan, group, held))
        if refused is not None:
            dialect, rule = refused
            raise Conflict(field="vlan", rule=f"gateway '{gateway}' ({dialect} dialect) cannot carry network "
                                              f"'{network}' (VNI {vni}) on VLAN {vlan}: {rule}")

    # ------------------------------------------------------------------- silos
    @_counted
    def put_silo(self, silo: Silo) -> Silo | None:
        before = self.silos.get(silo.name)
        self.silos[silo.name] = silo
        return before

    @_counted
    def remove_silo(self, name: str) -> Silo:
        silo = self.silo(name)
        users = [g.name for g in self.gateways.values() if g.silo == name]
        users += [g.name for g in self.groups.values() if g.silo == name]
        if users:
            raise InUse(field="name", kind="silo", name=name, users=_users("gateways/groups", users))
        del self.silos[name]
        return silo

    # ---------------------------------------------------------------- gateways
    def leaving(self, name: str, field: str = "name") -> None:
        """Refuse to use a gateway that is being decommissioned."""
        if name in self.decommissioning:
            raise Conflict(field=field, rule=f"gateway '{name}' is being decommissioned (silonet is removing its "
                                             "configuration from the device); its name and vtep_ip stay taken until "
                                             "it is gone: wait for that, or delete it again with --force")

    @_counted
    def put_gateway(self, gw: Gateway, pairs_checked: bool = False) -> Gateway | None:
        """``pairs_checked``: the caller checked the pair rules over every gateway it puts
        (``pairs.check_pairs``: a topology file's), so this one may pass through a state between."""
        before = self.gateways.get(gw.name)
        self.leaving(gw.name)
        self.policy.check(gw)
        if gw.silo is not None:
            self._ref(self.silos, "silo", gw.silo, "silo", f"gateway '{gw.name}' names it")
        if not pairs_checked:
            check_pair(gw, self.gateways, self._ip_users.get(gw.vtep_ip, set()) - {gw.name},
                       self._pairs.get(gw.pair, set()) - {gw.name} if gw.pair else set())
        if before is not None:
            for port in before.ports:
                ref = PortRef(gw.name, port.name)
                grp = self._port_owner.get(ref)
                new = gw.port(port.name)
                if grp is None:
                    continue
                if new is None:
                    raise InUse(field="ports", kind="port", name=str(ref), users=_users("interface group", [grp]))
                if new.switchback != port.switchback:
                    raise InUse(
                        field="ports.switchback", kind="port", name=str(ref),
                        users=_users("interface group", [grp]) + " (its switch-back flag cannot change while in use)",
                    )
            used = self.usage(gw.name)
            if used > gw.capacity:
                raise over_capacity(self, gw.name, used, gw.capacity, new_capacity=gw.capacity)
            self._unindex_gateway(before)
        self.gateways[gw.name] = gw
        self._ip_users[gw.vtep_ip].add(gw.name)
        if gw.pair is not None:
            self._pairs[gw.pair].add(gw.name)
        if before is not None:
            self._endpoints[_endpoint(before)].discard(gw.name)
        self._endpoints[_endpoint(gw)].add(gw.name)
        return before

    def _unindex_gateway(self, gw: Gateway) -> None:
        for index, key in ((self._ip_users, gw.vtep_ip), (self._pairs, gw.pair)):
            if key is not None and key in index:
                index[key].discard(gw.name)
                if not index[key]:
                    del index[key]

    def partner(self, name: str) -> str | None:
        """The other member of ``name``'s redundant pair (None: unpaired, or alone in its pair yet)."""
        gw = self.gateways.get(name)
        if gw is None or gw.pair is None:
            return None
        return next((m for m in self._pairs.get(gw.pair, ()) if m != name), None)

    def sharing_device(self, gw: Gateway) -> str | None:
        """Another gateway managed at the device ``gw``'s address reaches, unless ``gw`` already was
        (writes refuse it: ``refusals.check_management``; a load keeps rows stored before that rule)."""
        if (before := self.gateways.get(gw.name)) is not None and _endpoint(before) == _endpoint(gw):
            return None
        return min(self._endpoints.get(_endpoint(gw), set()) - {gw.name}, default=None)

    @_counted
    def remove_gateway(self, name: str) -> Gateway:
        gw = self.gateway(name)
        if self._groups_on.get(name):
            raise InUse(field="name", kind="gateway", name=name, users=_users("interface group", self._groups_on[name]))
        del self.gateways[name]
        self._unindex_gateway(gw)
        self._endpoints[_endpoint(gw)].discard(name)
        self._groups_on.pop(name, None)
        self.decommissioning.discard(name)
        return gw

    @_counted
    def decommission(self, name: str) -> Gateway:
        """Delete a gateway from intent but keep it until its device is cleaned: as
        ``remove_gateway`` refuses a gateway still in a group, so it carries nothing from now on."""
        gw = self.gateway(name)
        if self._groups_on.get(name):
            raise InUse(field="name", kind="gateway", name=name, users=_users("interface group", self._groups_on[name]))
        self.decommissioning.add(name)
        return gw

    # ------------------------------------------------------------------ groups
    @_counted
    def put_group(self, group: InterfaceGroup) -> InterfaceGroup | None:
        before = self.groups.get(group.name)
        if group.silo is not None:
            self._ref(self.silos, "silo", group.silo, "silo", f"interface group '{group.name}' names it")
        for fld, refs, want_sb in (("members", group.members, False), ("switchback", group.switchback, True)):
            for ref in refs:
                by = f"interface group '{group.name}' lists it in {fld}"
                self._ref(self.gateways, "gateway", ref.gateway, f"{fld}.gateway", by)
                self.leaving(ref.gateway, f"{fld}.gateway")
                port = self.gateways[ref.gateway].port(ref.port)
                if port is None:
                    raise NotFound(field=f"{fld}.port", kind="port", name=str(ref), by=by)
                if port.switchback != want_sb:
                    rule = (
                        f"port {ref} is not marked as a switch-back port on its gateway"
                        if want_sb
                        else f"port {ref} is a switch-back port; list it under switchback, not members"
                    )
                    raise InvalidInput(field=fld, rule=rule)
                owner = self._port_owner.get(ref)
                if owner is not None and owner != group.name:
                    raise Conflict(field=fld, rule=f"port {ref} already belongs to interface group '{owner}'")
        for gw in sorted(group.gateways - (before.gateways if before else frozenset())):
            for vlan, net in sorted(self._vlans.get(group.name, {}).items()):
                self._check_scope(gw, group.name, vlan, net)
                self._check_limits(gw, group.name, vlan, net)
        nvlans = len(self._vlans.get(group.name, ()))
        if nvlans:
            for gw in sorted(group.gateways):
                old = before.entries_per_vlan(gw) * nvlans if before else 0
                new = group.entries_per_vlan(gw) * nvlans
                if new > old:
                    free = self.gateways[gw].capacity - (self.usage(gw) - old)
                    self._check_capacity(gw, new, free, group)
        if before is not None:
            self._unindex_group(before)
        self.groups[group.name] = group
        for ref in group.ports:
            self._port_owner[ref] = group.name
        for gw in group.gateways:
            self._groups_on[gw].add(group.name)
        if before is not None and before.gateways != group.gateways:
            self._unions.clear()
            for net in set(self._vlans.get(group.name, {}).values()):
                self._carry(net)
        return before

    def _unindex_group(self, group: InterfaceGroup) -> None:
        for ref in group.ports:
            self._port_owner.pop(ref, None)
        for gw in group.gateways:
            self._groups_on[gw].discard(group.name)

    @_counted
    def remove_group(self, name: str) -> InterfaceGroup:
        group = self.group(name)
        vlans = self._vlans.get(name)
        if vlans:
            nets = sorted(set(vlans.values()))
            raise InUse(field="name", kind="interface group", name=name, users=_users("attachments of network", nets))
        self._unindex_group(group)
        del self.groups[name]
        self._vlans.pop(name, None)
        self._unions.clear()  # a group of this name may come back with other gateways
        return group

    # ---------------------------------------------------------------- networks
    @_counted
    def put_network(self, net: VirtualNetwork) -> VirtualNetwork | None:
        before = self.networks.get(net.name)
        holder = self._vni_owner.get(net.vni)
        if holder is not None and holder != net.name:
            raise Conflict(field="vni", rule=f"VNI {net.vni} already belongs to network '{holder}'")
        if before is not None and before.vni != net.vni and self._net_atts.get(net.name):
            self.networks[net.name] = net  # the checks read the new VNI; put back if one refuses
            try:
                for g, vlan in sorted(self._net_atts[net.name]):
                    for gw in sorted(self.groups[g].gateways):
                        self._check_limits(gw, g, vlan, net.name)
            except Conflict:
                self.networks[net.name] = before
                raise
        if before is not None:
            self._vni_owner.pop(before.vni, None)
        self.networks[net.name] = net
        self._vni_owner[net.vni] = net.name
        if (rule := quarantine_rule(net.name)) is not None:
            self.quarantined[net.name] = rule
        return before

    def allocate_vni(self, pool: range, skip: Iterable[range] = ()) -> int:
        """The lowest VNI of the pool that no network holds and no range of ``skip`` (the tenants'
        pools, reserved: ``model/tenancy.py``) contains."""
        holes, i, vni = sorted(skip, key=lambda r: r.start), 0, pool.start
        while vni < pool.stop:
            while i < len(holes) and holes[i].stop <= vni:
                i += 1
            if i < len(holes) and holes[i].start <= vni:
                vni = holes[i].stop
            elif vni in self._vni_owner:
                vni += 1
            else:
                return vni
        outside = " outside the tenants' VNI pools" if holes else ""
        raise Conflict(field="vni", rule=f"the VNI pool {pool.start}-{pool.stop - 1} is exhausted{outside}")

    @_counted
    def remove_network(self, name: str, cascade: bool = False) -> tuple[VirtualNetwork, list[Attachment]]:
        net = self.network(name)
        atts = self.attachments_of(name)
        if atts and not cascade:
            raise InUse(
                field="cascade", kind="network", name=name,
                users=f"{len(atts)} attachment(s); detach them first or pass cascade=true",
            )
        for att in atts:
            self.detach(att.network, att.group, att.vlan)
        del self.networks[name]
        self._vni_owner.pop(net.vni, None)
        self.quarantined.pop(name, None)
        return net, atts

    # ------------------------------------------------------------- attachments
    @_counted
    def attach(self, att: Attachment) -> Attachment:
        self._ref(self.networks, "network", att.network, "network")
        self._ref(self.groups, "interface group", att.group, "interface_group")
        holder = self._vlans.get(att.group, {}).get(att.vlan)
        if holder is not None:
            raise Conflict(
                field="vlan",
                rule=f"VLAN {att.vlan} of interface group '{att.group}' is already attached to network '{holder}'",
            )
        group = self.groups[att.group]
        for gw in sorted(group.gateways):
            self._check_scope(gw, att.group, att.vlan, att.network)
            self._check_limits(gw, att.group, att.vlan, att.network)
        for gw in sorted(group.gateways):
            needed = group.entries_per_vlan(gw)
            self._check_capacity(gw, needed, self.gateways[gw].capacity - self.usage(gw), group, new_vlans=1)
        self.attachments[att.key] = att
        self._vlans[att.group][att.vlan] = att.network
        self._net_atts[att.network].add(att.key)
        groups = self._net_groups[att.network]
        groups[att.group] = groups.get(att.group, 0) + 1
        if groups[att.group] == 1:
            self._carry(att.network)
        return att

    @_counted
    def detach(self, network: str, group: str, vlan: int) -> Attachment:
        att = self.attachment(network, group, vlan)
        del self.attachments[att.key]
        del self._vlans[group][vlan]
        self._net_atts[network].discard(att.key)
        groups = self._net_groups[network]
        groups[group] -= 1
        if not groups[group]:
            del groups[group]
            self._carry(network)
        return att

    # -------------------------------------------------------- affected gateways
    def gateways_of_network(self, network: str) -> set[str]:
        return set(self.carriers_of(network))

    def _carry(self, network: str) -> None:
        """Recompute who carries ``network`` after its set of groups (or their gateways) changed."""
        groups = self._net_groups.get(network)
        if not groups:
            self._net_groups.pop(network, None)
            self._carriers.pop(network, None)
            return
        key = frozenset(groups)
        union = self._unions.get(key)
        if union is None:
            if len(self._unions) > 2 * len(self.networks) + 64:
                self._unions.clear()  # only sharing is lost; keep churn from growing it
            union = self._unions[key] = frozenset().union(*(self.groups[g].gateways for g in key))
        self._carriers[network] = union
