"""Declarative apply: make the stored intent match a topology file, in one transaction.

Idempotent: applying the same file twice changes nothing the second time. Steps are
ordered so that things can move (a port from one group to another, a VLAN from one
network to another with ``prune``) within one apply; updates that wait on each other are
retried until no further progress, and then the last error is the answer. The file is applied
as one apply set: its objects go to that set, and ``prune`` deletes only that set's objects the
file no longer declares, within a guard (``service/applyset.py``). Applied without a set, a file
whose objects name their own sets (an export) puts each object in its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar

from silonet.errors import Conflict
from silonet.model import Attachment, Gateway, VirtualNetwork, rules
from silonet.model.pairs import check_pairs
from silonet.model.refusals import check_management
from silonet.service import applyset, decommission, tenants
from silonet.service import schemas as S
from silonet.store.repo import Repository

if TYPE_CHECKING:
    from silonet.service.manager import Manager
    from silonet.store.cache import Write


_T = TypeVar("_T")


class _DryRun(Exception):
    """Raised to roll back a dry run (or a no-op) after everything was checked."""


class _Applier:
    def __init__(self, repo: Repository, tx: Write, actor: str, secrets_dir: Path) -> None:
        self.repo, self.tx, self.actor = repo, tx, actor
        self.inv, self.gen = tx.inventory, tx.generation
        self.secrets_dir = secrets_dir  # where credentials references may point
        self.set = applyset.DEFAULT_SET  # the apply set the file is applied as (and a prune's)
        self.outside: applyset.Outside = {}  # stored objects in another apply set or in none
        self.own = False  # each object goes to the set it names (an apply naming none, of a file naming some)
        self.current: applyset.Outside = {}  # with ``own``: every stored object's set
        self.adopted: dict[tuple[str, str | None], list[Any]] = {}  # (kind, set) -> objects stamped with that set
        self.moved: list[tuple[str, str, str, str | None]] = []  # (kind, name, old, new) taken from a named set
        self.warnings: list[str] = []
        self.prune: S.PruneOut | None = None
        self.changes: list[S.ChangeOut] = []
        self.audits: list[tuple[str, str, dict | None, dict | None]] = []
        self.touched: set[str] = set()  # gateways whose desired state may have changed
        self.notes: list[str] = []  # what the apply leaves to finish later (decommissioning gateways)

    def was(self, kind: str, key: Any) -> str | None:
        """The apply set a stored object is in (``key``: as ``outside`` knows it)."""
        return (self.current if self.own else self.outside).get(kind, {}).get(key, self.set)

    def to(self, body: Any) -> str | None:
        """The apply set an object of the file goes to."""
        return applyset.target(body, self.set, self.own)

    def keep(self, kind: str, key: Any, to: str | None) -> str | None:
        """The set to save a changed object with; one leaving every set is stamped None at the end
        (``save_*`` keep a row's set when given None)."""
        if to is None and self.was(kind, key) is not None:
            self.adopted.setdefault((kind, None), []).append(key)
        return to

    def record(self, action: str, kind: str, name: str, before: Any, after: Any, key: Any = None,
               to: str | EllipsisType | None = ...) -> None:
        """One change, audited with the apply sets; an update names each field old -> new, its
        apply set too when the object moves (``to``: the set it goes to, default this apply's)."""
        key = name if key is None else key
        to = self.set if isinstance(to, EllipsisType) else to
        fields = applyset.changed_fields(before, after) if action == "update" else {}
        old_set = self.was(kind, key)
        if action == "update" and old_set != to:
            fields["apply_set"] = (old_set, to)
            if old_set is not None:
                self.moved.append((kind, name, old_set, to))
        self.changes.append(S.ChangeOut(action=action, kind=kind, name=name, fields=fields))
        gone, made = action in ("update", "delete", "detach"), action in ("create", "update", "attach")
        self.audits.append((f"apply.{action}", f"{kind}/{name}",
                            {**(S.dump(before) or {}), "apply_set": old_set} if gone else S.dump(before),
                            {**(S.dump(after) or {}), "apply_set": to} if made else S.dump(after)))

    def adopt(self, kind: str, name: str, key: Any = None, to: str | EllipsisType | None = ...) -> None:
        """An unchanged object the file declares: set ``to`` (default this apply's) owns it now, if
        another (or none) did."""
        key = name if key is None else key
        to = self.set if isinstance(to, EllipsisType) else to
        if self.was(kind, key) != to:
            self.adopted.setdefault((kind, to), []).append(key)
            self.record("update", kind, name, None, None, key, to)

    def touch_network(self, name: str) -> None:
        """Gateways carrying the network (call before and after changing it)."""
        if name in self.inv.networks:
            self.touched |= self.inv.gateways_of_network(name)

    def touch_group(self, name: str) -> None:
        """The group's gateways and every gateway sharing a network with it (flood lists)."""
        group = self.inv.groups.get(name)
        if group is None:
            return
        self.touched |= group.gateways
        for net in set(self.inv.vlans_of(name).values()):
            self.touch_network(net)

    def until_stable(self, items: list, step: Callable[[Any], None]) -> None:
        """Apply ``step`` to every item, retrying conflicts while others make progress."""
        pending = list(items)
        while pending:
            failed, last = [], None
            for item in pending:
                try:
                    step(item)
                except Conflict as err:
                    failed.append(item)
                    last = err
            if len(failed) == len(pending):
                assert last is not None
                raise last
            pending = failed


def apply_topology(mgr: Manager, topo: S.Topology, prune: bool, dry_run: bool, actor: str,
                   apply_set: str | None = None, force: bool = False) -> S.ApplyOut:
    """Apply ``topo`` as apply set ``apply_set`` (None: each object in the set it names, else in
    ``default``); ``prune`` deletes that set's (``default``'s) objects the file no longer declares,
    within the guard (``applyset.guard``) unless ``force``."""
    if apply_set is not None:
        rules.new_name(apply_set, "set")
        applyset.check_named(topo, apply_set)  # each object's own set absent or this one: before any read
    own, apply_set = apply_set is None and applyset.own_sets(topo), apply_set or applyset.DEFAULT_SET
    try:
        with mgr.cache.transaction(mgr.db) as tx:
            repo, inv, gen = Repository(tx.session), tx.inventory, tx.generation
            a = _Applier(repo, tx, actor, mgr.settings.secrets_dir)
            a.set, a.own = apply_set, own
            if own:  # no set is named "" (rules.new_name): every object, with its set
                a.current = repo.outside_apply_set("")
                a.outside = {kind: {k: s for k, s in objs.items() if s != apply_set}
                             for kind, objs in a.current.items()}
            else:
                a.outside = repo.outside_apply_set(apply_set)
            _run(a, topo, prune, mgr.settings.vni_pool, force=force, dry_run=dry_run)
            tx.note(repo.bump(a.touched & set(inv.gateways), gen), repo.audit_many(actor, a.audits))
            kept = a.changes and not dry_run
            result = S.ApplyOut(dry_run=dry_run, generation=gen if kept else gen - 1, changes=a.changes,
                                gateways=sorted(a.touched & (set(inv.gateways) - inv.decommissioning)) if kept else [],
                                notes=a.notes, set=apply_set, warnings=a.warnings, prune=a.prune)
            if dry_run or not a.changes:
                raise _DryRun  # nothing to keep: not even the generation moves
    except _DryRun:
        pass
    return result


def _run(a: _Applier, topo: S.Topology, prune: bool, pool: range, force: bool = False, dry_run: bool = False) -> None:
    inv, repo = a.inv, a.repo
    wanted_atts = {(att.interface_group, att.vlan): net.name for net in topo.networks for att in net.attachments}
    names = {sec: {i.name for i in getattr(topo, sec)} for sec in ("silos", "gateways", "interface_groups", "networks")}

    if prune:  # only this set's objects, and only within the guard (a refused prune raises here)
        plan = applyset.plan_prune(inv, a.outside, a.set, wanted_atts, names)
        a.prune = applyset.guard(plan, applyset.declared(topo), a.set, force, dry_run)
        for att in plan.attachments:
            a.touch_network(att.network)
            inv.detach(att.network, att.group, att.vlan)
            repo.delete_attachment(att)
            a.record("detach", "attachment", f"{att.network}/{att.group}/{att.vlan}", None, None)
        for name in plan.networks:
            net = inv.networks[name]
            a.touch_network(name)
            inv.remove_network(name)
            repo.delete_network(name)
            a.record("delete", "network", name, S.NetworkOut(name=name, tenant=net.tenant, vni=net.vni,
                                                             attachments=[]), None)
        for name in plan.groups:
            a.touch_group(name)
            a.record("delete", "interface-group", name, S.group_out(inv.remove_group(name)), None)
            repo.delete_group(name)

    for body in topo.silos:
        silo, old, to = body.entity(), inv.silos.get(body.name), a.to(body)
        if old != silo:
            inv.put_silo(silo)
            repo.save_silo(silo, a.keep("silo", silo.name, to))
            a.record("update" if old else "create", "silo", silo.name, old and S.silo_out(old), S.silo_out(silo),
                     to=to)
        else:
            a.adopt("silo", silo.name, to=to)

    # Gateways first keep the ports they lose, so groups can let go of them. The pair rules hold
    # for the file's gateways as a whole: a pair renamed or moved in one file passes in any order.
    final: dict[str, Gateway] = {}
    entities = {body.name: body.entity(inv.policy.default_capacity(body.management.driver, body.management.dialect))
                for body in topo.gateways}
    check_pairs(inv.gateways, {n: gw for n, gw in entities.items() if inv.gateways.get(n) != gw})
    for body in topo.gateways:
        inv.leaving(body.name, f"gateways[{body.name}]")
        gw, old, to = entities[body.name], inv.gateways.get(body.name), a.to(body)
        if old == gw:
            a.adopt("gateway", gw.name, to=to)
            continue
        field = f"gateways[{gw.name}].management.credentials"  # a write follows the fence; an unchanged row is none
        rules.fenced_credentials(gw.management.credentials, a.secrets_dir, field)
        check_management(inv, gw, f"gateways[{gw.name}].management.address")  # one device, one gateway
        keep = tuple(p for p in old.ports if gw.port(p.name) is None) if old else ()
        interim = replace(gw, ports=gw.ports + keep)
        inv.put_gateway(interim, pairs_checked=True)
        repo.save_gateway(interim, a.keep("gateway", gw.name, to))
        a.touched.add(gw.name)
        for group in inv.groups_on(gw.name):  # a new tunnel IP changes its peers' flood lists
            a.touch_group(group)
        final[gw.name] = gw
        a.record("update" if old else "create", "gateway", gw.name, old and S.gateway_out(old, 0),
                 S.gateway_out(gw, 0), to=to)

    def put_group(body: S.GroupApplyIn) -> None:
        group, old, to = body.entity(), inv.groups.get(body.name), a.to(body)
        if old == group:
            a.adopt("interface-group", group.name, to=to)
            return
        a.touch_group(group.name)
        inv.put_group(group)
        a.touch_group(group.name)
        repo.save_group(group, a.keep("interface-group", group.name, to))
        a.record("update" if old else "create", "interface-group", group.name,
                 old and S.group_out(old), S.group_out(group), to=to)

    a.until_stable(list(topo.interface_groups), put_group)

    for gw in final.values():
        if inv.gateways[gw.name] != gw:
            inv.put_gateway(gw)
            repo.save_gateway(gw)  # its apply set: as the interim row's above

    if prune:
        for name in plan.gateways:
            if name in inv.decommissioning:
                continue  # deleted already: its reconciler is cleaning its device
            a.record("delete", "gateway", name, S.gateway_out(inv.gateway(name), 0), None)
            out = decommission.begin(repo, a.tx, name, a.actor)  # cleaned first, where a reconciler runs
            a.notes += [out.message] if out.message else []
        for name in plan.silos:
            if (stays := decommission.silo_stays(inv, name)) is not None:
                a.notes.append(stays)
                continue
            a.record("delete", "silo", name, S.silo_out(inv.remove_silo(name)), None)
            repo.delete_silo(name)

    new_networks: list[VirtualNetwork] = []
    new_sets: dict[Any, str | None] = {}  # the set of each new network and attachment
    allocate = tenants.allocator(repo.s, inv, pool)  # a tenant's pool, else the global one outside every pool

    def put_network(body: S.TopologyNetworkIn) -> None:
        old = inv.networks.get(body.name)
        vni = body.vni if body.vni is not None else (old.vni if old else allocate(body.tenant))
        net, to = S.network_entity(body, vni), a.to(body)
        if old == net:
            a.adopt("network", net.name, to=to)
            return
        a.touch_network(net.name)
        inv.put_network(net)
        if old is None:
            new_networks.append(net)  # inserted together below: one statement for thousands
            new_sets[net.name] = to
        else:
            a.warnings += applyset.live_network_moves(net.name, inv, old.vni, net.vni, old.tenant, net.tenant)
            repo.save_network(net, a.keep("network", net.name, to))
        out = lambda n: S.NetworkOut(name=n.name, tenant=n.tenant, vni=n.vni, attachments=[])  # noqa: E731
        a.record("update" if old else "create", "network", net.name, old and out(old), out(net), to=to)

    a.until_stable(list(topo.networks), put_network)
    for set_name, nets in _by_set(new_networks, lambda n: new_sets[n.name]):
        repo.insert_networks(nets, set_name)

    new_atts: list[Attachment] = []
    for net in topo.networks:
        for body in net.attachments:
            cur, to = inv.attachments.get((body.interface_group, body.vlan)), a.to(body)
            if cur is not None and cur.network == net.name:
                a.adopt("attachment", f"{net.name}/{cur.group}/{cur.vlan}", cur.key, to=to)
                continue
            att = inv.attach(Attachment(body.interface_group, body.vlan, net.name, a.gen))
            new_atts.append(att)
            new_sets[att.key] = to
            a.record("attach", "attachment", f"{net.name}/{att.group}/{att.vlan}", None, None, to=to)
    for net_name in {att.network for att in new_atts}:
        a.touch_network(net_name)
    for set_name, atts in _by_set(new_atts, lambda att: new_sets[att.key]):
        repo.add_attachments(atts, a.gen, set_name)
    new_keys: dict[str, list[tuple[str, int]]] = {}
    for att in new_atts:
        new_keys.setdefault(att.network, []).append(att.key)
    for net in topo.networks:
        if net.name in new_keys:
            a.warnings += applyset.old_attachments_stay(net, new_keys[net.name], inv, a.outside, prune)
    for (kind, set_name), keys in a.adopted.items():
        repo.stamp_apply_set(kind, keys, set_name)  # type: ignore[arg-type]  # None: out of every set
    a.warnings += applyset.moves(a.moved)


def _by_set(items: Iterable[_T], set_of: Callable[[_T], str | None]) -> list[tuple[str | None, list[_T]]]:
    """New objects per apply set, in order: one insert statement per set."""
    out: dict[str | None, list[_T]] = {}
    for item in items:
        out.setdefault(set_of(item), []).append(item)
    return list(out.items())
