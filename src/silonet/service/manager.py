"""The manager's use cases.

Each write is one transaction: load the intent, let the pure model check and change it,
write the rows, bump the generation of every gateway whose desired state changed, audit.
Anything raised inside rolls the whole transaction back, so a rejected request writes
nothing anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property, partial
from typing import TYPE_CHECKING, TypeVar

import anyio

from silonet.config import Settings
from silonet.errors import Conflict, Forbidden, InvalidInput, NotFound
from silonet.model import Attachment, Inventory, rules
from silonet.model.legacy import quarantine_reason, violations
from silonet.model.refusals import check_management
from silonet.plan import GatewayState, actual_json, compile_gateway, diff
from silonet.plan.compiler import Learned, vni_carriers
from silonet.plan.ops import op_to_dict
from silonet.plan.status import Verdict, gateway_status, summarize
from silonet.service import decommission, gateway_change, listing, tenants, waits
from silonet.service import schemas as S
from silonet.service.auth import Claim, Tokens, conflict_for, errors_for
from silonet.store.repo import Realization, Repository

if TYPE_CHECKING:
    from silonet.runtime import Runtime
    from silonet.store.cache import Write

ADMIN = "admin"
WAIT_MAX_S = waits.WAIT_MAX_S
AUDIT_LIMIT = (1, 1000)
_W = TypeVar("_W")
_T = TypeVar("_T")


def _learned(real: dict[str, Realization]) -> Learned:
    """MACs each gateway learned, as its last reconcile pass read them."""
    return {gw: actual_json.local_macs(r.actual) for gw, r in real.items()}


async def _then_read(waiting: Awaitable[_W], read: Callable[[_W], _T]) -> _T:
    """What an API call that waits answers: the wait (on the event loop: it holds no thread),
    then the state read again as the wait ended it (in a worker thread: a read may block)."""
    return await anyio.to_thread.run_sync(read, await waiting)


@contextmanager
def _told_to(inv: Inventory, tenant: str | None, claims: Callable[[], list[Claim]] = list) -> Iterator[None]:
    """Conflicts raised inside, as ``auth.conflict_for`` lets the caller read them (same field,
    same status); ``claims``: what the write asks for, looked up only when one is refused."""
    try:
        yield
    except Conflict as err:
        told = conflict_for(err, tenant, inv.networks, claims() if tenant is not None else ())
        if told is err:
            raise
        raise told from None


def _holder_of_vlan(inv: Inventory, group: str, vlan: int) -> str | None:
    att = inv.attachments.get((group, vlan))
    return None if att is None else att.network


def _visible(inv: Inventory, name: str, tenant: str | None) -> None:
    """The network, if this caller may see it: another tenant's is as unknown as a missing one,
    so names do not leak."""
    net = inv.network(name)
    if tenant is not None and net.tenant != tenant:
        raise NotFound(field="name", kind="network", name=name)


class Manager:
    """Use cases over one database."""

    def __init__(self, runtime: Runtime, settings: Settings | None = None) -> None:
        """``runtime``: this process's wiring, shared with its reconciler (``silonet.runtime``)."""
        self.runtime = runtime
        self.db = runtime.db
        self.settings = settings or Settings(database_url=self.db.url)
        self.policy = runtime.policy
        self.cache = runtime.intent
        self.board = runtime.board

    @cached_property
    def tokens(self) -> Tokens:
        """The token store and verifier (``service/auth.py``): one per manager, so what it remembers
        (verified tokens, this process's revocations) holds for every caller: API, gate and CLI."""
        return Tokens(self.db)

    # ------------------------------------------------------------------- reads
    @contextmanager
    def _view(self) -> Iterator[tuple[Repository, Inventory]]:
        """A read: the repository and the intent at the database's generation. The cache
        lock is held meanwhile, so the inventory does not change under the reader."""
        with self.db.read() as s, self.cache.lock:
            inv, _gen = self.cache.current(s)
            yield Repository(s), inv

    def inventory(self) -> Inventory:
        """A private copy of the intent (for callers outside the cache lock)."""
        with self.db.read() as s:
            return Repository(s).load_inventory(self.policy)

    def list_silos(self) -> list[S.SiloOut]:
        with self._view() as (_repo, inv):
            return [S.silo_out(inv.silos[n]) for n in sorted(inv.silos)]

    def get_silo(self, name: str) -> S.SiloOut:
        with self._view() as (_repo, inv):
            return S.silo_out(inv.silo(name))

    def list_gateways(self) -> list[S.GatewayOut]:
        with self._view() as (_repo, inv):
            secrets = self.settings.secrets_dir
            return [S.gateway_out(inv.gateways[n], inv.usage(n), secrets) for n in sorted(inv.gateways)]

    def get_gateway(self, name: str) -> S.GatewayOut:
        with self._view() as (_repo, inv):
            return S.gateway_out(inv.gateway(name), inv.usage(name), self.settings.secrets_dir)

    def list_groups(self) -> list[S.GroupOut]:
        with self._view() as (_repo, inv):
            return [S.group_out(inv.groups[n]) for n in sorted(inv.groups)]

    def get_group(self, name: str) -> S.GroupOut:
        with self._view() as (_repo, inv):
            return S.group_out(inv.group(name))

    def _network_out(self, inv: Inventory, name: str, real: dict[str, Realization],
                     tenant: str | None = None) -> S.NetworkOut:
        net = inv.network(name)
        return S.NetworkOut(
            name=net.name, tenant=net.tenant, vni=net.vni,
            attachments=[self._attachment_out(inv, a, real, tenant) for a in inv.attachments_of(name)],
            violations=violations(net),
        )

    def _attachment_out(self, inv: Inventory, att: Attachment, real: dict[str, Realization],
                        tenant: str | None = None) -> S.AttachmentOut:
        """Its status by the rule of ``plan/status.py`` (``real``: as ``errors_for`` lets the caller read them)."""
        group = inv.groups[att.group]
        per_gw = []
        for gw in sorted(inv.gateways_of_network(att.network)):  # the attachment's own group's included
            r = real.get(gw)
            error = next((e for p in group.bound_ports(gw) if r and (e := r.binding_error(p, att.vlan))), None)
            status, reason = gateway_status(r, att.generation, error, inv.gateways[gw].mode)
            per_gw.append(S.AttachmentGatewayOut(gateway=gw, status=status, reason=reason, pair=inv.gateways[gw].pair))
        quarantined = inv.quarantined.get(att.network)
        verdict = summarize(per_gw, group.gateways, tenant is not None,
                            None if quarantined is None else quarantine_reason(quarantined))
        return S.AttachmentOut(
            network=att.network, interface_group=att.group, vlan=att.vlan,
            vni=inv.networks[att.network].vni, generation=att.generation, status=verdict.status,
            reason=verdict.reason, gateways=per_gw,
        )

    def list_networks(self, tenant: str | None = None) -> list[S.NetworkOut]:
        with self._view() as (repo, inv):
            real = errors_for(repo.realizations(observed=False), tenant)
            return [self._network_out(inv, n, real, tenant) for n in sorted(inv.networks)
                    if tenant is None or inv.networks[n].tenant == tenant]

    def get_network(self, name: str, tenant: str | None = None) -> S.NetworkOut:
        with self._view() as (repo, inv):
            _visible(inv, name, tenant)
            real = errors_for(repo.realizations(inv.gateways_of_network(name), observed=False), tenant)
            return self._network_out(inv, name, real, tenant)

    def attachments_page(self, limit: int, cursor: str | None, network: str | None = None,
                         interface_group: str | None = None, tenant: str | None = None) -> S.AttachmentPageOut:
        """One page of every attachment, in creation order (``service/listing.py``: from SQL, for the
        page alone); a tenant's call sees its own networks only."""
        with self.db.read() as s:
            return listing.list_attachments_page(s, limit, cursor, network=network,
                                                 interface_group=interface_group, tenant=tenant)

    def empty(self) -> bool:
        """Nothing in the inventory (tokens aside)."""
        with self.db.read() as s:
            return Repository(s).empty()

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[S.AuditOut]:
        lo, hi = AUDIT_LIMIT
        if not lo <= limit <= hi:  # the API checks too; the CLI's local store relies on this one
            raise InvalidInput(field="limit", rule=f"{limit}: entries per page must be {lo}..{hi}")
        with self.db.read() as s:
            entries = Repository(s).audit_entries(limit, before_id)
        return [S.AuditOut(**e.__dict__) for e in entries]

    def statuses(self) -> list[S.RealizationOut]:
        with self.db.read() as s:
            real = Repository(s).realizations(actual=False)
        return [self._realization_out(real[n]) for n in sorted(real)]

    def status_summary(self) -> S.StatusSummaryOut:
        """How many gateways are in each state: what a poller waiting for a fleet reads, a thousand
        times smaller than ``statuses`` (no row per gateway, no faults)."""
        with self.db.read() as s:
            real = Repository(s).realizations(observed=False)
        states = Counter(r.state for r in real.values())
        return S.StatusSummaryOut(gateways=len(real), states=dict(sorted(states.items())),
                                  with_errors=sum(1 for r in real.values() if r.last_error or r.binding_errors))

    @staticmethod
    def _realization_out(r: Realization) -> S.RealizationOut:
        return S.RealizationOut(
            gateway=r.gateway, state=r.state, mode=r.mode, reachable=r.reachable, pair=r.pair,
            desired_generation=r.desired_generation, realized_generation=r.realized_generation, drift=r.drift,
            pending_operations=r.pending_operations, faults=r.faults or {}, binding_errors=r.binding_errors or {},
            last_error=r.last_error, last_contact=r.last_contact, owner=r.owner,
        )

    def _observed(self, repo: Repository) -> dict[str, Realization]:
        """Realization records, with the actual state as this process's reconciler last read it
        where it drives the gateway (the recorded one may be up to a second older)."""
        real = repo.realizations()
        for name, r in real.items():
            fresh = self.board.actual_here(name)
            if fresh is not None:
                real[name] = replace(r, actual=fresh)
        return real

    def gateway_status(self, name: str) -> S.GatewayStatusOut:
        with self._view() as (repo, inv):
            inv.gateway(name)
            everyone = self._observed(repo)
            desired = compile_gateway(inv, name, learned=_learned(everyone))
        real = everyone[name]
        actual = None if real.actual is None else actual_json.owned(real.actual)
        repair = None if actual is None else [op_to_dict(op) for op in diff(desired, actual)]
        base = self._realization_out(real).model_dump()
        return S.GatewayStatusOut(
            **base, foreign=real.foreign or [], desired=desired.to_dict(),
            actual=None if actual is None else actual.to_dict(), repair=repair,
        )

    def plan(self, gateway: str | None = None) -> S.PlanOut:
        """Dry run: what the next reconcile would change on each gateway (of an observed one: what
        switching it to enforce would change, from what its observe passes read)."""
        with self._view() as (repo, inv):
            generation, real = repo.generation(), self._observed(repo)
            names = [inv.gateway(gateway).name] if gateway else sorted(inv.gateways)
            carriers, learned = vni_carriers(inv), _learned(real)
            out = []
            for name in names:
                desired = compile_gateway(inv, name, carriers, learned)
                seen = real[name].actual if name in real else None
                actual = None if seen is None else actual_json.owned(seen)
                ops = diff(desired, actual or GatewayState())
                out.append(S.GatewayPlanOut(
                    gateway=name, mode=inv.gateways[name].mode, actual_known=actual is not None,
                    entries=desired.entries,
                    capacity=inv.gateways[name].capacity, operations=[op_to_dict(op) for op in ops],
                ))
        return S.PlanOut(generation=generation, gateways=out)

    # ------------------------------------------------------------------ writes
    @contextmanager
    def _tx(self) -> Iterator[tuple[Repository, Inventory, Write]]:
        """One write: the repository, the intent to check and change, and the write (its generation;
        ``note`` what the repository's bump and audit return: told once it committed)."""
        with self.cache.transaction(self.db) as tx:
            yield Repository(tx.session), tx.inventory, tx

    def create_silo(self, body: S.SiloIn, actor: str = ADMIN) -> S.SiloOut:
        silo = body.entity()
        with self._tx() as (repo, inv, tx):
            self._must_be_new(inv.silos, "silo", silo.name)
            inv.put_silo(silo)
            repo.save_silo(silo)
            out = S.silo_out(silo)
            tx.note(repo.audit(actor, "create", f"silo/{silo.name}", None, S.dump(out)))
        return out

    def delete_silo(self, name: str, actor: str = ADMIN) -> None:
        with self._tx() as (repo, inv, tx):
            silo = inv.remove_silo(name)
            repo.delete_silo(name)
            tx.note(repo.audit(actor, "delete", f"silo/{name}", S.dump(S.silo_out(silo)), None))

    def create_gateway(self, body: S.GatewayIn, actor: str = ADMIN) -> S.GatewayOut:
        gw = body.entity(self.policy.default_capacity(body.management.driver, body.management.dialect))
        rules.fenced_credentials(gw.management.credentials, self.settings.secrets_dir)  # writes only: old rows load
        with self._tx() as (repo, inv, tx):
            self._must_be_new(inv.gateways, "gateway", gw.name)
            check_management(inv, gw)  # writes only: older rows sharing a device still load
            inv.put_gateway(gw)
            repo.save_gateway(gw)
            tx.note(repo.bump([gw.name], tx.generation))
            out = S.gateway_out(gw, 0)
            tx.note(repo.audit(actor, "create", f"gateway/{gw.name}", None, S.dump(out)))
        return out

    def patch_gateway(self, name: str, patch: object, actor: str = ADMIN) -> S.GatewayOut:
        """A JSON merge patch (RFC 7396) of the gateway, checked as a create (``service/gateway_change.py``)."""
        return gateway_change.patch_gateway(self, name, patch, actor)

    def set_gateway_mode(self, name: str, mode: str, actor: str = ADMIN) -> S.GatewayOut:
        """enforce, observe or maintenance (``service/gateway_change.py``)."""
        return gateway_change.set_mode(self, name, mode, actor)

    def delete_gateway(self, name: str, force: bool = False,
                       actor: str = ADMIN) -> S.RealizationOut | S.GatewayForgottenOut | None:
        """Delete from intent (``service/decommission.py``): the gateway's state while its reconciler
        removes silonet's configuration from the device, what may be left there when it was forgotten
        without that (``force``, or no reconciler runs), None when it is gone and nothing was left."""
        if not force:
            with self._view() as (repo, inv):
                if name in inv.decommissioning:  # again: nothing to write
                    return self._realization_out(repo.realizations([name], actual=False)[name])
        with self._tx() as (repo, inv, tx):
            out = decommission.begin(repo, tx, name, actor, force, self.board.actual_here(name))
            if out.decommissioning:
                return self._realization_out(repo.realizations([name], actual=False)[name])
        return None if out.left is None else S.GatewayForgottenOut(gateway=name, left=out.left, message=out.message)

    def gateway_state(self, name: str) -> S.RealizationOut | None:
        """The gateway's realization state; None once it is gone."""
        with self.db.read() as s:
            real = Repository(s).realizations([name], actual=False).get(name)
        return None if real is None else self._realization_out(real)

    def create_group(self, body: S.GroupIn, actor: str = ADMIN) -> S.GroupOut:
        group = body.entity()
        with self._tx() as (repo, inv, tx):
            self._must_be_new(inv.groups, "interface group", group.name)
            inv.put_group(group)
            repo.save_group(group)
            out = S.group_out(group)
            tx.note(repo.audit(actor, "create", f"interface-group/{group.name}", None, S.dump(out)))
        return out

    def delete_group(self, name: str, actor: str = ADMIN) -> None:
        with self._tx() as (repo, inv, tx):
            group = inv.remove_group(name)
            repo.delete_group(name)
            tx.note(repo.audit(actor, "delete", f"interface-group/{name}", S.dump(S.group_out(group)), None))

    def create_network(self, body: S.NetworkIn, actor: str = ADMIN, tenant: str | None = None) -> S.NetworkOut:
        if tenant is not None and body.tenant != tenant:
            raise Forbidden(field="tenant", rule=f"a tenant token creates networks of its own tenant "
                                                 f"'{tenant}' only, not '{body.tenant}'")
        def claims() -> list[Claim]:
            return [Claim("name", f"network name '{body.name}'", body.name if body.name in inv.networks else None),
                    Claim("vni", f"VNI {body.vni}", None if body.vni is None else inv.network_of_vni(body.vni))]

        with self._tx() as (repo, inv, tx), _told_to(inv, tenant, claims):
            self._must_be_new(inv.networks, "network", body.name)
            vni = tenants.network_vni(repo, inv, body, tenant, self.settings.vni_pool)  # a tenant's record holds it
            net = S.network_entity(body, vni)
            inv.put_network(net)
            repo.save_network(net)
            out = S.NetworkOut(name=net.name, tenant=net.tenant, vni=net.vni, attachments=[])
            tx.note(repo.audit(actor, "create", f"network/{net.name}", None, S.dump(out)))
        return out

    def delete_network(self, name: str, cascade: bool = False, actor: str = ADMIN,
                       tenant: str | None = None) -> tuple[set[str], int]:
        """Returns the affected gateways and the generation that realizes the change."""
        with self._tx() as (repo, inv, tx):
            _visible(inv, name, tenant)
            before = self._network_out(inv, name, {})
            affected = inv.gateways_of_network(name)
            vni = inv.networks[name].vni
            inv.remove_network(name, cascade)
            repo.delete_network(name)
            tx.note(repo.bump(affected, tx.generation, vnis=[vni]))
            tx.note(repo.audit(actor, "delete", f"network/{name}", S.dump(before), None))
        return affected, tx.generation

    def attach(self, network: str, body: S.AttachmentIn, actor: str = ADMIN,
               tenant: str | None = None) -> S.AttachmentOut:
        def claims() -> list[Claim]:
            return [Claim("vlan", f"VLAN {body.vlan} of interface group '{body.interface_group}'",
                          _holder_of_vlan(inv, body.interface_group, body.vlan))]

        with self._tx() as (repo, inv, tx), _told_to(inv, tenant, claims):
            _visible(inv, network, tenant)
            tenants.check_attach(repo, inv, body.interface_group, tenant)  # grants and quota of its record
            if (quarantined := inv.quarantined.get(network)) is not None:
                raise Conflict(field="network", rule=quarantine_reason(quarantined))
            att = inv.attach(Attachment(body.interface_group, body.vlan, network, tx.generation))
            repo.add_attachment(att, tx.generation)
            affected = inv.gateways_of_network(network)
            tx.note(repo.bump(affected, tx.generation, vnis=[inv.networks[network].vni]))
            out = self._attachment_out(inv, att, errors_for(repo.realizations(affected, observed=False), tenant),
                                       tenant)
            tx.note(repo.audit(actor, "attach", f"network/{network}/attachments/{att.group}/{att.vlan}", None,
                               S.dump(out)))
        return out

    def detach(self, network: str, group: str, vlan: int, actor: str = ADMIN,
               tenant: str | None = None) -> tuple[set[str], int]:
        """Returns the affected gateways and the generation that realizes the change."""
        with self._tx() as (repo, inv, tx):
            _visible(inv, network, tenant)
            affected = inv.gateways_of_network(network)
            att = inv.attachment(network, group, vlan)
            before = self._attachment_out(inv, att, repo.realizations(affected, observed=False))
            att = inv.detach(network, group, vlan)
            repo.delete_attachment(att)
            tx.note(repo.bump(affected, tx.generation, vnis=[inv.networks[network].vni]))
            tx.note(repo.audit(actor, "detach", f"network/{network}/attachments/{group}/{vlan}", S.dump(before),
                               None))
        return affected, tx.generation

    def apply(self, topology: S.Topology, prune: bool = False, dry_run: bool = False, actor: str = ADMIN,
              apply_set: str | None = None, force: bool = False) -> S.ApplyOut:
        """``apply_set``: the set the file's objects go to (a prune deletes only its objects; None: each
        object's own ``apply_set``, else ``default``);
        ``force``: prune even where the guard refuses (``service/applyset.py``)."""
        from silonet.service.apply import apply_topology

        return apply_topology(self, topology, prune=prune, dry_run=dry_run, actor=actor, apply_set=apply_set,
                              force=force)

    def get_attachment(self, network: str, group: str, vlan: int, tenant: str | None = None) -> S.AttachmentOut:
        with self._view() as (repo, inv):
            _visible(inv, network, tenant)
            att = inv.attachment(network, group, vlan)
            real = repo.realizations(inv.gateways_of_network(network), observed=False)
            return self._attachment_out(inv, att, errors_for(real, tenant), tenant)

    # -------------------------------------------------------------------- wait
    def wait(self, gateways: Iterable[str], generation: int, timeout: float,
             own: waits.Own = None, tenant: str | None = None) -> str:
        """Block up to ``timeout`` s until the change at ``generation`` is no longer pending;
        the status reached (``service/waits.py``; ``own``: as ``plan.status.summarize``)."""
        return waits.wait(self.db, self.board, gateways, generation, timeout, own, tenant).status

    async def wait_async(self, gateways: Iterable[str], generation: int, timeout: float,
                         own: waits.Own = None, tenant: str | None = None) -> str:
        """``wait`` for the API: the waiting holds no thread."""
        return (await waits.wait_async(self.db, self.board, gateways, generation, timeout, own, tenant)).status

    def wait_verdict(self, gateways: Iterable[str], generation: int, timeout: float,
                     own: waits.Own = None, tenant: str | None = None) -> Verdict:
        """``wait``, with the reason and the gateways behind the status."""
        return waits.wait(self.db, self.board, gateways, generation, timeout, own, tenant)

    async def wait_verdict_async(self, gateways: Iterable[str], generation: int, timeout: float,
                                 own: waits.Own = None, tenant: str | None = None) -> Verdict:
        return await waits.wait_async(self.db, self.board, gateways, generation, timeout, own, tenant)

    def group_gateways(self, group: str) -> frozenset[str]:
        """The gateways of an interface group (empty once it is gone): a change there fails
        with them, and only degrades with the other gateways of its networks."""
        with self._view() as (_repo, inv):
            found = inv.groups.get(group)
            return found.gateways if found is not None else frozenset()

    def settle(self, out: S.AttachmentOut, timeout: float, tenant: str | None = None) -> S.AttachmentOut:
        """Wait for a new attachment, then read it again: its status when the wait ended."""
        self.wait([g.gateway for g in out.gateways], out.generation, timeout,
                  partial(self.group_gateways, out.interface_group), tenant)
        return self.get_attachment(out.network, out.interface_group, out.vlan, tenant=tenant)

    async def settle_async(self, out: S.AttachmentOut, timeout: float, tenant: str | None = None) -> S.AttachmentOut:
        """``settle`` for the API: the waiting holds no thread."""
        own = partial(self.group_gateways, out.interface_group)  # asked only if the board cannot tell
        return await _then_read(
            self.wait_async([g.gateway for g in out.gateways], out.generation, timeout, own, tenant),
            lambda _status: self.get_attachment(out.network, out.interface_group, out.vlan, tenant=tenant))

    def settle_gateway(self, name: str, timeout: float) -> S.RealizationOut | None:
        """Wait up to ``timeout`` s for a decommissioning gateway to be forgotten, then read it again:
        None once it is gone, else its state when the wait ended."""
        return None if decommission.wait_gone(self, name, timeout) else self.gateway_state(name)

    async def settle_gateway_async(self, name: str, timeout: float) -> S.RealizationOut | None:
        """``settle_gateway`` for the API: the waiting holds no thread."""
        return await _then_read(decommission.wait_gone_async(self, name, timeout),
                                lambda gone: None if gone else self.gateway_state(name))

    @staticmethod
    def _must_be_new(table: dict, kind: str, name: str) -> None:
        if name in table:
            raise Conflict(field="name", rule=f"{kind} '{name}' already exists")
